"""The 1/sqrt(d_k) scaling, checked statistically (spec SCALE-VARIANCE, SCALE-SATURATION).

The implementation's scores are recovered from its weights: log w_ij = s_ij - logsumexp_j s,
so log-weights centred over each row equal the scores centred over that row.

False-alarm rate: with q, k entries N(0, 1), row i's scaled scores are N(0, |q_i|^2 / d_k)
given q_i; the statistic T = mean over 128 rows of the sample variance over 128 keys has mean
1 and standard deviation at most sqrt((2/d_k + 2/127) / 128) <= 0.052 for d_k >= 8. The
property accepts |T - 1| <= 0.35, more than 6.7 standard deviations: a false alarm rate
below 1e-10 per draw even counting the heavier tail of a variance estimate (chi-square with
>= 1000 degrees of freedom in aggregate). Any scale off by a factor 1.2 or more moves T by
>= 0.44 and is caught.
"""

import math

import torch
from hypothesis import given
from hypothesis import strategies as st
from transformer_spec.properties.checks._call import attend, need_weights
from transformer_spec.properties.harness.registry import Check, Context, prop

_L = 128
_ACCEPT = 0.35


def _weights(ctx: Context, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """The target's weights for float64 q, k. A target that declares another score scale s
    gets q * (1/sqrt(d_k)) / s, so that its declared scale yields the notes' scores: the
    statistics below then test the scale it declared (a target that declares "none" but
    divides by sqrt(d_k) gives variance 1/d_k and is caught)."""
    d_k = q.shape[-1]
    q = q * (1 / math.sqrt(d_k)) / ctx.target.conventions.scale(d_k)
    v = torch.zeros(*q.shape[:-1], 1, dtype=torch.float64)
    return need_weights(attend(ctx, *(t.to(ctx.device, ctx.dtype) for t in (q, k, v)))[1])


def _scores_from_weights(w: torch.Tensor) -> torch.Tensor:
    logw = w.double().log()
    if not bool(torch.isfinite(logw).all()):
        raise AssertionError("some attention weights underflowed to 0: the softmax saturated")
    return logw - logw.mean(-1, keepdim=True)


@prop(
    "scaling.score_variance_is_one",
    clauses=("SCALE-VARIANCE",),
    needs=("attention.weights",),
    conventions=("score_scale",),
    exact=True,
)
def score_variance(ctx: Context) -> Check:
    """For unit-variance q and k, the implementation's scaled scores have variance ~1 for any
    d_k (q.k has variance d_k; the 1/sqrt(d_k) scale brings it back to 1)."""

    @given(st.sampled_from([8, 32, 128]), st.integers(0, 2**16))
    def check(d_k: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        q, k = (torch.randn(1, 1, _L, d_k, generator=g, dtype=torch.float64) for _ in range(2))
        w = _weights(ctx, q, k)
        t_stat = float(_scores_from_weights(w).var(-1, unbiased=True).mean())
        if abs(t_stat - 1.0) > _ACCEPT:
            raise AssertionError(
                f"d_k={d_k}: mean variance of the scaled scores is {t_stat:.3f}, expected 1 "
                f"(accepted 1 +- {_ACCEPT}); a scale of 1/sqrt(d_k) gives 1, 1/d_k gives "
                f"{1 / d_k:.3f}, no scale gives {d_k}"
            )

    return check


@prop(
    "scaling.softmax_does_not_saturate",
    clauses=("SCALE-SATURATION",),
    needs=("attention.weights",),
    conventions=("score_scale",),
    exact=True,
)
def softmax_does_not_saturate(ctx: Context) -> Check:
    """The typical largest weight of a row does not grow with d_k: unit-variance q and k give
    the same distribution of scaled scores at d_k = 16 and d_k = 256."""

    @given(st.integers(0, 2**16))
    def check(seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        means = {}
        for d_k in (16, 256):
            q, k = (torch.randn(1, 1, _L, d_k, generator=g, dtype=torch.float64) for _ in range(2))
            w = _weights(ctx, q, k)
            means[d_k] = float(w.double().amax(-1).mean())
        # Mean max weight over 128 rows of 128 keys: ~0.03 +- 0.002 when scaled correctly;
        # near 1 when unscaled at d_k = 256.
        if means[256] > means[16] + 0.05:
            raise AssertionError(
                f"mean largest weight grows from {means[16]:.3f} (d_k=16) to "
                f"{means[256]:.3f} (d_k=256): the softmax saturates"
            )

    return check
