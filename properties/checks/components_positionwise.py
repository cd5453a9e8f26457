"""Building blocks that act on each position alone: LayerNorm, feed-forward network and
un-embedding (spec NORM-*, FFN-*, UNEMB-*). The components are built as in components."""

import math

import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import Tensor
from transformer_spec.properties.checks.components import (
    _SEEDS,
    _WIDTHS,
    VOCAB,
    _applicable,
    _build,
    _eps,
    _need,
    _normal,
)
from transformer_spec.properties.checks.reference_math import layer_norm64
from transformer_spec.properties.harness.compare import check_close, max_abs, relative_bound
from transformer_spec.properties.harness.registry import Check, Context, prop

_LN_EPS = 1e-5  # the assumed LayerNorm epsilon; a target's 1e-6 or 0 is within the bound

# ---------------------------------------------------------------- LayerNorm


def _rows(seed: int, shape: tuple[int, ...], ctx: Context) -> Tensor:
    """Rows with std in [0.5, 2] and mean in [-1, 1], rounded to the dtype."""
    z = _normal(seed, shape)
    z = (z - z.mean(-1, keepdim=True)) / z.std(-1, unbiased=False, keepdim=True)
    g = torch.Generator().manual_seed(seed + 1)
    std = 0.5 + 1.5 * torch.rand((*shape[:-1], 1), generator=g, dtype=torch.float64)
    mean = 2 * torch.rand((*shape[:-1], 1), generator=g, dtype=torch.float64) - 1
    return (z * std + mean).to(ctx.dtype).to(ctx.device)


def _ln64(ctx: Context, x: Tensor) -> tuple[Tensor, float]:
    """Float64 LayerNorm (eps 1e-5) in the target's declared variant, and the smallest row
    variance."""
    x = x.double().cpu()
    return layer_norm64(x, ctx.target.conventions, _LN_EPS), float(x.var(-1, unbiased=False).min())


def _ln_bound(ctx: Context, want: Tensor, min_var: float) -> float:
    """Rounding (a few eps of the output) plus what an epsilon anywhere in [0, 1e-5] changes:
    |d y| <= |y| * d_eps / (2 var) inside the square root, |y| * d_eps / std outside."""
    moved = _LN_EPS / min(2 * min_var, math.sqrt(min_var))
    return (4 * _eps(ctx) + moved) * max(1.0, max_abs(want)) + (
        ctx.tolerance.reference_floor if ctx.precision == torch.float64 else 0.0
    )


_LN_WIDTHS = st.integers(4, 12)


@prop(
    "components.layer_norm_matches_formula",
    clauses=("NORM-LAYERNORM",),
    needs=("components",),
    conventions=("layer_norm_variance", "layer_norm_eps", "statistics_dtype"),
)
def layer_norm_formula(ctx: Context) -> Check:
    """layer_norm(x) equals (x - mean) / sqrt(var + eps) over the last dim, biased variance
    (rows have mean 0 and variance 1), or the variant the target declares. Assumes
    eps <= 1e-5 on rows with std >= 0.5; a target whose components declare
    `layer_norm_eps` is also checked with that eps on rows with std ~0.01."""
    _applicable(ctx, "layer_norm", lambda c: c.layer_norm(_rows(0, (1, 2, 8), ctx)))

    @given(_LN_WIDTHS, st.integers(1, 3), st.integers(1, 6), _SEEDS)
    def check(d: int, b: int, t: int, seed: int) -> None:
        x = _rows(seed, (b, t, d), ctx)
        comps = _build(ctx, d, seed)
        got = _need(comps.layer_norm(x), "layer_norm")
        want, min_var = _ln64(ctx, x)
        check_close(got.cpu(), want, _ln_bound(ctx, want, min_var), f"layer_norm (d_model={d})", x)
        eps = getattr(comps, "layer_norm_eps", None)
        if isinstance(eps, float) and eps > 0:
            # A declared eps is checked exactly, on rows with std 0.01 where it matters: eps
            # inside or outside the square root then differs by about 5%.
            small = (x.double() * 0.01).to(ctx.dtype)
            want = layer_norm64(small.cpu(), ctx.target.conventions, eps)
            got = _need(comps.layer_norm(small), "layer_norm")
            bound = 8 * _eps(ctx) * max(1.0, max_abs(want)) + ctx.tolerance.reference_floor
            what = f"layer_norm (d_model={d}) of rows with std ~0.01, declared eps {eps:g}"
            check_close(got.cpu(), want, bound, what, small)

    return check


@prop(
    "components.layer_norm_shift_scale_invariant",
    clauses=("NORM-LAYERNORM",),
    needs=("components",),
)
def layer_norm_invariant(ctx: Context) -> Check:
    """layer_norm(a * x + b) equals layer_norm(x) for a > 0 and any shift b."""
    _applicable(ctx, "layer_norm", lambda c: c.layer_norm(_rows(0, (1, 2, 8), ctx)))

    @given(
        _LN_WIDTHS,
        st.floats(0.5, 4.0),
        st.floats(-3.0, 3.0).filter(lambda v: abs(v) >= 0.5),
        _SEEDS,
    )
    def check(d: int, a: float, shift: float, seed: int) -> None:
        x = _rows(seed, (2, 4, d), ctx)
        y = (a * x.double() + shift).to(ctx.dtype)
        comps = _build(ctx, d, seed)
        got_x = _need(comps.layer_norm(x), "layer_norm")
        got_y = _need(comps.layer_norm(y), "layer_norm")
        want_x, var_x = _ln64(ctx, x)
        want_y, var_y = _ln64(ctx, y)
        # the float64 effect of rounding a * x + b to the dtype, plus both formula bounds
        bound = (
            _ln_bound(ctx, want_x, var_x) + _ln_bound(ctx, want_y, var_y) + max_abs(want_y - want_x)
        )
        check_close(
            got_y.cpu(),
            got_x.cpu(),
            bound,
            f"layer_norm({a:.3g} * x + {shift:.3g}) vs layer_norm(x)",
        )

    return check


def _gain_and_bias(seed: int, d: int, ctx: Context) -> tuple[Tensor, Tensor]:
    """A gain and a bias of width d, rounded to the dtype: |gain| in [0.5, 0.8] or [1.25, 2]
    (so gain and 1/gain differ by 0.45 or more), |bias| in [0.5, 2], random signs."""
    g = torch.Generator().manual_seed(seed + 2)
    low = 0.5 + 0.3 * torch.rand(d, generator=g, dtype=torch.float64)
    high = 1.25 + 0.75 * torch.rand(d, generator=g, dtype=torch.float64)
    gain = torch.where(torch.rand(d, generator=g) < 0.5, low, high)
    bias = 0.5 + 1.5 * torch.rand(d, generator=g, dtype=torch.float64)
    signs = torch.randint(0, 2, (2, d), generator=g).double() * 2 - 1
    return (gain * signs[0]).to(ctx.dtype), (bias * signs[1]).to(ctx.dtype)


@prop(
    "components.layer_norm_gain_and_bias",
    clauses=("NORM-LAYERNORM",),
    needs=("components",),
    conventions=("layer_norm_variance", "layer_norm_eps", "statistics_dtype"),
)
def layer_norm_gain_and_bias(ctx: Context) -> Check:
    """With a gain and a bias set (as in a trained model), layer_norm(x) equals
    gain * (x - mean) / sqrt(var + eps) + bias, per feature. Fresh LayerNorms have gain 1 and
    bias 0, where a kernel that subtracts the bias, divides by the gain or applies it before
    normalising looks correct."""
    x0 = _rows(0, (1, 2, 8), ctx)  # _build's d_model
    unit = torch.ones(8, dtype=ctx.dtype, device=ctx.device)
    _applicable(ctx, "layer_norm_affine", lambda c: c.layer_norm_affine(x0, unit, unit - 1))

    @given(_LN_WIDTHS, st.integers(1, 3), st.integers(1, 6), _SEEDS)
    def check(d: int, b: int, t: int, seed: int) -> None:
        x = _rows(seed, (b, t, d), ctx)
        gain, bias = _gain_and_bias(seed, d, ctx)
        comps = _build(ctx, d, seed)
        got = _need(
            comps.layer_norm_affine(x, gain.to(ctx.device), bias.to(ctx.device)),
            "layer_norm_affine",
        )
        normed, min_var = _ln64(ctx, x)
        want = normed * gain.double() + bias.double()
        # the normalised rows' bound, scaled by the gain, plus rounding the product and sum
        bound = _ln_bound(ctx, normed, min_var) * max_abs(gain.double()) + 4 * _eps(ctx) * max(
            1.0, max_abs(want)
        )
        what = f"layer_norm_affine (d_model={d}) with gain {gain.tolist()} and bias {bias.tolist()}"
        check_close(got.cpu(), want, bound, what, x)

    return check


@prop("components.layer_norm_per_row", clauses=("NORM-NO-BATCH-STATS",), needs=("components",))
def layer_norm_per_row(ctx: Context) -> Check:
    """layer_norm of one row alone equals that row's output within the batch; changing the
    other batch items and positions leaves it unchanged."""
    _applicable(ctx, "layer_norm", lambda c: c.layer_norm(_rows(0, (1, 2, 8), ctx)))

    @given(_LN_WIDTHS, st.integers(2, 4), st.integers(1, 6), _SEEDS, st.data())
    def check(d: int, b: int, t: int, seed: int, data: st.DataObject) -> None:
        i = data.draw(st.integers(0, b - 1), label="i")
        j = data.draw(st.integers(0, t - 1), label="j")
        comps = _build(ctx, d, seed)
        x = _rows(seed, (b, t, d), ctx)
        other = _rows(seed + 7, (b, t, d), ctx) * 3
        other[i, j] = x[i, j]
        full = _need(comps.layer_norm(x), "layer_norm")
        alone = _need(comps.layer_norm(x[i : i + 1, j : j + 1]), "layer_norm")
        mixed = _need(comps.layer_norm(other), "layer_norm")
        bound = relative_bound(ctx.tolerance.invariance, full)
        check_close(alone[0, 0], full[i, j], bound, f"row ({i}, {j}) alone vs in the batch")
        check_close(mixed[i, j], full[i, j], bound, f"row ({i}, {j}) after changing the other rows")

    return check


# ---------------------------------------------------------------- feed-forward


@prop("components.feed_forward_positionwise", clauses=("FFN-POSITIONWISE",), needs=("components",))
def feed_forward_positionwise(ctx: Context) -> Check:
    """feed_forward of one position alone equals that position's output in the sequence, and
    permuting positions permutes the outputs."""
    _applicable(ctx, "feed_forward", lambda c: c.feed_forward(_rows(0, (1, 2, 8), ctx)))

    @given(_WIDTHS, st.integers(2, 8), _SEEDS, st.permutations(range(8)), st.data())
    def check(d: int, t: int, seed: int, perm: list[int], data: st.DataObject) -> None:
        j = data.draw(st.integers(0, t - 1), label="j")
        order = torch.tensor([p for p in perm if p < t], device=ctx.device)
        comps = _build(ctx, d, seed)
        x = _normal(seed, (2, t, d)).to(ctx.dtype).to(ctx.device)
        full = _need(comps.feed_forward(x), "feed_forward")
        alone = _need(comps.feed_forward(x[:, j : j + 1]), "feed_forward")
        permuted = _need(comps.feed_forward(x[:, order]), "feed_forward")
        bound = relative_bound(ctx.tolerance.invariance, full)
        check_close(alone[:, 0], full[:, j], bound, f"position {j} alone vs in the sequence")
        check_close(
            permuted, full[:, order], bound, f"outputs of positions permuted by {order.tolist()}"
        )

    return check


@prop("components.feed_forward_nonlinear", clauses=("FFN-NONLINEAR",), needs=("components",))
def feed_forward_nonlinear(ctx: Context) -> Check:
    """The FFN is not affine: FFN(a) + FFN(-a) - 2 FFN(0) (zero for an affine map) is far
    from zero for large inputs a, which cross the activation's kinks."""
    _applicable(ctx, "feed_forward", lambda c: c.feed_forward(_rows(0, (1, 2, 8), ctx)))

    @given(_WIDTHS, _SEEDS)
    def check(d: int, seed: int) -> None:
        comps = _build(ctx, d, seed)
        a = _normal(seed, (1, 8, d), 4.0).to(ctx.dtype).to(ctx.device)
        f = _need(comps.feed_forward(torch.cat([a, -a, torch.zeros_like(a)])), "feed_forward")
        f = f.double()
        gap = f[0] + f[1] - 2 * f[2]
        size = max_abs(f[0] - f[2])
        margin = max(0.1, 50 * _eps(ctx)) * size
        if not max_abs(gap) > margin:
            raise AssertionError(
                f"FFN(a) + FFN(-a) - 2 FFN(0) is at most {max_abs(gap):.3g} for inputs of "
                f"size {max_abs(a):.3g} (FFN(a) - FFN(0) up to {size:.3g}): the FFN looks "
                f"affine (no non-linearity), d_model={d}"
            )

    return check


# ---------------------------------------------------------------- un-embedding


@prop("components.unembed_positionwise", clauses=("UNEMB-POSITIONWISE",), needs=("components",))
def unembed_positionwise(ctx: Context) -> Check:
    """unembed of one position alone equals that position's logits in the sequence."""
    _applicable(ctx, "unembed", lambda c: c.unembed(_rows(0, (1, 2, 8), ctx)))

    @given(_WIDTHS, st.integers(2, 8), _SEEDS, st.data())
    def check(d: int, t: int, seed: int, data: st.DataObject) -> None:
        j = data.draw(st.integers(0, t - 1), label="j")
        comps = _build(ctx, d, seed)
        x = _normal(seed, (2, t, d)).to(ctx.dtype).to(ctx.device)
        full = _need(comps.unembed(x), "unembed")
        alone = _need(comps.unembed(x[:, j : j + 1]), "unembed")
        if full.shape != (2, t, VOCAB):
            raise AssertionError(f"unembed shape {tuple(full.shape)}, expected {(2, t, VOCAB)}")
        check_close(
            alone[:, 0],
            full[:, j],
            relative_bound(ctx.tolerance.invariance, full),
            f"logits of position {j} alone vs in the sequence",
        )

    return check
