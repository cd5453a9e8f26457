"""Ground truths the properties compare with: attention in float64, and the plain formula
in the target's own dtype (the baseline of the FlashAttention-style tolerance rule).

Independent of transformer_spec.reference on purpose: the reference is itself a target, and
a bug in it must not become the yardstick it is measured with."""

import math

import torch
from torch import Tensor


def attention64(q: Tensor, k: Tensor, v: Tensor, attends: Tensor | None) -> tuple[Tensor, Tensor]:
    """softmax(q k^T / sqrt(d_k) masked) v in float64; rows with no visible key are zeros."""
    q, k, v = q.double(), k.double(), v.double()
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if attends is not None:
        scores = scores.masked_fill(~attends, -math.inf)
        open_rows = attends.any(-1, keepdim=True)
        scores = scores.masked_fill(~open_rows, 0.0)
        w = torch.softmax(scores, -1) * open_rows
    else:
        w = torch.softmax(scores, -1)
    return w @ v, w


def attention_same_dtype(q: Tensor, k: Tensor, v: Tensor, attends: Tensor | None) -> Tensor:
    """The plain formula with every step in q's dtype: the error baseline for that dtype."""
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
    if attends is not None:
        scores = scores.masked_fill(~attends, -math.inf)
        open_rows = attends.any(-1, keepdim=True)
        scores = scores.masked_fill(~open_rows, 0.0)
        return (torch.softmax(scores, -1) * open_rows) @ v
    return torch.softmax(scores, -1) @ v
