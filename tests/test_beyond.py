"""Clauses beyond the notes (spec/16_beyond_notes.toml): RMSNorm and gated FFNs in the
reference, and checked in the components of real architectures."""

import importlib.util

import pytest
import torch
from transformer_spec.properties.harness.registry import Context, load_all
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
def test_rmsnorm_and_gated_mlp_of_four_hf_architectures_pass() -> None:
    names = ["llama", "mistral", "qwen2", "gemma"]
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
