"""Ground truths the properties compare with: attention in float64, and the plain formula
in the target's own dtype (the baseline of the FlashAttention-style tolerance rule).

Independent of transformer_spec.reference on purpose: the reference is itself a target, and
a bug in it must not become the yardstick it is measured with."""

import math

import torch
from torch import Tensor
from transformer_spec.properties.targets.protocols import Conventions


def attention64(
    q: Tensor, k: Tensor, v: Tensor, attends: Tensor | None, *, scale: float | None = None
) -> tuple[Tensor, Tensor]:
    """softmax(scale * q k^T, masked) v in float64, scale 1/sqrt(d_k) unless a target declares
    another; rows with no visible key are zeros."""
    q, k, v = q.double(), k.double(), v.double()
    scores = (q @ k.transpose(-2, -1)) * _scale(q, scale)
    if attends is not None:
        scores = scores.masked_fill(~attends, -math.inf)
        open_rows = attends.any(-1, keepdim=True)
        scores = scores.masked_fill(~open_rows, 0.0)
        w = torch.softmax(scores, -1) * open_rows
    else:
        w = torch.softmax(scores, -1)
    return w @ v, w


def attention_same_dtype(
    q: Tensor, k: Tensor, v: Tensor, attends: Tensor | None, *, scale: float | None = None
) -> Tensor:
    """The plain formula with every step in q's dtype: the error baseline for that dtype."""
    scores = (q @ k.transpose(-2, -1)) * _scale(q, scale)
    if attends is not None:
        scores = scores.masked_fill(~attends, -math.inf)
        open_rows = attends.any(-1, keepdim=True)
        scores = scores.masked_fill(~open_rows, 0.0)
        return (torch.softmax(scores, -1) * open_rows) @ v
    return torch.softmax(scores, -1) @ v


def _scale(q: Tensor, scale: float | None) -> float:
    return 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale


def layer_norm64(x: Tensor, conventions: Conventions, eps: float = 1e-5) -> Tensor:
    """LayerNorm at gain 1, bias 0, over the last dim, in float64, in the declared variant:
    (x - mean) / sqrt(var + eps) as in the notes, or (x - mean) / (std + eps); the variance
    biased (divided by d_model, the notes) or unbiased."""
    x = x.double()
    centred = x - x.mean(-1, keepdim=True)
    var = x.var(-1, unbiased=conventions.layer_norm_variance == "unbiased", keepdim=True)
    if conventions.layer_norm_eps == "inside_sqrt":
        return centred / torch.sqrt(var + eps)
    return centred / (torch.sqrt(var) + eps)
