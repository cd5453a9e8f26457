"""Building blocks on their own: embedding, positional encoding, LayerNorm, feed-forward
network and un-embedding (spec EMB-*, PE-*, NORM-*, FFN-*, UNEMB-*)."""

import math
from collections.abc import Callable

import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import Tensor
from transformer_spec.properties.checks.reference_math import layer_norm64
from transformer_spec.properties.harness.compare import check_close, max_abs, relative_bound
from transformer_spec.properties.harness.registry import Check, Context, NotApplicable, prop
from transformer_spec.properties.targets.protocols import Components, ComponentSpec

VOCAB, D_FF, MAX_LEN = 20, 32, 32
_LN_EPS = 1e-5  # the assumed LayerNorm epsilon; a target's 1e-6 or 0 is within the bound
_SEEDS = st.integers(0, 2**16)


def _build(ctx: Context, d_model: int = 8, seed: int = 0) -> Components:
    factory = ctx.target.components
    assert factory is not None  # guaranteed by needs=("components",)
    spec = ComponentSpec(VOCAB, d_model, D_FF, MAX_LEN, ctx.dtype, ctx.device, seed)
    return factory(spec)


def _applicable(ctx: Context, method: str, call: Callable[[Components], object]) -> None:
    """Raise NotApplicable now (while building) when the target lacks `method`."""
    comps = _build(ctx)
    if not hasattr(comps, method) or call(comps) is None:
        raise NotApplicable(f"target's components give no {method}")


def _need(t: Tensor | None, what: str) -> Tensor:
    if t is None:
        raise AssertionError(f"{what} returned None on one call but not on another")
    return t


def _normal(seed: int, shape: tuple[int, ...], scale: float = 1.0) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float64) * scale


def _tokens(seed: int, batch: int, length: int, ctx: Context) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, VOCAB, (batch, length), generator=g).to(ctx.device)


def _eps(ctx: Context) -> float:
    return float(torch.finfo(ctx.precision).eps)


# ---------------------------------------------------------------- positional encoding


def _sinusoidal(ctx: Context) -> str:
    """The declared sinusoid layout, or NotApplicable (checked while building)."""
    comps = _build(ctx)
    layout = str(comps.positional_layout)
    if layout not in ("interleaved", "concat_t2t"):
        raise NotApplicable(f"positional layout {layout!r} has no sinusoid formula")
    if comps.positional_table(2) is None:
        raise NotApplicable("target's components give no positional table")
    return layout


def _pairs(layout: str, d: int) -> tuple[list[int], list[int], Tensor]:
    """(sin channels, cos channels, angular frequencies) of each full (sin, cos) pair."""
    if layout == "interleaved":
        n = d // 2
        w = 10000.0 ** (-torch.arange(0, 2 * n, 2, dtype=torch.float64) / d)
        return list(range(0, 2 * n, 2)), list(range(1, 2 * n, 2)), w
    n = d // 2
    w = 10000.0 ** (-torch.arange(n, dtype=torch.float64) / (n - 1))
    return list(range(n)), list(range(n, 2 * n)), w


def _pe64(layout: str, n: int, d: int, start: int = 0) -> Tensor:
    pos = torch.arange(start, start + n, dtype=torch.float64)[:, None]
    sin_ch, cos_ch, w = _pairs(layout, d)
    pe = torch.zeros(n, d, dtype=torch.float64)
    pe[:, sin_ch] = torch.sin(pos * w)
    pe[:, cos_ch] = torch.cos(pos * w)
    if layout == "interleaved" and d % 2:  # an odd width ends on a sin channel
        pe[:, d - 1] = torch.sin(pos[:, 0] * 10000.0 ** (-(d - 1) / d))
    return pe


_WIDTHS = st.integers(4, 24)


@prop(
    "components.positional_table_matches_formula",
    clauses=("PE-INTERLEAVED", "PE-CONCAT-T2T", "PE-T2T-TIMESCALES"),
    needs=("components",),
)
def positional_formula(ctx: Context) -> Check:
    """positional_table(n) equals the float64 sinusoid formula of the declared layout
    (interleaved sin/cos, or tensor2tensor [sin | cos] with timescales 10000^(-j/(n-1)))."""
    layout = _sinusoidal(ctx)

    @given(_WIDTHS, st.integers(1, MAX_LEN), _SEEDS)
    def check(d: int, n: int, seed: int) -> None:
        got = _need(_build(ctx, d, seed).positional_table(n), "positional_table")
        want = _pe64(layout, n, d)
        check_close(
            got.cpu(),
            want,
            relative_bound(ctx.tolerance.absolute),
            f"positional_table({n}) vs the {layout} formula (d_model={d})",
        )

    return check


@prop("components.positional_range_and_origin", clauses=("PE-RANGE",), needs=("components",))
def positional_range(ctx: Context) -> Check:
    """Every positional value lies in [-1, 1]; at position 0 the sin channels are 0 and the
    cos channels 1 (in the declared layout)."""
    layout = _sinusoidal(ctx)

    @given(_WIDTHS, _SEEDS)
    def check(d: int, seed: int) -> None:
        pe = _need(_build(ctx, d, seed).positional_table(MAX_LEN), "positional_table")
        pe = pe.double().cpu()
        top = max_abs(pe)
        if not top <= 1.0 + _eps(ctx):
            raise AssertionError(f"positional value of magnitude {top:.4g} outside [-1, 1]")
        sin_ch, cos_ch, _ = _pairs(layout, d)
        want = torch.zeros(d, dtype=torch.float64)
        want[cos_ch] = 1.0
        check_close(
            pe[0],
            want,
            _eps(ctx),
            f"position 0 (sin channels {sin_ch} must be 0, cos channels {cos_ch} must be 1)",
        )

    return check


@prop(
    "components.positional_relative_rotation",
    clauses=("PE-RELATIVE-LINEAR",),
    needs=("components",),
)
def positional_rotation(ctx: Context) -> Check:
    """For every offset k, rotating each (sin, cos) pair of PE(pos) by k * w (w that pair's
    frequency in the declared layout) gives PE(pos + k)."""
    layout = _sinusoidal(ctx)

    @given(_WIDTHS, _SEEDS)
    def check(d: int, seed: int) -> None:
        pe = _need(_build(ctx, d, seed).positional_table(MAX_LEN), "positional_table")
        pe = pe.double().cpu()
        sin_ch, cos_ch, w = _pairs(layout, d)
        s, c = pe[:, sin_ch], pe[:, cos_ch]
        bound = relative_bound(ctx.tolerance.absolute)
        for k in range(1, MAX_LEN):
            sk, ck = torch.sin(k * w), torch.cos(k * w)
            rot_s = s[:-k] * ck + c[:-k] * sk
            rot_c = c[:-k] * ck - s[:-k] * sk
            check_close(
                torch.cat([rot_s, rot_c], 1),
                torch.cat([s[k:], c[k:]], 1),
                bound,
                f"PE(pos) rotated by offset {k} vs PE(pos + {k}) ({layout}, d_model={d})",
            )

    return check


@prop(
    "components.positional_start_index",
    clauses=("PE-T2T-START-INDEX",),
    needs=("components",),
)
def positional_start(ctx: Context) -> Check:
    """positional_table(n, start=s) equals rows s .. s + n - 1 of positional_table(n + s)."""
    _sinusoidal(ctx)

    @given(_WIDTHS, st.integers(1, MAX_LEN - 1), st.data())
    def check(d: int, start: int, data: st.DataObject) -> None:
        n = data.draw(st.integers(1, MAX_LEN - start), label="n")
        comps = _build(ctx, d)
        got = _need(comps.positional_table(n, start), "positional_table")
        full = _need(comps.positional_table(n + start), "positional_table")
        check_close(
            got,
            full[start:],
            relative_bound(ctx.tolerance.invariance),
            f"positional_table({n}, start={start}) vs rows {start}.. of "
            f"positional_table({n + start})",
        )

    return check


@prop("components.positions_added", clauses=("PE-ADDED",), needs=("components",))
def positions_added(ctx: Context) -> Check:
    """embed_with_positions(tokens) equals embed(tokens) + positional_table(t), width d_model."""
    _applicable(
        ctx, "embed_with_positions", lambda c: c.embed_with_positions(_tokens(0, 1, 2, ctx))
    )
    _applicable(ctx, "positional_table", lambda c: c.positional_table(2))

    @given(_WIDTHS, st.integers(1, MAX_LEN), _SEEDS)
    def check(d: int, t: int, seed: int) -> None:
        comps = _build(ctx, d, seed)
        tokens = _tokens(seed, 2, t, ctx)
        got = _need(comps.embed_with_positions(tokens), "embed_with_positions")
        e = _need(comps.embed(tokens), "embed").double()
        pe = _need(comps.positional_table(t), "positional_table").double()
        want = e + pe.to(e.device)[None]
        check_close(
            got,
            want,
            relative_bound(ctx.tolerance.invariance, want),
            f"embed_with_positions vs embed + positional_table ({t} positions, d_model={d})",
        )

    return check


# ---------------------------------------------------------------- embedding


@prop(
    "components.embedding_is_onehot_lookup", clauses=("EMB-LOOKUP-ONEHOT",), needs=("components",)
)
def embedding_lookup(ctx: Context) -> Check:
    """embed(tokens) equals one_hot(tokens) @ embedding_matrix() * embedding_scale (float64)."""
    _applicable(ctx, "embedding_matrix", lambda c: c.embedding_matrix())
    _applicable(ctx, "embed", lambda c: c.embed(_tokens(0, 1, 2, ctx)))

    @given(_WIDTHS, st.integers(1, 12), _SEEDS)
    def check(d: int, t: int, seed: int) -> None:
        comps = _build(ctx, d, seed)
        tokens = _tokens(seed, 2, t, ctx)
        m = _need(comps.embedding_matrix(), "embedding_matrix").double()
        one_hot = torch.nn.functional.one_hot(tokens, VOCAB).double().to(m.device)
        want = one_hot @ m * float(comps.embedding_scale)
        got = _need(comps.embed(tokens), "embed")
        check_close(
            got,
            want,
            ctx.tolerance.invariance * max_abs(want),
            f"embed vs one_hot @ M * {comps.embedding_scale:g} (d_model={d})",
            tokens,
        )

    return check


@prop("components.embedding_context_free", clauses=("EMB-CONTEXT-FREE",), needs=("components",))
def embedding_context_free(ctx: Context) -> Check:
    """The same token id gets the same vector at any position, whatever its neighbours."""
    _applicable(ctx, "embed", lambda c: c.embed(_tokens(0, 1, 2, ctx)))

    @given(_WIDTHS, st.integers(2, 12), _SEEDS, st.data())
    def check(d: int, t: int, seed: int, data: st.DataObject) -> None:
        i = data.draw(st.integers(0, t - 1), label="i")
        j = data.draw(st.integers(0, t - 1).filter(lambda j: j != i), label="j")
        comps = _build(ctx, d, seed)
        tokens = _tokens(seed, 1, t, ctx)
        tokens[0, j] = tokens[0, i]
        others = _tokens(seed + 1, 1, t, ctx)
        others[0, i] = tokens[0, i]
        a = _need(comps.embed(tokens), "embed")
        b = _need(comps.embed(others), "embed")
        bound = ctx.tolerance.invariance * max(max_abs(a), max_abs(b))
        check_close(a[0, j], a[0, i], bound, f"token {int(tokens[0, i])} at {j} vs at {i}")
        check_close(b[0, i], a[0, i], bound, f"token at position {i} after changing its neighbours")

    return check


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
