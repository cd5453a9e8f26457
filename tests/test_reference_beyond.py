"""Unit tests of the reference's features beyond the notes (issue 32), small enough for the
mutation run (tools/mutation_report.py UNIT_TESTS): the exact masks, slopes, rotations and
statistics, which the properties see only through tolerances or at their defaults."""

import math

import pytest
import torch

from transformer_spec import reference as R


def _rope(x: torch.Tensor, positions: list[int], pairing: str, base: float, r: int) -> torch.Tensor:
    """RoFormer's rotation written out pair by pair, in float64."""
    out = x.clone()
    for t, m in enumerate(positions):
        for i in range(r // 2):
            theta = m * base ** (-2 * i / r)
            a, b = (i, i + r // 2) if pairing == "half_split" else (2 * i, 2 * i + 1)
            xa, xb = x[..., t, a], x[..., t, b]
            out[..., t, a] = xa * math.cos(theta) - xb * math.sin(theta)
            out[..., t, b] = xb * math.cos(theta) + xa * math.sin(theta)
    return out


@pytest.mark.parametrize("pairing", ["half_split", "interleaved"])
@pytest.mark.parametrize(("base", "rotary_dim"), [(10000.0, None), (500000.0, 4), (1000.0, 6)])
def test_apply_rotary_is_the_rotation_of_each_pair(
    pairing: str, base: float, rotary_dim: int | None
) -> None:
    x = torch.randn(2, 3, 8, dtype=torch.float64)
    positions = [0, 5, 63]
    got = R.apply_rotary(
        x,
        torch.tensor(positions),
        pairing=pairing,  # type: ignore[arg-type]
        base=base,
        rotary_dim=rotary_dim,
    )
    want = _rope(x, positions, pairing, base, rotary_dim or 8)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)


def test_apply_rotary_defaults_are_roformers_half_split_base_10000() -> None:
    x, positions = torch.randn(1, 4, 8, dtype=torch.float64), torch.arange(4)
    torch.testing.assert_close(
        R.apply_rotary(x, positions),
        R.apply_rotary(x, positions, pairing="half_split", base=10000.0, rotary_dim=8),
        rtol=0,
        atol=0,
    )
    angles = R.rotary_angles(torch.tensor([3]), 4)
    assert angles.dtype == torch.float64
    torch.testing.assert_close(angles, torch.tensor([[3.0, 3.0 / 100.0]], dtype=torch.float64))


def test_the_sliding_window_shows_itself_and_the_w_minus_1_keys_before() -> None:
    got = R.sliding_window_mask(4, 4, 2).int().tolist()
    assert got == [[1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]]
    assert R.sliding_window_mask(2, 5, 3).int().tolist() == [[0, 1, 1, 1, 0], [0, 0, 1, 1, 1]]


def test_alibi_bias_and_slopes_are_the_papers() -> None:
    assert R.alibi_slopes(8).tolist() == [2.0 ** -(i + 1) for i in range(8)]
    assert R.alibi_slopes(6).tolist() == [2**-2, 2**-4, 2**-6, 2**-8, 2**-1, 2**-3]
    assert R.alibi_slopes(3).dtype == torch.float64
    bias = R.alibi_bias(2, 2, 3)  # two queries, the last two of three keys
    assert bias.dtype == torch.float64
    assert bias.tolist() == [
        [[-0.0625, 0.0, 0.0625], [-0.125, -0.0625, 0.0]],
        [[-0.00390625, 0.0, 0.00390625], [-0.0078125, -0.00390625, 0.0]],
    ]
    with pytest.raises(ValueError, match="n_heads"):
        R.alibi_slopes(0)


def test_rmsnorm_is_its_formula_with_its_gain_and_float32_statistics() -> None:
    x = torch.randn(3, 8, dtype=torch.float64)
    norm = R.RMSNorm(8, eps=1e-6).double()
    with torch.no_grad():
        norm.gain.copy_(torch.linspace(0.5, 2.0, 8))
    want = x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * norm.gain
    torch.testing.assert_close(norm(x), want, rtol=0, atol=1e-13)
    low = R.RMSNorm(8, eps=1e-6).to(torch.bfloat16)
    xb = x.to(torch.bfloat16)
    in_float32 = xb.float() * torch.rsqrt(xb.float().pow(2).mean(-1, keepdim=True) + 1e-6)
    assert torch.equal(low(xb), in_float32.to(torch.bfloat16))


def test_geglu_gates_with_gelu_and_swiglu_with_silu() -> None:
    for kind, act in (("swiglu", torch.nn.SiLU), ("geglu", torch.nn.GELU)):
        ffn = R.GatedFeedForward(4, 8, kind=kind)  # type: ignore[arg-type]
        assert isinstance(ffn.act, act) and ffn.W_gate.bias is None and ffn.W_down.bias is None


def test_fused_attention_with_a_bias_refuses_the_causal_flag() -> None:
    q = torch.zeros(1, 1, 2, 4)
    with pytest.raises(ValueError, match="is_causal"):
        R.fused_attention(q, q, q, bias=torch.zeros(1, 2, 2), is_causal=True)


def test_a_fully_masked_row_is_zero_on_the_fused_path_with_a_bias() -> None:
    q = torch.randn(1, 1, 2, 4)
    mask = torch.tensor([[False, False], [True, True]])
    out = R.fused_attention(q, q, q, mask=mask, bias=torch.zeros(1, 2, 2))
    assert torch.equal(out[0, 0, 0], torch.zeros(4)) and bool(out[0, 0, 1].abs().sum() > 0)
