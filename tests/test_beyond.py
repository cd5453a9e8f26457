"""Clauses beyond the notes (spec/16_beyond_notes.toml): RMSNorm and gated FFNs in the
reference, and checked in the components of real architectures."""

import importlib.util

import pytest
import torch
from transformer_spec.properties.checks import load_all
from transformer_spec.properties.harness.registry import Context
from transformer_spec.properties.harness.runner import run_property
from transformer_spec.properties.harness.tolerance import tolerance_for

from transformer_spec import reference as R
from transformer_spec.cli import main

HF = pytest.mark.skipif(
    importlib.util.find_spec("transformers") is None, reason="the hf extra is not installed"
)
CPU = torch.device("cpu")


def test_the_reference_builds_a_llama_like_model_with_rmsnorm_and_swiglu() -> None:
    config = R.TransformerConfig(
        vocab_size=20,
        shape="decoder_only",
        d_model=8,
        n_heads=2,
        d_ff=16,
        n_encoder_layers=0,
        n_decoder_layers=2,
        norm="pre",
        norm_kind="rms_norm",
        ffn="swiglu",
        positional="learned",
    )
    model = R.build_model(config)
    kinds = {type(m).__name__ for m in model.modules()}
    assert {"RMSNorm", "GatedFeedForward"} <= kinds and "LayerNorm" not in kinds
    assert model(torch.randint(0, 20, (2, 5))).shape == (2, 5, 20)


@pytest.mark.parametrize(("field", "value"), [("norm_kind", "group_norm"), ("ffn", "reglu")])
def test_an_unknown_norm_or_ffn_kind_is_refused(field: str, value: str) -> None:
    # Under TRANSFORMER_SPEC_TYPECHECK=1 beartype refuses the Literal first (a TypeError);
    # unchecked, the config's own ValueError names the field.
    with pytest.raises((ValueError, TypeError)) as info:
        R.TransformerConfig(vocab_size=20, **{field: value})  # type: ignore[arg-type]
    if isinstance(info.value, ValueError):
        assert f"{field}: '{value}' is not one of" in str(info.value)


@HF
def test_rmsnorm_gated_mlp_and_alibi_of_six_hf_architectures_pass() -> None:
    names = ["llama", "mistral", "qwen2", "gemma", "bloom_alibi", "mpt_alibi"]
    targets = [f"tests.hf_parts:{n}" for n in names]
    assert main(["check", *targets, "--profile", "ci", "--dtype", "all"]) == 0


@HF
@pytest.mark.parametrize(
    ("name", "pid"),
    [
        ("gemma_declared_silu", "components.gated_ffn_matches_formula"),
        ("llama_declared_interleaved", "components.rotary_matches_formula"),
    ],
)
def test_a_wrong_declaration_of_a_real_architecture_fails(name: str, pid: str) -> None:
    from . import hf_parts

    target = getattr(hf_parts, name)()
    ctx = Context(target, CPU, torch.float32, tolerance_for(torch.float32, CPU))
    result = run_property(load_all()[pid], ctx, profile="ci", seed=0)
    assert result.outcome == "fail", result.message


# ---- grouped-query attention, rotary in the model, sliding windows, ALiBi (issue 32) ----


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"n_kv_heads": 3}, "n_kv_heads: 3 does not divide n_heads=4"),
        ({"rotary_dim": 3}, "rotary_dim: 3 must be even"),
        ({"positional": "learned", "rotary_dim": 4}, "only apply with positional='rotary'"),
        ({"sliding_window": 0}, "sliding_window: expected > 0"),
        ({"rotary_base": 1.0}, "rotary_base: expected a number > 1"),
    ],
)
def test_a_bad_beyond_notes_setting_is_one_error_naming_it(
    changes: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        R.llama_tiny_config(**changes)


def test_a_window_or_alibi_in_an_encoder_is_refused() -> None:
    with pytest.raises(ValueError, match="decoder-only"):
        R.TransformerConfig(
            vocab_size=20, shape="encoder_only", n_decoder_layers=0, sliding_window=4
        )


def test_the_presets_build_and_decode_with_the_cache_as_in_the_full_pass() -> None:
    for preset in ("llama-tiny", "mistral-tiny"):
        torch.manual_seed(0)
        config = R.PRESETS[preset](dtype=torch.float64, sliding_window=3)
        model = R.build_model(config).eval()
        tokens = torch.randint(4, 256, (2, 9))
        full = model(tokens)
        torch.testing.assert_close(R.incremental_logits(model, tokens), full)
        torch.testing.assert_close(model(tokens, start=7), full)  # rotary: relative only
    attention = model.decoder.layers[0].self_attn  # type: ignore[union-attr,index]
    assert (attention.n_kv_heads, attention.W_K.out_features) == (2, 2 * config.d_k)


def test_the_cache_holds_the_key_value_heads_not_their_repeats() -> None:
    model = R.build_model(R.llama_tiny_config()).eval()
    cache = model.new_cache()
    model(torch.tensor([[5, 6, 7]]), cache=cache)
    k = cache.layers[0].self_attn.k
    assert k is not None and k.shape == (1, 2, 3, 16)


def test_the_fused_path_equals_the_math_path_with_alibi_windows_and_groups() -> None:
    outs = []
    for path in ("math", "fused"):
        torch.manual_seed(0)
        config = R.llama_tiny_config(
            positional="alibi", sliding_window=4, attention_path=path, dtype=torch.float64
        )
        outs.append(R.build_model(config).eval()(torch.arange(4, 14)[None]))
    torch.testing.assert_close(outs[0], outs[1])


def _reference_lm(honoured: bool, window_built: bool = True) -> object:
    """The reference decoder as an lm_target, honouring the spec's features or not."""
    from transformer_spec.properties import lm_target

    def build(spec: object) -> torch.nn.Module:
        s = spec  # a ModelSpec
        config = R.TransformerConfig(
            vocab_size=s.vocab_size,  # type: ignore[attr-defined]
            shape="decoder_only",
            d_model=s.d_model,  # type: ignore[attr-defined]
            n_heads=s.n_heads,  # type: ignore[attr-defined]
            d_ff=s.d_ff,  # type: ignore[attr-defined]
            n_encoder_layers=0,
            n_decoder_layers=s.n_layers,  # type: ignore[attr-defined]
            max_len=s.max_len,  # type: ignore[attr-defined]
            n_kv_heads=s.n_kv_heads,  # type: ignore[attr-defined]
            sliding_window=s.window if window_built else None,  # type: ignore[attr-defined]
            positional="rotary",
            dropout=0.0,
        )
        return R.build_model(config)

    honours = ("n_kv_heads", "window", "relative_positions") if honoured else ()
    return lambda: lm_target("ref-lm", build, honours=honours)


WINDOW_PROPERTIES = (
    "model.decoder_only.window_hides_distant_keys",
    "model.decoder_only.window_as_long_as_sequence_is_causal",
    "model.decoder_only.windowed_grouped_cache_matches_full",
)


@pytest.mark.parametrize("pid", WINDOW_PROPERTIES)
def test_a_model_factory_that_does_not_declare_a_window_is_not_judged_on_one(pid: str) -> None:
    """A factory written before windows existed ignores ModelSpec.window: not applicable,
    never a failure."""
    target = _reference_lm(honoured=False)()  # type: ignore[operator]
    ctx = Context(target, CPU, torch.float32, tolerance_for(torch.float32, CPU))
    result = run_property(load_all()[pid], ctx, profile="quick", seed=0)
    assert result.outcome == "not_applicable", result.message


def test_a_declared_window_that_is_not_built_fails() -> None:
    target = _reference_lm(honoured=True, window_built=False)()  # type: ignore[operator]
    ctx = Context(target, CPU, torch.float32, tolerance_for(torch.float32, CPU))
    result = run_property(load_all()[WINDOW_PROPERTIES[0]], ctx, profile="ci", seed=0)
    assert result.outcome == "fail", result.message
    honest = _reference_lm(honoured=True)()  # type: ignore[operator]
    ctx = Context(honest, CPU, torch.float32, tolerance_for(torch.float32, CPU))
    for pid in WINDOW_PROPERTIES[:2]:  # the cache one needs lm_target(incremental=)
        assert run_property(load_all()[pid], ctx, profile="ci", seed=0).outcome == "pass"


def test_a_reference_decoder_honouring_every_feature_passes_the_model_properties() -> None:
    """The honest twin of tests/broken_beyond.py, through the Model protocol directly."""
    ids = ["*relative_positions*", "*window*", "*windowed*"]
    args = [a for pid in ids for a in ("--property", pid)]
    assert main(["check", "tests.broken_beyond:honest", *args, "--dtype", "all"]) == 0
