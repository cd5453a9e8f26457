"""LayerNorm, residual placement, multi-head split/concat and the feed-forward network."""

import functools
from collections.abc import Callable

import pytest
import torch
import transformer_spec.reference as R

from .conftest import DTYPES, tiny_config


@pytest.mark.parametrize("dtype", DTYPES)
def test_layer_norm_matches_torch_and_normalises_each_position(dtype: torch.dtype) -> None:
    ln = R.LayerNorm(16, eps=1e-5).to(dtype)
    x = (torch.randn(3, 5, 16, dtype=torch.float64) * 4 + 2).to(dtype)
    want = torch.nn.functional.layer_norm(x.double(), (16,), eps=1e-5)
    tol = {torch.float64: 1e-12, torch.float32: 1e-5, torch.bfloat16: 2e-2, torch.float16: 4e-3}[
        dtype
    ]
    torch.testing.assert_close(ln(x).double(), want, rtol=0, atol=tol)
    if dtype == torch.float64:
        y = ln(x)
        torch.testing.assert_close(y.mean(-1), torch.zeros(3, 5, dtype=dtype), rtol=0, atol=1e-12)
        var = y.var(-1, unbiased=False)
        torch.testing.assert_close(var, torch.ones(3, 5, dtype=dtype), rtol=0, atol=1e-4)


def test_layer_norm_eps_is_used() -> None:
    x = torch.tensor([[1.0, -1.0]], dtype=torch.float64)  # variance 1
    assert R.LayerNorm(2, eps=3.0)(x)[0, 0].item() == pytest.approx(0.5)


@pytest.mark.parametrize("placement", ["post", "pre"])
def test_residual_around_a_zero_sublayer_is_the_identity_or_its_norm(placement: str) -> None:
    # spec: NORM-POST-LN, NORM-PRE-LN
    res = R.Residual(8, placement=placement, eps=1e-5, dropout=0.0).double()  # type: ignore[arg-type]
    x = torch.randn(2, 3, 8, dtype=torch.float64)
    out = res(x, torch.zeros_like)
    torch.testing.assert_close(out, x if placement == "pre" else res.norm(x))


def test_multi_head_equals_a_loop_over_heads() -> None:
    # spec: MHA-PROJ-SHAPES
    torch.manual_seed(0)
    d_model, h = 12, 3
    mha = R.MultiHeadAttention(d_model, h).double()
    xq, xkv = (
        torch.randn(2, 4, d_model, dtype=torch.float64),
        torch.randn(2, 6, d_model, dtype=torch.float64),
    )
    out, w = mha(xq, xkv, need_weights=True)
    assert w is not None and w.shape == (2, h, 4, 6)
    d_k = d_model // h
    heads = []
    for i in range(h):
        cols = slice(i * d_k, (i + 1) * d_k)
        q = xq @ mha.W_Q.weight[cols].T + mha.W_Q.bias[cols]
        k = xkv @ mha.W_K.weight[cols].T + mha.W_K.bias[cols]
        v = xkv @ mha.W_V.weight[cols].T + mha.W_V.bias[cols]
        z, w_i = R.scaled_dot_product_attention(q, k, v)
        torch.testing.assert_close(w[:, i], w_i)
        heads.append(z)
    concat = torch.cat(heads, dim=-1)  # width h * d_k = d_model
    torch.testing.assert_close(out, mha.W_O(concat))


def test_single_head_is_plain_attention() -> None:
    mha = R.MultiHeadAttention(8, 1).double()
    x = torch.randn(1, 5, 8, dtype=torch.float64)
    z, _ = R.scaled_dot_product_attention(mha.W_Q(x), mha.W_K(x), mha.W_V(x))
    torch.testing.assert_close(mha(x)[0], mha.W_O(z))


def test_cross_attention_keys_and_values_come_from_the_other_sequence() -> None:
    mha = R.MultiHeadAttention(8, 2).double()
    xq, xkv = torch.randn(1, 3, 8, dtype=torch.float64), torch.randn(1, 4, 8, dtype=torch.float64)
    out, _ = mha(xq, xkv)
    out_other_q, _ = mha(xq + 1.0, xkv)
    assert out.shape == (1, 3, 8) and not torch.allclose(out, out_other_q)
    # One query row changed: only that row's output changes (keys and values did not).
    xq2 = xq.clone()
    xq2[:, 0] += 1.0
    out2, _ = mha(xq2, xkv)
    torch.testing.assert_close(out2[:, 1:], out[:, 1:])


def test_feed_forward_is_position_wise() -> None:
    ffn = R.FeedForward(8, 32).double()
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    rows = torch.stack([ffn(x[:, i : i + 1])[:, 0] for i in range(5)], dim=1)
    torch.testing.assert_close(ffn(x), rows)


def test_projection_matrices_have_the_notes_shapes() -> None:
    # spec: MHA-PROJ-SHAPES
    d_model, h = 512, 8
    mha = R.MultiHeadAttention(d_model, h)
    d_k = d_v = mha.d_k  # head i's W_i^Q, W_i^K, W_i^V are (d_model, 64): narrower than d_model
    assert d_k == 64
    # nn.Linear keeps the transpose of the notes' matrix: x W is x @ weight.T. Stacked over the
    # heads, the per-head matrices are square; head i owns columns i*d_k:(i+1)*d_k
    # (test_multi_head_equals_a_loop_over_heads).
    W_Q, W_K, W_V, W_O = (m.weight.T for m in (mha.W_Q, mha.W_K, mha.W_V, mha.W_O))
    assert W_Q.shape == W_K.shape == W_V.shape == (d_model, h * d_k) == (d_model, d_model)
    assert W_O.shape == (h * d_v, d_model)


@pytest.mark.parametrize("act", ["relu", "gelu", "gelu_tanh"])
def test_feed_forward_is_two_linear_maps_around_a_nonlinearity(act: str) -> None:
    # spec: FFN-TWO-LAYER
    ffn = R.FeedForward(8, 32, act=act).double()  # type: ignore[arg-type]
    shapes = {name: tuple(p.shape) for name, p in ffn.named_parameters()}
    assert shapes == {
        "W_1.weight": (32, 8),
        "W_1.bias": (32,),
        "W_2.weight": (8, 32),
        "W_2.bias": (8,),
    }
    nonlinearity: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
        "relu": torch.relu,
        "gelu": torch.nn.functional.gelu,
        "gelu_tanh": functools.partial(torch.nn.functional.gelu, approximate="tanh"),
    }
    f = nonlinearity[act]
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    hidden = f(x @ ffn.W_1.weight.T + ffn.W_1.bias)  # d_model -> d_ff, then element-wise
    out = ffn(x)
    assert out.shape == x.shape  # d_ff -> d_model: the output is as wide as the input
    torch.testing.assert_close(out, hidden @ ffn.W_2.weight.T + ffn.W_2.bias, rtol=0, atol=1e-12)


def test_attention_projections_have_biases_unless_told_not_to() -> None:
    # The reference targets always build with biases; the spec allows both.
    with_bias, without = R.MultiHeadAttention(8, 2), R.MultiHeadAttention(8, 2, bias=False)
    for name in ("W_Q", "W_K", "W_V", "W_O"):
        assert getattr(with_bias, name).bias is not None
        assert getattr(without, name).bias is None
    assert with_bias.path == "math"  # the default path


def test_layer_norm_applies_its_gain_and_bias() -> None:
    # A freshly built LayerNorm has gain 1 and bias 0, where `* gain + bias` and its
    # mistakes agree; trained values do not.
    ln = R.LayerNorm(4).double()
    with torch.no_grad():
        ln.gain.copy_(torch.tensor([2.0, 3.0, 0.5, -1.0]))
        ln.bias.copy_(torch.tensor([0.1, -0.2, 0.3, 0.0]))
    x = torch.randn(3, 4, dtype=torch.float64)
    want = torch.nn.functional.layer_norm(x, (4,), ln.gain, ln.bias, eps=1e-5)
    torch.testing.assert_close(ln(x), want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_layer_norm_statistics_are_float32(dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    x = (torch.randn(4, 64) * 30 + 100).to(dtype)  # a large mean: low-precision stats lose it
    xs = x.float()
    mean, var = xs.mean(-1, keepdim=True), xs.var(-1, keepdim=True, unbiased=False)
    want = ((xs - mean) * torch.rsqrt(var + 1e-5)).to(dtype)
    assert torch.equal(R.LayerNorm(64).to(dtype)(x), want)


@pytest.mark.parametrize("placement", ["post", "pre"])
def test_residual_adds_the_sublayer_output_and_uses_its_eps(placement: str) -> None:
    # spec: NORM-RESIDUAL. The sublayer here is x -> 2x, so a subtraction would show.
    res = R.Residual(2, placement=placement, eps=3.0, dropout=0.0).double()  # type: ignore[arg-type]
    x = torch.tensor([[[1.0, -1.0]]], dtype=torch.float64)  # mean 0, variance 1
    out = res(x, lambda y: 2 * y)
    # LayerNorm with eps 3: y / sqrt(1 + 3) = y / 2 when the variance of y is 1
    want = x + 2 * (x / 2) if placement == "pre" else 3 * x / 12.0**0.5
    torch.testing.assert_close(out, want, rtol=0, atol=1e-12)


def test_layers_are_built_as_the_config_says() -> None:
    cfg = R.TransformerConfig(
        vocab_size=11, d_model=8, n_heads=2, d_ff=16, n_encoder_layers=0, n_decoder_layers=1,
        shape="decoder_only", bias=False, activation="gelu", attention_path="fused",
        norm="pre", layer_norm_eps=0.25,
    )  # fmt: skip
    model = R.build_model(cfg)
    assert isinstance(model, R.DecoderOnlyModel)
    layer = model.decoder.layers[0]
    assert isinstance(layer, R.DecoderLayer) and layer.cross_attn is None
    assert isinstance(layer.self_attn, R.MultiHeadAttention)
    assert layer.self_attn.path == "fused" and layer.self_attn.W_Q.bias is None
    assert isinstance(layer.ffn, R.FeedForward)
    assert layer.ffn.W_1.bias is None and layer.ffn.W_2.bias is None
    x = torch.randn(5)
    assert torch.equal(layer.ffn.act(x), torch.nn.functional.gelu(x))
    assert isinstance(model.decoder.final_norm, R.LayerNorm)
    assert model.decoder.final_norm.eps == 0.25
    assert all(r.norm.eps == 0.25 for r in layer.sublayers)
    post = R.build_model(R.TransformerConfig(**{**vars(cfg), "norm": "post"}))
    assert isinstance(post, R.DecoderOnlyModel) and post.decoder.final_norm is None


def test_a_decoder_has_cross_attention_unless_told_not_to() -> None:
    cfg = R.TransformerConfig(vocab_size=11, d_model=8, n_heads=2, d_ff=16)
    assert R.DecoderLayer(cfg).cross_attn is not None
    assert all(layer.cross_attn is not None for layer in R.Decoder(cfg).layers)


def test_a_cached_step_is_bottom_right_aligned_whatever_the_module_declares() -> None:
    # Decoding one query against every cached key: a top-left mask would hide all but one.
    torch.manual_seed(1)
    mha = R.MultiHeadAttention(8, 2, causal_alignment="top_left").double()
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    full = mha(x, causal=True)[0]
    cache = R.LayerCache()
    steps = [mha(x[:, i : i + 1], causal=True, cache=cache)[0] for i in range(5)]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, rtol=0, atol=1e-12)


def test_weights_come_back_only_when_asked_for() -> None:
    math_path, fused = R.MultiHeadAttention(8, 2), R.MultiHeadAttention(8, 2, path="fused")
    x = torch.randn(1, 3, 8)
    assert math_path(x)[1] is None and math_path(x, need_weights=True)[1] is not None
    fused.record_weights = True  # the fused path computes none to record
    assert fused(x)[1] is None and fused.last_weights is None


def test_a_fixed_positions_table_is_not_saved_with_the_weights() -> None:
    # It is derived from the config; a learned one is a parameter and is saved.
    assert not any("table" in k for k in R.build_model(tiny_config()).state_dict())
    learned = R.build_model(tiny_config(positional="learned"))
    assert any("table" in k for k in learned.state_dict())
