"""LayerNorm, RMSNorm and the residual connection around each sublayer (spec NORM-*,
EXT-RMSNORM-*)."""

from collections.abc import Callable

import torch
from jaxtyping import Float
from torch import Tensor, nn

from .config import NormKind, NormPlacement


class LayerNorm(nn.Module):
    """Normalise each position over its features: (x - mean) / sqrt(var + eps) * gain + bias,
    with the biased variance. Statistics are taken in float32 for float16/bfloat16 inputs
    (low-precision statistics are a bug class real projects shipped)."""

    def __init__(self, d_model: int, *, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.gain = nn.Parameter(torch.ones(d_model))
        self.bias = nn.Parameter(torch.zeros(d_model))

    def forward(self, x: Float[Tensor, "*batch d_model"]) -> Float[Tensor, "*batch d_model"]:
        xs = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
        mean = xs.mean(dim=-1, keepdim=True)
        var = xs.var(dim=-1, keepdim=True, unbiased=False)
        normed = ((xs - mean) * torch.rsqrt(var + self.eps)).to(x.dtype)
        return normed * self.gain + self.bias


class RMSNorm(nn.Module):
    """Root-mean-square normalisation (Zhang and Sennrich 2019): x / sqrt(mean(x^2) + eps)
    * gain, no mean subtracted and no bias (spec EXT-RMSNORM-FORMULA). Statistics in float32
    for float16/bfloat16 inputs, as LayerNorm's."""

    def __init__(self, d_model: int, *, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.gain = nn.Parameter(torch.ones(d_model))

    def forward(self, x: Float[Tensor, "*batch d_model"]) -> Float[Tensor, "*batch d_model"]:
        xs = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
        mean_square = xs.pow(2).mean(dim=-1, keepdim=True)
        normed = (xs * torch.rsqrt(mean_square + self.eps)).to(x.dtype)
        return normed * self.gain


def make_norm(kind: NormKind, d_model: int, eps: float) -> LayerNorm | RMSNorm:
    if kind == "layer_norm":
        return LayerNorm(d_model, eps=eps)
    if kind == "rms_norm":
        return RMSNorm(d_model, eps=eps)
    raise ValueError(f"norm_kind: {kind!r} is not one of ['layer_norm', 'rms_norm']")


class Residual(nn.Module):
    """x + sublayer, with LayerNorm after the sum (post-LN, the 2017 original) or on the
    sublayer's input (pre-LN). Dropout acts on the sublayer output, as in the paper."""

    def __init__(
        self,
        d_model: int,
        *,
        placement: NormPlacement,
        eps: float,
        dropout: float,
        kind: NormKind = "layer_norm",
    ) -> None:
        super().__init__()
        if placement not in ("post", "pre"):
            raise ValueError(f"placement: {placement!r} is not one of ['post', 'pre']")
        self.placement: NormPlacement = placement
        self.norm = make_norm(kind, d_model, eps)
        self.drop = nn.Dropout(dropout)

    def forward(
        self, x: Float[Tensor, "b n d_model"], sublayer: Callable[[Tensor], Tensor]
    ) -> Float[Tensor, "b n d_model"]:
        out: Tensor
        if self.placement == "pre":
            out = x + self.drop(sublayer(self.norm(x)))
        else:
            out = self.norm(x + self.drop(sublayer(x)))
        return out
