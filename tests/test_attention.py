"""Scaled dot-product attention and masks, against cases worked by hand."""

import math

import pytest
import torch
import transformer_spec.reference as R

from .conftest import DEVICES, DTYPES


def test_two_token_attention_worked_by_hand() -> None:
    # d_k = 4 so the scale is 1/2. q0 . k = (2, 0) -> scaled (1, 0); q1 . k = (0, 4) -> (0, 2).
    q = torch.tensor([[[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 2.0, 0.0]]], dtype=torch.float64)
    k = torch.tensor([[[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 2.0, 0.0]]], dtype=torch.float64)
    v = torch.tensor([[[10.0, 0.0], [0.0, 10.0]]], dtype=torch.float64)
    out, w = R.scaled_dot_product_attention(q, k, v)
    e = math.e
    expected_w = torch.tensor(
        [[[e / (e + 1), 1 / (e + 1)], [1 / (1 + e**2), e**2 / (1 + e**2)]]], dtype=torch.float64
    )
    torch.testing.assert_close(w, expected_w, rtol=0, atol=1e-15)
    torch.testing.assert_close(out, 10 * expected_w, rtol=0, atol=1e-13)


def test_causal_two_token_first_query_sees_only_itself() -> None:
    q = k = torch.randn(1, 2, 4, dtype=torch.float64)
    v = torch.tensor([[[3.0, -1.0], [5.0, 7.0]]], dtype=torch.float64)
    out, w = R.scaled_dot_product_attention(q, k, v, mask=R.causal_mask(2, 2))
    assert w[0, 0].tolist() == [1.0, 0.0]
    assert out[0, 0].tolist() == [3.0, -1.0]


@pytest.mark.parametrize("dtype", DTYPES)
def test_one_key_returns_exactly_its_value(dtype: torch.dtype) -> None:
    q, k, v = (
        torch.randn(3, 5, 8).to(dtype),
        torch.randn(3, 1, 8).to(dtype),
        torch.randn(3, 1, 6).to(dtype),
    )
    out, w = R.scaled_dot_product_attention(q, k, v)
    assert torch.equal(w, torch.ones_like(w))
    assert torch.equal(out, v.expand(3, 5, 6))


@pytest.mark.parametrize("dtype", DTYPES)
def test_rows_are_distributions(dtype: torch.dtype) -> None:
    q, k, v = (torch.randn(2, 3, 7, 16).to(dtype) * 3 for _ in range(3))
    _, w = R.scaled_dot_product_attention(q, k, v)
    assert bool((w >= 0).all())
    tol = {torch.float64: 1e-12, torch.float32: 1e-6, torch.bfloat16: 2e-2, torch.float16: 2e-3}[
        dtype
    ]
    torch.testing.assert_close(
        w.double().sum(-1), torch.ones(2, 3, 7, dtype=torch.float64), rtol=0, atol=tol
    )


def test_scores_are_scaled_by_sqrt_dk() -> None:
    q, k = torch.randn(2, 5, 16, dtype=torch.float64), torch.randn(2, 6, 16, dtype=torch.float64)
    torch.testing.assert_close(R.attention_scores(q, k), q @ k.transpose(-2, -1) / 4.0)


@pytest.mark.parametrize(
    ("alignment", "expected"),
    [
        ("top_left", [[1, 0, 0, 0], [1, 1, 0, 0]]),
        ("bottom_right", [[1, 1, 1, 0], [1, 1, 1, 1]]),
    ],
)
def test_causal_alignment_when_query_is_shorter(alignment: str, expected: list[list[int]]) -> None:
    mask = R.causal_mask(2, 4, alignment=alignment)  # type: ignore[arg-type]
    assert mask.int().tolist() == expected


def test_alignments_agree_for_square_masks() -> None:
    assert torch.equal(
        R.causal_mask(5, 5, alignment="top_left"), R.causal_mask(5, 5, alignment="bottom_right")
    )
    assert torch.equal(R.causal_mask(5, 5), torch.ones(5, 5, dtype=torch.bool).tril())


def test_padding_and_causal_masks_combine() -> None:
    keep = torch.tensor([[True, True, False]])
    mask = R.combine_masks(R.padding_mask(keep), R.causal_mask(3, 3))
    assert mask is not None
    assert mask[0, 0].int().tolist() == [[1, 0, 0], [1, 1, 0], [1, 1, 0]]


def test_masked_keys_get_zero_weight_and_their_values_do_not_leak() -> None:
    q, k, v = (torch.randn(1, 4, 8, dtype=torch.float64) for _ in range(3))
    mask = torch.tensor([[True, False, True, False]]).expand(4, 4)
    out, w = R.scaled_dot_product_attention(q, k, v, mask=mask)
    assert bool((w[..., [1, 3]] == 0).all())
    v2 = v.clone()
    v2[:, [1, 3]] = 1e6
    out2, _ = R.scaled_dot_product_attention(q, k, v2, mask=mask)
    assert torch.equal(out, out2)


@pytest.mark.parametrize("path", ["math", "fused"])
def test_fully_masked_row_gives_zeros_and_finite_gradients(path: str) -> None:
    q, k, v = (torch.randn(1, 2, 3, 8, requires_grad=True) for _ in range(3))
    mask = torch.tensor([[False, False, False], [True, True, False], [True, True, True]])
    if path == "math":
        out, w = R.scaled_dot_product_attention(q, k, v, mask=mask)
        assert bool((w[..., 0, :] == 0).all())
    else:
        out = R.fused_attention(q, k, v, mask=mask)
    assert bool((out[..., 0, :] == 0).all())
    assert bool(out[..., 1:, :].abs().sum() > 0)
    out.sum().backward()  # type: ignore[no-untyped-call]
    for t in (q, k, v):
        assert t.grad is not None and bool(torch.isfinite(t.grad).all())


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_math_and_fused_paths_agree(device: str, dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 4, 9, 16, dtype=torch.float64, device=device) for _ in range(3))
    mask = R.combine_masks(
        R.causal_mask(9, 9, device=device), torch.rand(2, 1, 1, 9, device=device) > 0.3
    )
    ref, _ = R.scaled_dot_product_attention(q, k, v, mask=mask)
    math_out, _ = R.scaled_dot_product_attention(q.to(dtype), k.to(dtype), v.to(dtype), mask=mask)
    fused_out = R.fused_attention(q.to(dtype), k.to(dtype), v.to(dtype), mask=mask)
    # Each path's error against float64 stays within a few times the other's plus a floor.
    err_math = (math_out.double() - ref).abs().max().item()
    err_fused = (fused_out.double() - ref).abs().max().item()
    floor = {torch.float64: 1e-12, torch.float32: 1e-6, torch.bfloat16: 1e-2, torch.float16: 2e-3}[
        dtype
    ]
    assert err_fused <= 4 * err_math + floor
    assert err_math <= 4 * err_fused + floor


@pytest.mark.parametrize("path", ["math", "fused"])
def test_an_explicit_scale_replaces_one_over_sqrt_dk(path: str) -> None:
    # No target protocol passes `scale`; the reference's own API takes it.
    q, k, v = (torch.randn(1, 2, 3, 4, dtype=torch.float64) for _ in range(3))
    weights = torch.softmax(q @ k.transpose(-2, -1) * 0.3, dim=-1)
    assert torch.allclose(R.attention_scores(q, k, scale=0.3), q @ k.transpose(-2, -1) * 0.3)
    if path == "math":
        out = R.scaled_dot_product_attention(q, k, v, scale=0.3)[0]
    else:
        out = R.fused_attention(q, k, v, scale=0.3)
    torch.testing.assert_close(out, weights @ v)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_softmax_is_taken_in_float32_and_rounded_once(dtype: torch.dtype) -> None:
    # Inside the tolerance a correct kernel is allowed, so no property sees it: checked exactly.
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 7, 8).to(dtype) for _ in range(3))
    weights = R.scaled_dot_product_attention(q, k, v)[1]
    scores = R.attention_scores(q, k)
    assert weights.dtype == dtype
    assert torch.equal(weights, torch.softmax(scores.float(), dim=-1).to(dtype))


def test_float64_softmax_stays_in_float64() -> None:
    q, k, v = (torch.randn(1, 3, 4, dtype=torch.float64) for _ in range(3))
    weights = R.scaled_dot_product_attention(q, k, v)[1]
    assert torch.equal(weights, torch.softmax(R.attention_scores(q, k), dim=-1))


def test_masks_are_made_on_the_device_asked_for() -> None:
    # The meta device stands in for a GPU: a mask built on the CPU instead would show.
    assert R.causal_mask(3, 4, device=torch.device("meta")).device.type == "meta"
    keep = torch.ones(2, 3, dtype=torch.bool, device="meta")
    assert R.padding_mask(keep).device.type == "meta"


def test_fused_attention_takes_three_dimensional_inputs_with_a_mask() -> None:
    # (batch, n, d) with k_len != d_k: the mask is checked against (batch, q, k).
    q, k, v = torch.randn(2, 3, 4), torch.randn(2, 5, 4), torch.randn(2, 5, 4)
    mask = torch.ones(3, 5, dtype=torch.bool).tril()
    out = R.fused_attention(q, k, v, mask=mask)
    torch.testing.assert_close(out, R.scaled_dot_product_attention(q, k, v, mask=mask)[0])
