"""Shared fixtures.

Run-time shape checking (jaxtyping + beartype) is switched on here, before the reference is
first imported, with the same switch users have (TRANSFORMER_SPEC_TYPECHECK). Tests marked
`unchecked` assert the reference's own error messages, which the checker would pre-empt:
they are skipped in the checked run and run by test_bad_inputs.py in a subprocess with the
checker off.
"""

import os

os.environ.setdefault("TRANSFORMER_SPEC_TYPECHECK", "1")
CHECKED = os.environ["TRANSFORMER_SPEC_TYPECHECK"] != "0"

import pytest  # noqa: E402
import torch  # noqa: E402
import transformer_spec.reference as R  # noqa: E402

DTYPES = [torch.float64, torch.float32, torch.bfloat16, torch.float16]
DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=pytest.mark.skipif(
            not torch.cuda.is_available(), reason="no CUDA device on this machine"
        ),
    ),
]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not CHECKED:
        return
    skip = pytest.mark.skip(reason="asserts our own message; runs unchecked in a subprocess")
    for item in items:
        if item.get_closest_marker("unchecked"):
            item.add_marker(skip)


def tiny_config(shape: str = "encoder_decoder", **overrides: object) -> R.TransformerConfig:
    """A model small enough for exhaustive checks: 2 layers per stack, d_model 32, 4 heads."""
    layers = {
        "encoder_decoder": dict(n_encoder_layers=2, n_decoder_layers=2),
        "decoder_only": dict(n_encoder_layers=0, n_decoder_layers=2),
        "encoder_only": dict(n_encoder_layers=2, n_decoder_layers=0),
    }[shape]
    values: dict[str, object] = dict(
        vocab_size=23,
        shape=shape,
        d_model=32,
        n_heads=4,
        d_ff=64,
        max_len=24,
        dropout=0.0,
        **layers,
    )
    values.update(overrides)
    return R.TransformerConfig(**values)  # type: ignore[arg-type]
