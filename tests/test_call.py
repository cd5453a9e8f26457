"""`Call` and the constructors of every level: code of any signature plugs in without a
class; a wrong declaration is a one-line error naming the field; the broken multi-head and
component twins still fail through the constructors; a missing optional method is not
applicable; approximate attention reports its error and still fails a structural bug."""

import ast
import re
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import transformer_spec.properties as P
from torch import nn
from transformer_spec.properties import Call, Conventions
from transformer_spec.properties.checks import load_all
from transformer_spec.properties.harness.registry import Context
from transformer_spec.properties.harness.results import Result
from transformer_spec.properties.harness.runner import run_property
from transformer_spec.properties.harness.tolerance import tolerance_for
from transformer_spec.properties.targets.declarations import DeclarationTypeError
from transformer_spec.properties.targets.protocols import Target

from transformer_spec.cli import main

from . import broken_components, broken_mha, call_targets

CPU = torch.device("cpu")


def outcome(target: Target, pid: str, dtype: torch.dtype = torch.float32) -> Result:
    ctx = Context(target, CPU, dtype, tolerance_for(dtype, CPU))
    return run_property(load_all()[pid], ctx, profile="ci", seed=0)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"query": 0, "key": 0}, ValueError, "Call.key: 0 is also Call.query"),
        ({"query": 1.5}, TypeError, "Call.query: 1.5; expected a position"),
        ({"mask": "attn-mask"}, ValueError, "Call.mask: 'attn-mask' is not a keyword name"),
        (
            {"mask": "m", "mask_shape": "b x k"},
            ValueError,
            "Call.mask_shape: 'b x k' has unknown axis 'x'",
        ),
        (
            {"mask": "m", "mask_shape": "b q"},
            ValueError,
            "Call.mask_shape: 'b q' has no key axis k",
        ),
        (
            {"mask_polarity": "true_pads"},
            ValueError,
            "Call.mask_polarity: 'true_pads'; expected one of",
        ),
        (
            {"causal": "mask"},
            ValueError,
            "Call.causal: 'mask' folds the causal triangle into Call.mask",
        ),
        ({"causal": True}, TypeError, "Call.causal: True; expected"),
        (
            {"need_weights": "need_weights"},
            ValueError,
            "Call.need_weights is declared but Call.weights",
        ),
        (
            {"weights": 1, "weights_shape": "b h h k"},
            ValueError,
            "Call.weights_shape: 'b h h k' has",
        ),
        ({"padding": "mask", "extra": {"mask": None}}, ValueError, "Call.extra: ['mask'] are also"),
        ({"mask_required": True}, ValueError, "Call.mask_required: the mask to pass"),
    ],
)
def test_a_wrong_call_is_a_one_line_error_naming_the_field(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)) as info:
        Call(**kwargs)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


def _module(d: int, h: int) -> nn.Module:
    return nn.MultiheadAttention(d, h, batch_first=True)


def _layer(d: int, h: int, d_ff: int) -> nn.Module:
    return nn.TransformerEncoderLayer(d, h, d_ff, batch_first=True)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: P.multihead_target("m", _module, call=Call(x=0, query=1)),
            "Call.x (self-attention)",
        ),
        (
            lambda: P.multihead_target("m", _module, call=Call(query=0)),
            "Call.key is needed at the mha",
        ),
        (
            lambda: P.multihead_target("m", _module, call=Call(x=0, memory=1)),
            "Call.memory does not apply",
        ),
        (
            lambda: P.multihead_target("m", _module, call=Call(x=0, layout="b h l d")),
            "Call.layout 'b h l d'",
        ),
        (lambda: P.attention_target("a", print, call=Call(query=0, key=1)), "Call.value is needed"),
        (lambda: P.layer_target("l", _layer, call=Call(x=0), kind="decoder"), "needs Call.memory"),
        (
            lambda: P.layer_target("l", _layer, call=Call(x=0), kind="decoder_only"),
            "is causal; Call.causal is 'never'",
        ),
        (
            lambda: P.layer_target("l", _layer, call=Call(x=0), kind="encoder", norm="sandwich"),  # type: ignore[arg-type]
            "norm='sandwich'",
        ),
        (
            lambda: P.multihead_target("m", _module, call=Call(x=0), projections={"qkv": "a"}),
            "projections has keys ['qkv']",
        ),
        (lambda: P.components_target("c", norm_kind="group"), "give at least one of"),  # type: ignore[arg-type]
        (
            lambda: P.components_target("c", norm=nn.LayerNorm, norm_kind="group"),  # type: ignore[arg-type]
            "norm_kind='group'",
        ),
        (
            lambda: P.multihead_target(
                "m",
                _module,
                call=Call(x=0),
                conventions=Conventions(
                    mask_polarity="true_blocks", explanations={"mask_polarity": "x"}
                ),
            ),
            "declare the mask polarity in the Call",
        ),
    ],
)
def test_a_constructor_names_what_does_not_fit_its_level(build: object, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        build()  # type: ignore[operator]


@pytest.mark.parametrize(
    "build",
    [
        lambda: P.multihead_target("m", "not callable", call=Call(x=0)),  # type: ignore[arg-type]
        lambda: P.attention_target("a", 3),  # type: ignore[arg-type]
        lambda: P.layer_target("l", None, call=Call(x=0), kind="encoder"),  # type: ignore[arg-type]
        lambda: P.components_target("c", norm=3),  # type: ignore[arg-type]
        lambda: P.lm_target("lm", 3),  # type: ignore[arg-type]
        lambda: P.mha_module_target("m", 3),  # type: ignore[arg-type]
        lambda: P.attention_function_target("f", 3),  # type: ignore[arg-type]
        lambda: P.multihead_target("m", _module, call="x=0"),  # type: ignore[arg-type]
    ],
)
def test_the_same_mistake_raises_the_same_type_in_every_constructor(build: object) -> None:
    with pytest.raises(TypeError):
        build()  # type: ignore[operator]


def test_old_value_errors_for_types_still_catch() -> None:
    """lm_target raised ValueError for a non-callable before; code catching it still works."""
    with pytest.raises(ValueError):
        P.lm_target("lm", 3)  # type: ignore[arg-type]
    assert issubclass(DeclarationTypeError, TypeError)


def test_hf_target_takes_name_then_class_like_every_constructor() -> None:
    pytest.importorskip("transformers")
    assert P.hf_target("tiny-gpt2", "GPT2LMHeadModel").name == "tiny-gpt2"
    assert P.hf_target("GPT2LMHeadModel").name == "hf:GPT2LMHeadModel"
    with pytest.raises(TypeError, match="expected \\(name, class_name\\)"):
        P.hf_target()


def test_the_public_list_is_what_the_package_exports() -> None:
    exported = {n for n in dir(P) if not n.startswith("_")}
    assert set(P.__all__) <= exported
    for name in ("Call", "attention_target", "multihead_target", "layer_target"):
        assert name in P.__all__
    assert {"components_target", "lm_target", "hf_target"} <= set(P.__all__)


def test_torch_modules_plug_in_through_call_and_pass_in_every_dtype() -> None:
    names = [
        "nn_mha",
        "nn_mha_seq_first_additive",
        "nn_encoder_layer",
        "nn_decoder_layer",
        "nn_components",
        "linear_attention",
    ]
    targets = [f"tests.call_targets:{n}" for n in names]
    assert main(["check", *targets, "--profile", "ci", "--dtype", "all"]) == 0


@pytest.mark.parametrize("name", sorted(broken_mha.MUTANTS))
def test_the_broken_multihead_twins_fail_through_multihead_target(name: str) -> None:
    target = call_targets.mha_twin(name)
    for pid in broken_mha.MUTANTS[name]:
        assert outcome(target, pid, torch.float64).outcome == "fail", (name, pid)


_COMPONENT_TWINS = {
    name: pids
    for name, pids in broken_components.MUTANTS.items()
    # positions by start index and added to embeddings have no module(x) form
    if name not in ("pe_start_ignored", "positions_multiplied")
}


@pytest.mark.parametrize("name", sorted(_COMPONENT_TWINS))
def test_the_broken_component_twins_fail_through_components_target(name: str) -> None:
    target = call_targets.component_twin(name)
    failed = [pid for pid in _COMPONENT_TWINS[name] if outcome(target, pid).outcome == "fail"]
    assert failed, (name, [outcome(target, pid).reason for pid in _COMPONENT_TWINS[name]])


def test_a_missing_optional_method_is_not_applicable() -> None:
    r = outcome(call_targets.without_projections(), "multihead.equals_concat_of_heads_then_W_O")
    assert r.outcome == "not_applicable", r.message
    assert "the target has no projections()" in r.reason


def test_approximate_attention_reports_its_error_and_checks_its_structure() -> None:
    good, leaky = call_targets.linear_attention(), call_targets.linear_attention_leaks_padding()
    formula = outcome(good, "multihead.equals_concat_of_heads_then_W_O")
    assert formula.outcome == "convention" and "measured:" in formula.reason
    for pid in ("multihead.causal_no_future_leak", "multihead.key_value_rows_are_a_set"):
        assert outcome(good, pid).outcome == "pass", pid
    assert outcome(good, "multihead.padded_keys_have_no_effect").outcome == "pass"
    assert outcome(leaky, "multihead.padded_keys_have_no_effect").outcome == "fail"


def test_an_exact_target_still_fails_a_formula_property() -> None:
    r = outcome(call_targets.mha_twin("scale_sqrt_d_model"), broken_mha.FORMULA)
    assert r.outcome == "fail"


def test_a_full_mask_reaches_a_model_through_lm_target() -> None:
    """A model taking a (b, t, t) mask: lm_target(padding=Call(...)) builds it."""
    from .gpt import GPT  # noqa: F401  # the module exists; the check below needs no GPT

    seen: list[torch.Tensor] = []

    class Masked(nn.Module):
        def __init__(self, vocab: int, d: int) -> None:
            super().__init__()
            self.emb, self.out = nn.Embedding(vocab, d), nn.Linear(d, vocab)

        def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            seen.append(mask)
            w = torch.softmax(
                (self.emb(tokens) @ self.emb(tokens).transpose(1, 2)).masked_fill(~mask, -1e9), -1
            )
            return self.out(w @ self.emb(tokens))  # type: ignore[no-any-return]

    target = P.lm_target(
        "masked",
        lambda spec: Masked(spec.vocab_size, spec.d_model),
        pad_id=0,
        padding=Call(x=0, mask="mask", mask_shape="b q k", causal="mask"),
    )
    r = outcome(target, "model.decoder_only.causal_no_future_leak")
    assert r.outcome == "pass", r.message
    assert seen and seen[-1].dim() == 3 and not bool(seen[-1][0].triu(1).any())


README = Path(__file__).resolve().parents[1] / "README.md"
_EXAMPLES = {
    "multihead_target(": "nn_mha",
    "layer_target(": "encoder_layer",
    "components_target(": "parts",
    " attention_target(": "kernel",  # a space: self_attention_target( is another
    "hf_target(": "tiny_llama",
}


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


@pytest.mark.parametrize("marker", sorted(_EXAMPLES))
def test_each_constructor_example_in_the_readme_runs_and_passes(
    marker: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if marker == "hf_target(":
        pytest.importorskip("transformers")
    found = [b for b in _blocks() if marker in b]
    assert len(found) == 1, f"README has {len(found)} examples of {marker}"
    statements = len(ast.parse(found[0]).body)  # as docs/public-implementations.md counts
    assert statements <= 10, f"the {marker} example has {statements} statements"
    module = f"readme_{_EXAMPLES[marker]}"  # one module name per example: imports are cached
    (tmp_path / f"{module}.py").write_text(found[0])
    monkeypatch.syspath_prepend(str(tmp_path))
    target = f"{module}:{_EXAMPLES[marker]}"
    assert main(["check", target, "--profile", "ci", "--dtype", "float32"]) == 0


def test_the_readme_imports_only_public_names() -> None:
    imported: set[str] = set()
    for block in _blocks():
        for names in re.findall(r"from transformer_spec\.properties import ([^\n]+)", block):
            imported |= {n.strip() for n in names.split(",")}
    assert imported, "the README imports nothing from transformer_spec.properties"
    assert imported <= set(P.__all__), sorted(imported - set(P.__all__))


def test_weights_declared_apart_from_the_call_are_refused() -> None:
    averaged = Conventions(weights="averaged", explanations={"weights": "averaged"})
    with pytest.raises(ValueError, match=re.escape("conventions.weights='averaged' but the Call")):
        P.multihead_target("m", _module, call=call_targets.NN_CALL, conventions=averaged)


def test_a_padding_only_call_refuses_a_mask_that_differs_between_queries() -> None:
    from transformer_spec.properties.targets.levels import Unsupported

    def fn(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, pad: object = None) -> torch.Tensor:
        return v

    target = P.attention_target("pad-only", fn, call=Call(query=0, key=1, value=2, padding="pad"))
    assert target.attention is not None
    q = torch.zeros(1, 1, 2, 2)
    per_key = torch.tensor([[True, False]]).expand(2, 2)[None, None]
    target.attention(q, q, q, mask=per_key, causal=False)  # one row for every query: fine
    with pytest.raises(Unsupported, match="key padding mask only"):
        target.attention(q, q, q, mask=torch.eye(2, dtype=torch.bool)[None, None], causal=False)


def test_a_decoder_layer_without_memory_padding_refuses_it_rather_than_dropping_it() -> None:
    from transformer_spec.properties.targets.levels import LayerSpec, Unsupported

    call = replace(call_targets.DECODER_CALL, memory_padding=None)
    target = P.layer_target(
        "no-memory-padding",
        lambda d, h, d_ff: nn.TransformerDecoderLayer(d, h, d_ff, batch_first=True),
        kind="decoder",
        call=call,
    )
    assert target.layers is not None
    layer = target.layers(LayerSpec("decoder", "post", 8, 2, 16, torch.float32, CPU, 0))
    x, memory = torch.zeros(1, 2, 8), torch.zeros(1, 3, 8)
    layer(x, memory)  # no padding: fine
    with pytest.raises(Unsupported, match="takes no memory padding"):
        layer(x, memory, memory_padding=torch.tensor([[True, True, False]]))
