"""ALiBi, attention with linear biases (Press et al. 2022; spec EXT-ALIBI-*): no position
is added to the embeddings; head h adds -m_h * (i - j) to the score of query i and key j,
a penalty linear in the distance with a fixed slope per head.

The slopes are a geometric sequence: for n heads, a power of two, m_h = 2^(-8 (h + 1) / n)
(1/2, 1/4, ..., 1/256 for 8 heads). For other n the paper takes the 2^floor(log2 n) slopes
of the nearest power of two below, then every other slope of twice that many."""

import math

import torch
from jaxtyping import Float
from torch import Tensor

from .masks import distances


def _power_of_two_slopes(n: int) -> list[float]:
    return [2.0 ** (-8.0 * (h + 1) / n) for h in range(n)]


def alibi_slopes(n_heads: int) -> Float[Tensor, " h"]:
    """Float64 slopes m_0 > m_1 > ... of the n_heads heads."""
    if n_heads < 1:
        raise ValueError(f"n_heads: expected >= 1, got {n_heads}")
    below = 2 ** math.floor(math.log2(n_heads))
    slopes = _power_of_two_slopes(below)
    slopes += _power_of_two_slopes(2 * below)[0::2][: n_heads - below]
    return torch.tensor(slopes, dtype=torch.float64)


def alibi_bias(
    n_heads: int, q_len: int, k_len: int, *, device: torch.device | str | None = None
) -> Float[Tensor, "h q_len k_len"]:
    """-m_h * (i - j) for every head, query and key (queries the last q_len positions).
    Keys in the future get a positive bias here; the causal mask hides them."""
    d = distances(q_len, k_len, device=device).to(torch.float64)
    return -alibi_slopes(n_heads).to(device)[:, None, None] * d
