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
        (dict(vocab_size="9"), TypeError, "vocab_size: expected an int, got str"),
        (dict(n_decoder_layers=-1), ValueError, "n_decoder_layers: expected >= 0, got -1"),
        (dict(activation="swish"), ValueError, "activation: 'swish' is not one of"),
        (dict(layer_norm_eps=0.0), ValueError, "layer_norm_eps: expected a float > 0, got 0.0"),
        (dict(special=R.SpecialTokens(unk=23)), ValueError, "special: ids {'unk': 23} are outside"),
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
        error, match=r"^" + message.replace("(", r"\(").replace("{", r"\{").replace("}", r"\}")
    ):
        R.TransformerConfig(**values)  # type: ignore[arg-type]


@pytest.mark.unchecked
@pytest.mark.parametrize("unit", ["", 3])
def test_vocabulary_units_must_be_non_empty_strings(unit: object) -> None:
    with pytest.raises(ValueError, match=r"^units: expected non-empty strings, got"):
        R.Vocabulary(["a", unit])  # type: ignore[list-item]


@pytest.mark.unchecked
def test_config_takes_dtype_names_too() -> None:
    # Not a bad input, but outside the annotation (torch.dtype): runs with the checker off.
    for name in ("float32", "torch.float32", torch.float32):
        assert tiny_config(dtype=name).dtype is torch.float32


@pytest.mark.unchecked
def test_special_token_ids_are_non_negative() -> None:
    with pytest.raises(ValueError, match=r"^special\.pad: expected >= 0, got -1"):
        R.SpecialTokens(pad=-1)


@pytest.mark.unchecked
def test_dtype_and_device_errors_name_the_argument_by_default() -> None:
    with pytest.raises(ValueError, match=r"^dtype: 'float8' is not supported"):
        R.parse_dtype("float8")
    with pytest.raises(ValueError, match=r"^device: 'tpu' is not a device"):
        R.parse_device("tpu")


@pytest.mark.unchecked
def test_positions_past_the_table() -> None:
    pe = R.PositionalEncoding("sinusoidal", max_len=24, d_model=8)
    with pytest.raises(ValueError, match=r"^positions: 25 positions asked for but the table has"):
        pe(torch.zeros(1, 5, 8, dtype=torch.float64), offset=20)


@pytest.mark.unchecked
def test_the_out_of_range_token_id_is_the_one_named() -> None:
    with pytest.raises(ValueError, match=r"^tokens: token id 23 is outside the vocabulary"):
        _decoder()(torch.tensor([[0, 23]]))


@pytest.mark.unchecked
def test_special_tokens_must_be_distinct() -> None:
    with pytest.raises(ValueError, match=r"^special: token ids must be distinct"):
        R.SpecialTokens(pad=0, start=0)


@pytest.mark.unchecked
@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_on_a_machine_without_gpu_names_the_device() -> None:
    with pytest.raises(
        ValueError, match=r"^device: 'cuda' was asked for but this machine has no CUDA"
    ):
        tiny_config(device="cuda")


def _decoder() -> R.AnyModel:
    return R.build_model(tiny_config("decoder_only"))


@pytest.mark.unchecked
def test_sequence_longer_than_the_positions_table() -> None:
    with pytest.raises(
        ValueError,
        match=r"^tokens: sequence reaches position 25 but the positions table has max_len=24",
    ):
        _decoder()(torch.full((1, 25), 5))


@pytest.mark.unchecked
@pytest.mark.parametrize("bad", [-1, 23])
def test_token_id_outside_the_vocabulary(bad: int) -> None:
    with pytest.raises(
        ValueError, match=rf"^tokens: token id {bad} is outside the vocabulary \[0, 23\)"
    ):
        _decoder()(torch.tensor([[5, bad]]))


@pytest.mark.unchecked
def test_tokens_of_float_dtype() -> None:
    with pytest.raises(
        TypeError, match=r"^tokens: expected int64 or int32 token ids, got torch\.float32"
    ):
        _decoder()(torch.ones(1, 3))


@pytest.mark.unchecked
def test_tokens_of_wrong_rank() -> None:
    with pytest.raises(ValueError, match=r"^tokens: expected shape \(batch, seq\)"):
        _decoder()(torch.ones(3, dtype=torch.long))


@pytest.mark.unchecked
def test_source_and_target_batches_differ() -> None:
    model = R.build_model(tiny_config())
    with pytest.raises(ValueError, match=r"^tgt: batch 3 differs from the source batch 2"):
        model(torch.full((2, 4), 5), torch.full((3, 4), 5))


@pytest.mark.unchecked
def test_mask_of_wrong_dtype() -> None:
    q = torch.randn(1, 3, 8)
    with pytest.raises(TypeError, match=r"^mask: expected dtype torch\.bool"):
        R.scaled_dot_product_attention(q, q, q, mask=torch.ones(3, 3))


@pytest.mark.unchecked
def test_mask_of_wrong_shape() -> None:
    q = torch.randn(1, 3, 8)
    with pytest.raises(ValueError, match=r"^mask: shape \(3, 4\) does not broadcast"):
        R.scaled_dot_product_attention(q, q, q, mask=torch.ones(3, 4, dtype=torch.bool))


@pytest.mark.unchecked
def test_attention_input_of_wrong_width() -> None:
    mha = R.MultiHeadAttention(16, 4)
    with pytest.raises(ValueError, match=r"^x_query: expected shape \(batch, seq, 16\)"):
        mha(torch.randn(2, 3, 12))


@pytest.mark.unchecked
def test_attention_input_of_wrong_dtype() -> None:
    mha = R.MultiHeadAttention(16, 4)
    with pytest.raises(TypeError, match=r"^x_kv: dtype torch\.float64 differs"):
        mha(torch.randn(2, 3, 16), torch.randn(2, 3, 16, dtype=torch.float64))


@pytest.mark.unchecked
def test_weights_from_the_fused_path() -> None:
    mha = R.MultiHeadAttention(16, 4, path="fused")
    with pytest.raises(ValueError, match=r"^need_weights: the fused path returns no weights"):
        mha(torch.randn(2, 3, 16), need_weights=True)


@pytest.mark.unchecked
def test_generation_past_the_positions_table() -> None:
    with pytest.raises(ValueError, match=r"^max_new_tokens: prompt length 20 \+ 10 exceeds"):
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
    with pytest.raises(ValueError, match=r"^" + message):
        R.generate(_decoder(), prompt=torch.full((1, 2), 5), **options)  # type: ignore[arg-type]


@pytest.mark.unchecked
def test_pretrained_matrix_of_wrong_shape() -> None:
    with pytest.raises(ValueError, match=r"^matrix: expected shape \(vocab, d_model\) = \(5, 4\)"):
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
            str(Path(__file__).with_name("test_reference_beyond.py")),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).parents[1],
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert " passed" in run.stdout and "failed" not in run.stdout


@pytest.mark.unchecked
@pytest.mark.parametrize("shape", ["decoder_only", "encoder_decoder"])
def test_a_cached_sequence_past_the_positions_table(shape: str) -> None:
    # The cache's offset counts: 20 positions decoded, then 5 more reach position 25.
    model = R.build_model(tiny_config(shape))
    name = "tokens" if shape == "decoder_only" else "tgt"
    cache = model.new_cache()

    def step(tokens: torch.Tensor) -> None:
        if isinstance(model, R.EncoderDecoderModel):
            model.decode(tokens, *model.encode(torch.full((1, 3), 5)), cache=cache)
        else:
            model(tokens, cache=cache)

    step(torch.full((1, 20), 5))
    with pytest.raises(ValueError, match=f"^{name}: sequence reaches position 25 but the"):
        step(torch.full((1, 5), 5))


@pytest.mark.unchecked
@pytest.mark.parametrize(
    ("shape", "argument"),
    [("encoder_decoder", "src"), ("encoder_decoder", "tgt"), ("encoder_only", "tokens")],
)
def test_token_errors_name_the_argument_of_each_entry_point(shape: str, argument: str) -> None:
    model = R.build_model(tiny_config(shape))
    good, bad = torch.full((1, 3), 5), torch.ones(1, 3)
    with pytest.raises(TypeError, match=f"^{argument}: expected int64 or int32 token ids"):
        if isinstance(model, R.EncoderOnlyModel):
            model.encode(bad)
        else:
            assert isinstance(model, R.EncoderDecoderModel)
            if argument == "src":
                model.encode(bad)
            else:
                model.decode(bad, *model.encode(good))


@pytest.mark.unchecked
@pytest.mark.parametrize(
    ("tokens", "shape"),
    [(torch.tensor([5, 6, 7]), r"\(3,\)"), (torch.tensor([[5]]), r"\(1, 1\)"), ([[5, 6]], "list")],
)
def test_teacher_forcing_needs_two_positions(tokens: object, shape: str) -> None:
    model = R.build_model(tiny_config("decoder_only"))
    with pytest.raises(
        ValueError, match=rf"^tokens: expected \(batch, seq\) with seq >= 2, got {shape}"
    ):
        R.teacher_forced_loss(model, tokens)  # type: ignore[arg-type]


@pytest.mark.unchecked
@pytest.mark.parametrize("argument", ["q", "k", "v"])
def test_attention_inputs_must_be_floating_point(argument: str) -> None:
    qkv = {name: torch.randn(1, 3, 4) for name in "qkv"}
    qkv[argument] = torch.ones(1, 3, 4, dtype=torch.long)
    with pytest.raises(TypeError, match=rf"^{argument}: expected a floating-point Tensor"):
        R.scaled_dot_product_attention(qkv["q"], qkv["k"], qkv["v"])


@pytest.mark.unchecked
@pytest.mark.parametrize("path", ["math", "fused"])
def test_attention_inputs_must_fit_together(path: str) -> None:
    attend = R.scaled_dot_product_attention if path == "math" else R.fused_attention
    q = torch.randn(2, 3, 4)
    with pytest.raises(ValueError, match=r"^k: last dim 5 must equal q's d_k=4"):
        attend(q, torch.randn(2, 6, 5), torch.randn(2, 6, 4))
    with pytest.raises(ValueError, match=r"^v: shape \(2, 5, 4\) must match k's \(2, 6, 4\)"):
        attend(q, torch.randn(2, 6, 4), torch.randn(2, 5, 4))
    with pytest.raises(TypeError, match=r"^q, k, v: dtypes differ"):
        attend(q, q.double(), q)
    with pytest.raises(TypeError, match=r"^q, k, v: dtypes differ"):
        attend(q, q, q.double())
