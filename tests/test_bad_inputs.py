"""Every caller mistake raises ValueError or TypeError naming the argument, before any tensor
work. These assert our own messages, so they run with the run-time shape checker off (see
conftest.py); `test_bad_inputs_pass_without_runtime_checks` runs them that way."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import transformer_spec.reference as R

from .conftest import CHECKED, tiny_config


@pytest.mark.unchecked
@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        (dict(d_model=30, n_heads=4), ValueError, "d_model: 30 is not divisible by n_heads=4"),
        (dict(vocab_size=0), ValueError, "vocab_size: expected > 0"),
        (dict(vocab_size="9"), TypeError, "vocab_size: expected an int"),
        (dict(shape="decoder"), ValueError, "shape: 'decoder' is not one of"),
        (dict(positional="rope"), ValueError, "positional: 'rope' is not one of"),
        (dict(norm="sandwich"), ValueError, "norm: 'sandwich' is not one of"),
        (dict(attention_path="flash"), ValueError, "attention_path: 'flash' is not one of"),
        (dict(n_encoder_layers=0), ValueError, "n_encoder_layers: a encoder_decoder model needs"),
        (dict(shape="decoder_only"), ValueError, "n_encoder_layers: must be 0 for a decoder_only"),
        (dict(dropout=1.0), ValueError, "dropout: expected a probability in"),
        (dict(dtype=torch.int32), ValueError, "dtype: torch.int32 is not supported"),
        (dict(dtype="float8"), ValueError, "dtype: 'float8' is not supported"),
        (dict(device="tpu"), ValueError, "device: "),
        (dict(device="not a device"), ValueError, "device: 'not a device' is not a device"),
        (dict(special=R.SpecialTokens(unk=99)), ValueError, "special: ids {'unk': 99} are outside"),
        (
            dict(positional="sinusoidal_concat", d_model=2, n_heads=1),
            ValueError,
            "d_model: the concatenated",
        ),
    ],
)
def test_bad_config_names_the_field(changes: dict[str, object], error: type, message: str) -> None:
    values: dict[str, object] = dict(
        vocab_size=23, d_model=32, n_heads=4, d_ff=64, n_encoder_layers=2, n_decoder_layers=2
    )
    values.update(changes)
    with pytest.raises(
        error, match=message.replace("(", r"\(").replace("{", r"\{").replace("}", r"\}")
    ):
        R.TransformerConfig(**values)  # type: ignore[arg-type]


@pytest.mark.unchecked
def test_special_tokens_must_be_distinct() -> None:
    with pytest.raises(ValueError, match="special: token ids must be distinct"):
        R.SpecialTokens(pad=0, start=0)


@pytest.mark.unchecked
@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_on_a_machine_without_gpu_names_the_device() -> None:
    with pytest.raises(
        ValueError, match="device: 'cuda' was asked for but this machine has no CUDA"
    ):
        tiny_config(device="cuda")


def _decoder() -> R.AnyModel:
    return R.build_model(tiny_config("decoder_only"))


@pytest.mark.unchecked
def test_sequence_longer_than_the_positions_table() -> None:
    with pytest.raises(
        ValueError,
        match="tokens: sequence reaches position 25 but the positions table has max_len=24",
    ):
        _decoder()(torch.full((1, 25), 5))


@pytest.mark.unchecked
@pytest.mark.parametrize("bad", [-1, 23])
def test_token_id_outside_the_vocabulary(bad: int) -> None:
    with pytest.raises(
        ValueError, match=rf"tokens: token id {bad} is outside the vocabulary \[0, 23\)"
    ):
        _decoder()(torch.tensor([[5, bad]]))


@pytest.mark.unchecked
def test_tokens_of_float_dtype() -> None:
    with pytest.raises(
        TypeError, match=r"tokens: expected int64 or int32 token ids, got torch\.float32"
    ):
        _decoder()(torch.ones(1, 3))


@pytest.mark.unchecked
def test_tokens_of_wrong_rank() -> None:
    with pytest.raises(ValueError, match=r"tokens: expected shape \(batch, seq\)"):
        _decoder()(torch.ones(3, dtype=torch.long))


@pytest.mark.unchecked
def test_source_and_target_batches_differ() -> None:
    model = R.build_model(tiny_config())
    with pytest.raises(ValueError, match="tgt: batch 3 differs from the source batch 2"):
        model(torch.full((2, 4), 5), torch.full((3, 4), 5))


@pytest.mark.unchecked
def test_mask_of_wrong_dtype() -> None:
    q = torch.randn(1, 3, 8)
    with pytest.raises(TypeError, match=r"mask: expected dtype torch\.bool"):
        R.scaled_dot_product_attention(q, q, q, mask=torch.ones(3, 3))


@pytest.mark.unchecked
def test_mask_of_wrong_shape() -> None:
    q = torch.randn(1, 3, 8)
    with pytest.raises(ValueError, match=r"mask: shape \(3, 4\) does not broadcast"):
        R.scaled_dot_product_attention(q, q, q, mask=torch.ones(3, 4, dtype=torch.bool))


@pytest.mark.unchecked
def test_attention_input_of_wrong_width() -> None:
    mha = R.MultiHeadAttention(16, 4)
    with pytest.raises(ValueError, match=r"x_query: expected shape \(batch, seq, 16\)"):
        mha(torch.randn(2, 3, 12))


@pytest.mark.unchecked
def test_attention_input_of_wrong_dtype() -> None:
    mha = R.MultiHeadAttention(16, 4)
    with pytest.raises(TypeError, match=r"x_kv: dtype torch\.float64 differs"):
        mha(torch.randn(2, 3, 16), torch.randn(2, 3, 16, dtype=torch.float64))


@pytest.mark.unchecked
def test_weights_from_the_fused_path() -> None:
    mha = R.MultiHeadAttention(16, 4, path="fused")
    with pytest.raises(ValueError, match="need_weights: the fused path returns no weights"):
        mha(torch.randn(2, 3, 16), need_weights=True)


@pytest.mark.unchecked
def test_generation_past_the_positions_table() -> None:
    with pytest.raises(ValueError, match="max_new_tokens: prompt length 20 \\+ 10 exceeds"):
        R.generate(_decoder(), prompt=torch.full((1, 20), 5), max_new_tokens=10)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(temperature=0.5), "temperature, top_k: only apply with sample=True"),
        (dict(sample=True, temperature=0.0), "temperature: expected > 0"),
        (dict(sample=True, top_k=0), "top_k: expected 1..23"),
        (dict(max_new_tokens=0), "max_new_tokens: expected an int >= 1"),
    ],
)
@pytest.mark.unchecked
def test_bad_generation_options(kwargs: dict[str, object], message: str) -> None:
    options: dict[str, object] = dict(max_new_tokens=3)
    options.update(kwargs)
    with pytest.raises(ValueError, match=message):
        R.generate(_decoder(), prompt=torch.full((1, 2), 5), **options)  # type: ignore[arg-type]


@pytest.mark.unchecked
def test_pretrained_matrix_of_wrong_shape() -> None:
    with pytest.raises(ValueError, match=r"matrix: expected shape \(vocab, d_model\) = \(5, 4\)"):
        R.TokenEmbedding(5, 4).load_pretrained(torch.ones(4, 4))


@pytest.mark.skipif(not CHECKED, reason="this is the unchecked run itself")
@pytest.mark.filterwarnings("ignore")
def test_bad_inputs_pass_without_runtime_checks() -> None:
    # Not marked unchecked: it runs in the checked session and starts the unchecked one.
    env = {**os.environ, "TRANSFORMER_SPEC_TYPECHECK": "0"}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-m",
            "unchecked",
            str(Path(__file__)),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).parents[1],
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert " passed" in run.stdout and "failed" not in run.stdout
