"""Scaled dot-product attention: softmax(Q K^T / sqrt(d_k) + M) V (spec ATTN-*, SCALE-*).

Two paths compute the same function:
- `scaled_dot_product_attention` writes the formula out and returns the weights too; it is
  the ground truth.
- `fused_attention` calls torch's scaled_dot_product_attention, for speed; no weights.

Policy for a query row that may attend to no key at all (spec MASK-FULLY-MASKED-ROW): its
weights are all zero and its output is the zero vector, in both paths, with finite
gradients. The notes leave this open; zeros is what torch's math and memory-efficient SDPA
backends return.

Notation: *batch any leading dims (batch, heads), q query length, k key length.
"""

import math

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from .masks import check_mask

FULLY_MASKED_ROW_POLICY = "zeros"
_LOW_PRECISION = (torch.float16, torch.bfloat16)


def _check_qkv(q: Tensor, k: Tensor, v: Tensor) -> None:
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, Tensor) or not t.is_floating_point():
            raise TypeError(f"{name}: expected a floating-point Tensor")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"k: last dim {k.shape[-1]} must equal q's d_k={q.shape[-1]}")
    if k.shape[:-1] != v.shape[:-1]:
        raise ValueError(f"v: shape {tuple(v.shape)} must match k's {tuple(k.shape)} but for d_v")
    if q.dtype != k.dtype or q.dtype != v.dtype:
        raise TypeError(f"q, k, v: dtypes differ ({q.dtype}, {k.dtype}, {v.dtype})")


def attention_scores(
    q: Float[Tensor, "*batch q d_k"],
    k: Float[Tensor, "*batch k d_k"],
    *,
    scale: float | None = None,
) -> Float[Tensor, "*batch q k"]:
    """Q K^T * scale, with scale = 1/sqrt(d_k) unless given (spec SCALE-SQRT-DK)."""
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    return (q @ k.transpose(-2, -1)) * scale


def scaled_dot_product_attention(
    q: Float[Tensor, "*batch q d_k"],
    k: Float[Tensor, "*batch k d_k"],
    v: Float[Tensor, "*batch k d_v"],
    *,
    mask: Bool[Tensor, "*#mbatch #q k"] | None = None,
    scale: float | None = None,
    bias: Float[Tensor, "*#mbatch #q k"] | None = None,
) -> tuple[Float[Tensor, "*batch q d_v"], Float[Tensor, "*batch q k"]]:
    """Return (output, weights). Weights are softmax over keys, row by row (ATTN-ROWSUM).
    `bias` is added to the scaled scores before the mask (ALiBi, EXT-ALIBI-BIAS)."""
    _check_qkv(q, k, v)
    scores = attention_scores(q, k, scale=scale)
    if bias is not None:
        scores = scores + bias.to(scores.dtype)
    if mask is not None:
        check_mask(mask, scores.shape)
        scores = scores.masked_fill(~mask, float("-inf"))
        # A row with no visible key would be softmax(all -inf) = NaN. Give it finite scores,
        # then zero its weights, so the row's output and gradients are zero, not NaN.
        row_open = mask.any(dim=-1, keepdim=True)
        scores = scores.masked_fill(~row_open, 0.0)
    # Low-precision softmax is computed in float32 and rounded once (as fused kernels do).
    acc = torch.float32 if q.dtype in _LOW_PRECISION else q.dtype
    weights = torch.softmax(scores, dim=-1, dtype=acc).to(q.dtype)
    if mask is not None:
        weights = weights * row_open
    return weights @ v, weights


def fused_attention(
    q: Float[Tensor, "*batch q d_k"],
    k: Float[Tensor, "*batch k d_k"],
    v: Float[Tensor, "*batch k d_v"],
    *,
    mask: Bool[Tensor, "*#mbatch #q k"] | None = None,
    is_causal: bool = False,
    scale: float | None = None,
    bias: Float[Tensor, "*#mbatch #q k"] | None = None,
) -> Float[Tensor, "*batch q d_v"]:
    """torch's fused kernel; `is_causal` is top-left aligned (as SDPA defines it) and may not
    be combined with `mask` or `bias`. Fully masked rows are forced to zero (the policy
    above). A `bias` goes in as SDPA's additive float mask, -inf where `mask` hides a key."""
    _check_qkv(q, k, v)
    if (mask is not None or bias is not None) and is_causal:
        raise ValueError("is_causal: combine the causal mask into `mask` instead")
    if mask is not None:
        check_mask(mask, torch.Size((*q.shape[:-1], k.shape[-2])))
    attn_mask: Tensor | None = mask
    if bias is not None:
        attn_mask = bias.to(q.dtype)
        if mask is not None:
            attn_mask = attn_mask.masked_fill(~mask, float("-inf"))
    out = torch.nn.functional.scaled_dot_product_attention(
        q, k, v, attn_mask=attn_mask, is_causal=is_causal, scale=scale
    )
    if mask is not None:
        out = out.masked_fill(~mask.any(dim=-1, keepdim=True), 0.0)
    return out
