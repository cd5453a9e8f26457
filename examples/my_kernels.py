"""A target that plugs in an attention function (the README's example). Check it with
`transformer-spec check examples.my_kernels:my_target` from the repository root."""

import math

import torch
from torch import Tensor
from transformer_spec.properties import Conventions, Target


def my_attention(
    q: Tensor, k: Tensor, v: Tensor, *, mask: Tensor | None, causal: bool
) -> tuple[Tensor, Tensor]:
    # q (b, h, Lq, d_k), k (b, h, Lk, d_k), v (b, h, Lk, d_v); mask: bool, True = may attend
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if causal:
        lq, lk = scores.shape[-2:]
        future = torch.ones(lq, lk, dtype=torch.bool, device=q.device).triu(lk - lq + 1)
        scores = scores.masked_fill(future, -math.inf)
    if mask is not None:
        scores = scores.masked_fill(~mask, -math.inf)
    weights = torch.softmax(scores, dim=-1).nan_to_num(0.0)  # rows with no key: zeros
    return weights @ v, weights


def my_target() -> Target:
    return Target(
        name="my-attention",
        description="softmax(QK^T/sqrt(d_k))V, by hand",
        conventions=Conventions(
            mask_polarity="true_attends",
            causal_alignment="bottom_right",
            fully_masked_row="zeros",
            weights="per_head",
        ),
        attention=my_attention,
    )
