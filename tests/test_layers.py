"""LayerNorm, residual placement, multi-head split/concat and the feed-forward network."""

import pytest
import torch
import transformer_spec.reference as R

from .conftest import DTYPES


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
