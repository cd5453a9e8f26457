"""The public adapter constructors: SDPA-signature functions, nn.MultiheadAttention-signature
modules, forward(x) self-attention modules and `hf:CLASSNAME`. Each passes a correct
implementation and fails its broken twin; bad arguments are one-line errors."""

import dataclasses
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import transformer_spec.properties as P
from torch import Tensor, nn
from torch.nn.functional import scaled_dot_product_attention
from transformer_spec.properties.checks import load_all
from transformer_spec.properties.harness.errors import UsageError
from transformer_spec.properties.harness.loading import load_target
from transformer_spec.properties.harness.registry import Context
from transformer_spec.properties.harness.results import Result
from transformer_spec.properties.harness.runner import run_property
from transformer_spec.properties.harness.tolerance import tolerance_for
from transformer_spec.properties.targets.adapters import hf, hf_model
from transformer_spec.properties.targets.levels import ModelSpec, Unsupported
from transformer_spec.properties.targets.protocols import Target

from transformer_spec.cli import main

from .self_attention_modules import CausalSelfAttention

CPU = torch.device("cpu")
README = Path(__file__).resolve().parents[1] / "README.md"
HF = pytest.mark.skipif(
    __import__("importlib").util.find_spec("transformers") is None,
    reason="the hf extra (transformers) is not installed",
)


def outcome(target: Target | str, pid: str, dtype: torch.dtype = torch.float32) -> Result:
    t = load_target(target) if isinstance(target, str) else target
    ctx = Context(t, CPU, dtype, tolerance_for(dtype, CPU))
    return run_property(load_all()[pid], ctx, profile="ci", seed=0)


def _readme_block(marker: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    found = [b for b in blocks if marker in b]
    assert len(found) == 1, f"README has {len(found)} python examples containing {marker!r}"
    return str(found[0])


# ---- SDPA-signature functions ----------------------------------------------------------


def _scores(q: Tensor, k: Tensor) -> Tensor:
    return q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])


def refuses_both(
    q: Tensor, k: Tensor, v: Tensor, attn_mask: Tensor | None = None, is_causal: bool = False
) -> Tensor:
    """SDPA itself, refusing a mask with is_causal as it does (and saying so plainly)."""
    if attn_mask is not None and is_causal:
        raise ValueError("attn_mask and is_causal together are not supported")
    return scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal)


def ignores_mask_when_causal(
    q: Tensor, k: Tensor, v: Tensor, attn_mask: Tensor | None = None, is_causal: bool = False
) -> Tensor:
    """Broken: with is_causal the padding mask is dropped."""
    return scaled_dot_product_attention(
        q, k, v, attn_mask=None if is_causal else attn_mask, is_causal=is_causal
    )


def additive(
    q: Tensor, k: Tensor, v: Tensor, attn_mask: Tensor | None = None, is_causal: bool = False
) -> Tensor:
    """Takes an additive float mask; a row with no visible key gives zeros."""
    s = _scores(q, k)
    if is_causal:
        s = s.masked_fill(torch.ones_like(s, dtype=torch.bool).triu(1), -math.inf)
    if attn_mask is not None:
        s = s + attn_mask
    return torch.softmax(s, dim=-1).nan_to_num(0.0) @ v


def additive_read_as_bool(
    q: Tensor, k: Tensor, v: Tensor, attn_mask: Tensor | None = None, is_causal: bool = False
) -> Tensor:
    """Broken: reads the additive mask as a boolean one (0, visible, taken for False)."""
    s = _scores(q, k)
    if is_causal:
        s = s.masked_fill(torch.ones_like(s, dtype=torch.bool).triu(1), -math.inf)
    if attn_mask is not None:
        s = s.masked_fill(attn_mask == 0, -math.inf)
    return torch.softmax(s, dim=-1).nan_to_num(0.0) @ v


COMBINE = "masking.padding_and_causal_combine"


@pytest.mark.parametrize("accepts", [None, False])
def test_sdpa_itself_passes_with_the_causal_triangle_folded_in(accepts: bool | None) -> None:
    t = P.attention_function_target(
        "sdpa", scaled_dot_product_attention, accepts_mask_with_causal=accepts
    )
    for pid in (COMBINE, "attention.matches_float64_formula"):
        r = outcome(t, pid)
        assert r.outcome in ("pass", "convention"), (pid, r.message)


def test_a_function_that_refuses_both_is_never_called_with_both_once_declared() -> None:
    t = P.attention_function_target("refuses", refuses_both, accepts_mask_with_causal=False)
    assert outcome(t, COMBINE).outcome in ("pass", "convention")


def test_a_function_that_drops_the_mask_when_causal_fails() -> None:
    t = P.attention_function_target("broken", ignores_mask_when_causal)
    r = outcome(t, COMBINE)
    assert r.outcome == "fail", r.message


def test_additive_masks_pass_and_a_function_reading_them_as_bool_fails() -> None:
    good = P.attention_function_target("additive", additive, mask_form="additive")
    assert outcome(good, COMBINE).outcome in ("pass", "convention")
    broken = P.attention_function_target("bool", additive_read_as_bool, mask_form="additive")
    assert outcome(broken, "masking.masked_content_has_no_effect").outcome == "fail"


def test_bad_arguments_are_one_line_errors() -> None:
    with pytest.raises(ValueError, match="mask_form: 'float', expected 'bool' or 'additive'"):
        P.attention_function_target("x", additive, mask_form="float")  # type: ignore[arg-type]
    blocks = P.Conventions(mask_polarity="true_blocks", explanations={"mask_polarity": "nn"})
    with pytest.raises(ValueError, match="additive' has no polarity"):
        P.attention_function_target("x", additive, mask_form="additive", conventions=blocks)
    with pytest.raises(TypeError, match="fn: int is not callable"):
        P.attention_function_target("x", 3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="build: str is not callable"):
        P.mha_module_target("x", "nn.MultiheadAttention")  # type: ignore[arg-type]


# ---- nn.MultiheadAttention-signature modules --------------------------------------------


class DropsAttnMask(nn.MultiheadAttention):
    """Broken: ignores attn_mask (so the causal mask)."""

    def forward(self, *args: object, **kwargs: object) -> tuple[Tensor, Tensor | None]:
        kwargs["attn_mask"] = None
        return super().forward(*args, **kwargs)  # type: ignore[arg-type]


def _nn_mha(d_model: int, n_heads: int) -> nn.Module:
    return nn.MultiheadAttention(d_model, n_heads, batch_first=True)


@pytest.mark.parametrize(
    "pid", ["multihead.equals_concat_of_heads_then_W_O", "multihead.causal_no_future_leak"]
)
def test_nn_multihead_attention_itself_passes(pid: str) -> None:
    r = outcome(P.mha_module_target("nn-mha", _nn_mha), pid)
    assert r.outcome in ("pass", "convention"), r.message


def test_a_module_that_drops_attn_mask_fails() -> None:
    t = P.mha_module_target("broken", lambda d, h: DropsAttnMask(d, h, batch_first=True))
    assert outcome(t, "multihead.causal_no_future_leak").outcome == "fail"


def test_seq_first_float_masks_and_averaged_weights_as_declared() -> None:
    declared = dataclasses.replace(
        P.mha_module_target("x", _nn_mha).conventions,
        weights="averaged",
        explanations={
            **P.mha_module_target("x", _nn_mha).conventions.explanations,
            "weights": "averaged",
        },
    )
    t = P.mha_module_target(
        "nn-mha-seq-first",
        lambda d, h: nn.MultiheadAttention(d, h),
        batch_first=False,
        float_masks=True,
        conventions=declared,
    )
    for pid in ("multihead.causal_no_future_leak", "multihead.padded_keys_have_no_effect"):
        r = outcome(t, pid)
        assert r.outcome in ("pass", "convention"), (pid, r.message)


# ---- README examples ---------------------------------------------------------------------


def _nonblank(block: str) -> int:
    return sum(1 for line in block.splitlines() if line.strip())


@pytest.mark.parametrize(
    "marker", ["attention_function_target(", "mha_module_target(", "self_attention_target("]
)
def test_readme_constructor_examples_are_ten_lines_or_fewer(marker: str) -> None:
    assert _nonblank(_readme_block(marker)) <= 10


def test_readme_sdpa_example_passes_and_its_broken_twin_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    block = _readme_block("attention_function_target(")
    (tmp_path / "my_sdpa.py").write_text(block)
    # the twin: causal attention off by one (query i also sees key i + 1)
    broken = block.replace(".triu(1)", ".triu(2)")
    assert broken != block
    (tmp_path / "my_sdpa_broken.py").write_text(broken)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    argv = ["--profile", "ci", "--dtype", "float32"]
    assert main(["check", "my_sdpa:torch_sdpa", "my_sdpa:mine", *argv]) == 0
    assert main(["check", "my_sdpa_broken:mine", "--property", "masking.*", *argv]) == 1


def test_readme_mha_example_passes() -> None:
    namespace: dict[str, object] = {}
    exec(compile(_readme_block("mha_module_target("), str(README), "exec"), namespace)
    target = namespace["nn_mha"]()  # type: ignore[operator]
    pids = ("multihead.equals_concat_of_heads_then_W_O", "multihead.padded_keys_have_no_effect")
    for pid in pids:
        r = outcome(target, pid)
        assert r.outcome in ("pass", "convention"), (pid, r.message)


def test_readme_self_attention_example_passes() -> None:
    """The README names nanoGPT's class; the test supplies it (tests/self_attention_modules)."""
    namespace: dict[str, object] = {"CausalSelfAttention": CausalSelfAttention}
    exec(compile(_readme_block("self_attention_target("), str(README), "exec"), namespace)
    target = namespace["nanogpt_attention"]()  # type: ignore[operator]
    assert target.mha_inputs == "self" and target.mha_causal == "always"
    r = outcome(target, "multihead.equals_concat_of_heads_then_W_O")
    assert r.outcome in ("pass", "convention"), r.message


def test_the_constructors_are_public() -> None:
    from transformer_spec.properties.targets.adapters.self_attention import self_attention_target

    assert P.self_attention_target is self_attention_target
    assert {"attention_function_target", "mha_module_target", "hf_target"} <= set(dir(P))


# ---- hf:CLASSNAME -------------------------------------------------------------------------


def _spec(kind: str, positional: bool = True) -> ModelSpec:
    return ModelSpec(
        kind=kind,  # type: ignore[arg-type]
        vocab_size=24,
        d_model=16,
        n_heads=2,
        d_ff=32,
        n_layers=1,
        max_len=16,
        positional=positional,
        dtype=torch.float32,
        device=CPU,
        seed=0,
    )


@HF
@pytest.mark.parametrize(
    ("spec", "kind"),
    [
        ("hf:LlamaForCausalLM", "decoder_only"),
        ("hf:GPT2LMHeadModel:eager", "decoder_only"),
        ("hf:BertForMaskedLM", "encoder_only"),
        ("hf:T5ForConditionalGeneration", "encoder_decoder"),
        ("hf:BartForConditionalGeneration", "encoder_decoder"),
    ],
)
def test_hf_class_names_give_their_kind(spec: str, kind: str) -> None:
    t = load_target(spec)
    assert t.model_kinds == (kind,) and t.name == spec


@HF
@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("hf:Nope", "'Nope' is not a transformers language-model class"),
        ("hf:BertModel", "(similar: BertForMaskedLM"),
        ("hf:LlamaForCausalLM:flash", "attention implementation 'flash'; expected eager or sdpa"),
    ],
)
def test_an_unknown_hf_class_is_a_one_line_usage_error(spec: str, says: str) -> None:
    with pytest.raises(UsageError) as err:
        load_target(spec)
    assert says in str(err.value) and "\n" not in str(err.value)


@HF
@pytest.mark.parametrize(
    ("class_name", "kind"),
    [
        ("OPTForCausalLM", "decoder_only"),
        ("LlamaForCausalLM", "decoder_only"),
        ("MistralForCausalLM", "decoder_only"),
        ("GPTNeoXForCausalLM", "decoder_only"),
        ("BertForMaskedLM", "encoder_only"),
        ("T5ForConditionalGeneration", "encoder_decoder"),
    ],
)
def test_hf_models_get_the_asked_sizes(class_name: str, kind: str) -> None:
    model = hf.build(class_name, _spec(kind))
    config = model.net.config
    assert model.net.get_input_embeddings().weight.shape == (24, 16)
    assert model.net.num_parameters() < 50_000, "a tiny config"
    heads = getattr(config, "num_attention_heads", None) or config.num_heads
    assert heads == 2 and config.pad_token_id == 0
    assert all(p == 0.0 for n, p in vars(config).items() if "dropout" in n and p is not None)


@HF
@pytest.mark.parametrize(
    ("class_name", "kind"),
    [
        ("LlamaForCausalLM", "decoder_only"),
        ("T5ForConditionalGeneration", "encoder_decoder"),
        ("BertForMaskedLM", "encoder_only"),
    ],
)
def test_without_positions_a_permutation_permutes_the_outputs(
    class_name: str, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rotary frequencies, relative bias and learned tables zeroed, the model no longer sees
    positions: an encoder's outputs permute with its inputs, a decoder's last position (which
    attends to every token) does not change when the tokens before it are permuted, and a
    decoder reading a permuted source gives the same logits. The broken twin, with its
    positions left in, changes."""
    tokens = torch.tensor([[5, 9, 7, 11, 6]])
    perm = torch.tensor([4, 2, 0, 3, 1])

    def moved(model: hf_model.HFModel) -> float:
        if kind == "decoder_only":  # the last position attends to all: a multiset
            a = model.logits(tokens)[:, -1]
            b = model.logits(torch.cat([tokens[:, perm[perm != 4]], tokens[:, 4:]], 1))[:, -1]
        elif kind == "encoder_decoder":  # the source is attended without a causal mask
            tgt = torch.tensor([[1, 8]])
            a, b = model.logits(tgt, tokens), model.logits(tgt, tokens[:, perm])
        else:
            a, b = model.logits(tokens)[:, perm], model.logits(tokens[:, perm])
        return float((a - b).abs().max())

    without = moved(hf.build(class_name, _spec(kind, positional=False)))
    monkeypatch.setattr(hf_model, "_remove_positions", lambda net: None)
    if kind == "encoder_only":  # the build sees the positions left in, and refuses
        with pytest.raises(Unsupported, match="cannot be built without positional encoding"):
            hf.build(class_name, _spec(kind, positional=False))
    monkeypatch.setattr(hf, "_check_positions_gone", lambda net, kind, device: None)
    kept = moved(hf.build(class_name, _spec(kind, positional=False)))
    assert without < 1e-6 and kept > 1000 * max(without, 1e-9), (without, kept)


@HF
@pytest.mark.parametrize("class_name", ["GPT2LMHeadModel", "LlamaForCausalLM", "OPTForCausalLM"])
def test_a_deep_decoder_without_positions_is_built(class_name: str) -> None:
    """Regression: the build's check once reordered the tokens before the last one, which a
    decoder of two or more layers sees without any position (each token's state depends on
    the tokens before it), and refused 109 decoders' left-padding property on the board.
    Without positions, shifting every position id changes nothing, at any depth."""
    spec = dataclasses.replace(_spec("decoder_only", positional=False), n_layers=3)
    model = hf.build(class_name, spec)
    tokens = torch.tensor([[5, 9, 7, 11]])
    shifted = model.net(input_ids=tokens, position_ids=torch.arange(2, 6)[None]).logits
    assert torch.allclose(model.logits(tokens), shifted, atol=1e-6)


@HF
def test_a_decoder_whose_absolute_positions_remain_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """GPT-2's learned table left in: a common shift of the position ids, as left padding
    makes, changes its logits, and the build refuses, naming why. (Rotary frequencies left
    in are relative: left padding cannot show them, and Llama is built.)"""
    monkeypatch.setattr(hf_model, "_remove_positions", lambda net: None)
    with pytest.raises(Unsupported, match="shifting every position id by 3"):
        hf.build("GPT2LMHeadModel", _spec("decoder_only", positional=False))
    hf.build("LlamaForCausalLM", _spec("decoder_only", positional=False))


def test_a_model_with_no_positions_to_remove_is_refused() -> None:
    with pytest.raises(Unsupported, match="Linear: no position table"):
        hf_model._remove_positions(nn.Linear(2, 2))


@HF
def test_hf_generation_uses_the_harness_generator_and_stops_at_end() -> None:
    model = hf.build("LlamaForCausalLM", _spec("decoder_only"))
    assert isinstance(model, hf_model.GeneratingHFModel)
    draws = [
        model.generate(None, None, 6, sample=True, generator=torch.Generator().manual_seed(3))
        for _ in range(2)
    ]
    assert torch.equal(draws[0], draws[1]) and draws[0][0, 0] == hf_model.START
    greedy = model.generate(torch.tensor([[1, 5, 6]]), None, 4, sample=False, generator=None)
    assert torch.equal(greedy[:, :3], torch.tensor([[1, 5, 6]]))


@HF
def test_hf_builtin_names_keep_their_form() -> None:
    t = load_target("hf-gpt2")
    assert t.description == (
        "Hugging Face transformers GPT2LMHeadModel (sdpa), tiny random config, no download"
    )
    model = t.model(_spec("decoder_only"))  # type: ignore[misc]
    assert isinstance(model, hf_model.HFModel) and not isinstance(model, hf_model.GeneratingHFModel)
    assert model.loss_source == "library"
    assert isinstance(load_target("hf:GPT2LMHeadModel").conventions, P.Conventions)
    assert load_target("hf:T5ForConditionalGeneration").conventions.score_scale == "none"


def test_without_the_hf_extra_an_hf_class_exits_2_in_one_line() -> None:
    block = "import sys; sys.modules['transformers'] = None; from transformer_spec.cli import main"
    run = subprocess.run(
        [sys.executable, "-c", f"{block}; sys.exit(main(['check', 'hf:LlamaForCausalLM']))"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2 and run.stdout == "" and len(run.stderr.splitlines()) == 1
    assert "target 'hf:LlamaForCausalLM': the Hugging Face targets need the 'hf' extra" in (
        run.stderr
    )


@HF
def test_hf_incremental_decoding_runs_and_a_cache_that_forgets_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pid = "model.decoder_only.incremental_matches_full"
    r = outcome("hf:LlamaForCausalLM", pid)
    assert r.outcome == "pass", (r.outcome, r.reason, r.message)

    def forgets(self: hf_model.HFModel, tokens: Tensor, src: Tensor | None = None) -> Tensor:
        """Broken: each step without the cache (no earlier tokens, position 0)."""
        return torch.cat([self.logits(tokens[:, t : t + 1]) for t in range(tokens.shape[1])], 1)

    monkeypatch.setattr(hf_model.HFModel, "incremental_logits", forgets)
    assert outcome("hf:LlamaForCausalLM", pid).outcome == "fail"
