"""Properties of the clauses beyond the notes (spec/16_beyond_notes.toml): RMSNorm and
gated feed-forward networks, at the components level, each against its float64 formula
or a structural promise."""

import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import Tensor, nn
from transformer_spec.properties.checks.components import (
    _SEEDS,
    _applicable,
    _build,
    _eps,
    _need,
    _normal,
)
from transformer_spec.properties.checks.components_positionwise import _rows
from transformer_spec.properties.harness.compare import check_close, max_abs
from transformer_spec.properties.harness.registry import Check, Context, NotApplicable, prop

_WIDTHS = st.integers(4, 12)
_DEFAULT_EPS = 1e-6  # the usual RMSNorm eps (Llama's), when the target declares none


def _rms64(x: Tensor, eps: float) -> Tensor:
    x = x.double().cpu()
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)


def _rms_bound(ctx: Context, want: Tensor, x: Tensor, eps_known: bool) -> float:
    """Rounding (a few eps of the output), plus what an eps anywhere in [0, 1e-5] changes
    when the target declares none: |dy| <= |y| * d_eps / (2 mean(x^2))."""
    mean_square = float(x.double().pow(2).mean(-1).min())
    moved = 0.0 if eps_known else 1e-5 / (2 * mean_square)
    floor = ctx.tolerance.reference_floor if ctx.precision == torch.float64 else 0.0
    return (4 * _eps(ctx) + moved) * max(1.0, max_abs(want)) + floor


@prop(
    "components.rms_norm_matches_formula", clauses=("EXT-RMSNORM-FORMULA",), needs=("components",)
)
def rms_norm_formula(ctx: Context) -> Check:
    """rms_norm(x) equals x / sqrt(mean(x^2) + eps) over the last dim at gain 1, with the
    declared `rms_norm_eps` (checked exactly, also on rows of size ~0.01 where it matters),
    or any eps <= 1e-5 on rows of size >= 0.5 when none is declared."""
    _applicable(ctx, "rms_norm", lambda c: c.rms_norm(_rows(0, (1, 2, 8), ctx)))

    @given(_WIDTHS, st.integers(1, 3), st.integers(1, 6), _SEEDS)
    def check(d: int, b: int, t: int, seed: int) -> None:
        comps = _build(ctx, d, seed)
        declared = getattr(comps, "rms_norm_eps", None)
        known = isinstance(declared, float) and declared > 0
        eps = float(declared) if known else _DEFAULT_EPS  # type: ignore[arg-type]
        for scale in (1.0, 0.01) if known else (1.0,):
            x = (_rows(seed, (b, t, d), ctx).double() * scale).to(ctx.dtype)
            want = _rms64(x, eps)
            got = _need(comps.rms_norm(x), "rms_norm")
            what = f"rms_norm (d_model={d}) of rows of size ~{scale:g}" + (
                f", declared eps {eps:g}" if known else ""
            )
            check_close(got.cpu(), want, _rms_bound(ctx, want, x, known), what, x)

    return check


@prop(
    "components.rms_norm_rescales_without_centring",
    clauses=("EXT-RMSNORM-NO-CENTRING",),
    needs=("components",),
)
def rms_norm_no_centring(ctx: Context) -> Check:
    """rms_norm(a x) equals rms_norm(x) for a > 0, and a constant row c * 1 maps to
    sign(c) * 1: no mean is subtracted (a LayerNorm would give zeros)."""
    _applicable(ctx, "rms_norm", lambda c: c.rms_norm(_rows(0, (1, 2, 8), ctx)))

    @given(
        _WIDTHS, st.floats(0.5, 4.0), st.floats(-3.0, 3.0).filter(lambda v: abs(v) >= 0.5), _SEEDS
    )
    def check(d: int, a: float, c: float, seed: int) -> None:
        comps = _build(ctx, d, seed)
        x = _rows(seed, (2, 3, d), ctx)
        base = _need(comps.rms_norm(x), "rms_norm")
        scaled = _need(comps.rms_norm((x.double() * a).to(ctx.dtype)), "rms_norm")
        bound = (8 * _eps(ctx) + 1e-5) * max(1.0, max_abs(base))
        check_close(scaled, base, bound, f"rms_norm({a:.3g} x) vs rms_norm(x)")
        row = torch.full((1, 1, d), c, dtype=ctx.dtype, device=ctx.device)
        want = torch.full((1, 1, d), 1.0 if c > 0 else -1.0, dtype=torch.float64)
        got = _need(comps.rms_norm(row), "rms_norm")
        check_close(got.cpu(), want, 8 * _eps(ctx) + 1e-5, f"rms_norm of the constant row {c:.3g}")

    return check


_ACTIVATIONS = {"silu": nn.SiLU(), "gelu": nn.GELU(), "gelu_tanh": nn.GELU(approximate="tanh")}


@prop("components.gated_ffn_matches_formula", clauses=("EXT-GLU-FORMULA",), needs=("components",))
def gated_ffn_formula(ctx: Context) -> Check:
    """gated_feed_forward(x) equals (act(x W_gate) * (x W_up)) W_down in float64, from the
    target's own weights, with its declared `gated_activation`."""
    comps = _build(ctx)
    if not hasattr(comps, "gated_feed_forward") or comps.gated_feed_forward_weights() is None:
        raise NotApplicable("target's components give no gated_feed_forward with its weights")
    act_name = getattr(comps, "gated_activation", None)
    if act_name not in _ACTIVATIONS:
        raise NotApplicable(
            f"target's components declare gated_activation={act_name!r}; expected one of "
            f"{sorted(_ACTIVATIONS)}"
        )
    act = _ACTIVATIONS[str(act_name)]

    @given(_WIDTHS, st.integers(1, 6), _SEEDS)
    def check(d: int, t: int, seed: int) -> None:
        comps = _build(ctx, d, seed)
        weights = comps.gated_feed_forward_weights()
        if weights is None:
            raise AssertionError("gated_feed_forward_weights() returned None for this size")
        w_gate, w_up, w_down = (w.double().cpu() for w in weights)
        x = _normal(seed, (2, t, d)).to(ctx.dtype).to(ctx.device)
        x64 = x.double().cpu()
        want = (act(x64 @ w_gate) * (x64 @ w_up)) @ w_down
        got = _need(comps.gated_feed_forward(x), "gated_feed_forward")
        # How far the same formula computed in the build's dtype strays, times the usual
        # factor, bounds a correct implementation's rounding (as the attention formulas do).
        low = [w.to(ctx.precision) for w in (w_gate, w_up, w_down)]
        xl = x64.to(ctx.precision)
        naive = ((act(xl @ low[0]) * (xl @ low[1])) @ low[2]).double()
        tol = ctx.tolerance
        rounding = 4 * _eps(ctx) * max(1.0, max_abs(want))
        bound = max(tol.reference_factor * max_abs(naive - want), rounding) + tol.reference_floor
        check_close(got.cpu(), want, bound, f"gated FFN ({act_name}, d_model={d}) vs formula", x)

    return check


# ---------------------------------------------------------------- rotary positions

_PAIRINGS = ("half_split", "interleaved")


def _rotary_declared(ctx: Context) -> tuple[str, float, int | None]:
    """The declared pairing, base and width, or NotApplicable (checked while building)."""
    comps = _build(ctx)
    head = torch.zeros(1, 1, 2, 8, dtype=ctx.dtype, device=ctx.device)
    if not hasattr(comps, "rotary") or comps.rotary(head, torch.arange(2)) is None:
        raise NotApplicable("target's components give no rotary")
    pairing = getattr(comps, "rotary_pairing", None)
    base = getattr(comps, "rotary_base", None)
    width = getattr(comps, "rotary_dim", None)
    if pairing not in _PAIRINGS or not isinstance(base, float) or base <= 1:
        raise NotApplicable(
            f"target's components declare rotary_pairing={pairing!r}, rotary_base={base!r}; "
            f"expected one of {_PAIRINGS} and a float base > 1"
        )
    if width is not None and not (isinstance(width, int) and width > 0 and width % 2 == 0):
        raise NotApplicable(
            f"target's components declare rotary_dim={width!r}; expected an even int"
        )
    return str(pairing), base, width


def _rope(
    x: Tensor, positions: Tensor, pairing: str, base: float, width: int | None, dtype: torch.dtype
) -> Tensor:
    """The RoFormer rotation written here, apart from the reference (whose mutants it must
    catch), computed in `dtype` on the cpu: float64 for the truth, the build's dtype to see
    how far rounding alone moves a correct implementation."""
    x, positions = x.detach().cpu().to(dtype), positions.cpu()
    r = x.shape[-1] if width is None else width
    freq = base ** (-torch.arange(0, r, 2, dtype=torch.float64) / r)
    angle = positions.double()[:, None] * freq[None, :]
    cos, sin = angle.cos().to(dtype), angle.sin().to(dtype)
    if pairing == "half_split":
        a, b = x[..., : r // 2], x[..., r // 2 : r]
        turned = torch.cat([a * cos - b * sin, a * sin + b * cos], -1)
    else:
        a, b = x[..., 0:r:2], x[..., 1:r:2]
        turned = torch.stack([a * cos - b * sin, a * sin + b * cos], -1).flatten(-2)
    return torch.cat([turned, x[..., r:]], -1)


# Rotary angles are commonly taken in float32 whatever the build's dtype: transformers
# computes inv_freq x positions in float32 with autocast off, so its float64 Llama rotates
# by angles rounded to float32 (9.5e-8 off at position 1 against float64's 1e-10 bound).
# That rounding, 2 float32 eps of each angle (the frequency's and the product's), is allowed
# in every dtype; the smallest bug in the catalogue (a rotation scaled by 1.01) is 1e5 times
# larger.
_ANGLE_EPS = 2 * float(torch.finfo(torch.float32).eps)


def _angle_slack(largest_angle: float, size: float) -> float:
    """How far float32 angles up to `largest_angle` move a result of this size."""
    return 2 * _ANGLE_EPS * (1.0 + largest_angle) * size


def _heads(seed: int, d: int, t: int, ctx: Context) -> Tensor:
    return _normal(seed, (2, 2, t, d)).to(ctx.dtype).to(ctx.device)


_POSITIONS = st.lists(st.integers(0, 64), min_size=1, max_size=6)
_HEAD_WIDTHS = st.sampled_from([8, 12, 16])


@prop("components.rotary_matches_formula", clauses=("EXT-ROPE-FORMULA",), needs=("components",))
def rotary_formula(ctx: Context) -> Check:
    """rotary(x, positions) equals the float64 rotation of each channel pair by
    position * base^(-2i / r), in the declared pairing, base and rotary width."""
    pairing, base, width = _rotary_declared(ctx)

    @given(_HEAD_WIDTHS, _POSITIONS, _SEEDS)
    def check(d: int, positions: list[int], seed: int) -> None:
        if width is not None and width > d:
            return
        comps = _build(ctx, seed=seed)
        x = _heads(seed, d, len(positions), ctx)
        pos = torch.tensor(positions, device=ctx.device)
        want = _rope(x, pos, pairing, base, width, torch.float64)
        naive = _rope(x, pos, pairing, base, width, ctx.precision)
        got = _need(comps.rotary(x, pos), "rotary")
        tol = ctx.tolerance
        rounding = 4 * _eps(ctx) * max(1.0, max_abs(want))
        bound = max(tol.reference_factor * max_abs(naive.double() - want), rounding)
        bound += _angle_slack(max(positions), max_abs(x.double()))
        what = f"rotary ({pairing}, base {base:g}, d_k={d}) at positions {positions}"
        check_close(got.cpu(), want, bound + tol.reference_floor, what, x)

    return check


@prop("components.rotary_preserves_norm", clauses=("EXT-ROPE-NORM",), needs=("components",))
def rotary_norm(ctx: Context) -> Check:
    """Every rotated query or key vector has the norm it had."""
    _rotary_declared(ctx)

    @given(_HEAD_WIDTHS, _POSITIONS, _SEEDS)
    def check(d: int, positions: list[int], seed: int) -> None:
        comps = _build(ctx, seed=seed)
        x = _heads(seed, d, len(positions), ctx)
        got = _need(comps.rotary(x, torch.tensor(positions, device=ctx.device)), "rotary")
        want = x.double().norm(dim=-1)
        bound = 8 * _eps(ctx) * max(1.0, max_abs(want)) + _angle_slack(0.0, max_abs(want))
        check_close(got.double().norm(dim=-1).cpu(), want.cpu(), bound, "norms after rotary")

    return check


@prop("components.rotary_scores_relative", clauses=("EXT-ROPE-RELATIVE",), needs=("components",))
def rotary_relative(ctx: Context) -> Check:
    """The scores rotary(q, m) . rotary(k, n) are unchanged when every position moves by c."""
    pairing, base_freq, width = _rotary_declared(ctx)

    @given(_HEAD_WIDTHS, _POSITIONS, st.integers(1, 40), _SEEDS)
    def check(d: int, positions: list[int], shift: int, seed: int) -> None:
        if width is not None and width > d:
            return
        comps = _build(ctx, seed=seed)
        q, k = _heads(seed, d, len(positions), ctx), _heads(seed + 1, d, len(positions), ctx)
        pos = torch.tensor(positions, device=ctx.device)

        def scores(p: Tensor) -> Tensor:
            rq, rk = _need(comps.rotary(q, p), "rotary"), _need(comps.rotary(k, p), "rotary")
            return (rq.double() @ rk.double().transpose(-2, -1)).cpu()

        def naive(p: Tensor) -> Tensor:  # the formula rounded as the build's dtype rounds it
            rq = _rope(q, p, pairing, base_freq, width, ctx.precision)
            rk = _rope(k, p, pairing, base_freq, width, ctx.precision)
            return rq.double() @ rk.double().transpose(-2, -1)

        base, moved = scores(pos), scores(pos + shift)
        spread = max_abs(naive(pos) - naive(pos + shift))
        rounding = 4 * _eps(ctx) * max(1.0, max_abs(base))
        scores_size = d * max_abs(q.double()) * max_abs(k.double())
        bound = (
            max(ctx.tolerance.reference_factor * spread, rounding)
            + ctx.tolerance.reference_floor
            + _angle_slack(max(positions) + shift, scores_size)
        )
        check_close(moved, base, bound, f"scores after shifting every position by {shift}")

    return check


# ---- ALiBi -------------------------------------------------------------------------------


def paper_slopes(n_heads: int) -> Tensor:
    """The paper's slopes, written out independently of the reference: 2^(-8 (h+1) / n) for
    n a power of two; else those of the power of two below, then every other one of twice
    as many (EXT-ALIBI-SLOPES)."""
    below = 1 << (n_heads.bit_length() - 1)
    geometric = [2.0 ** (-8.0 * (h + 1) / below) for h in range(below)]
    finer = [2.0 ** (-8.0 * (h + 1) / (2 * below)) for h in range(2 * below)]
    return torch.tensor(geometric + finer[0::2][: n_heads - below], dtype=torch.float64)


def _alibi(ctx: Context, n_heads: int, length: int) -> Tensor:
    """The target's bias as (h, length, length) float64 on the CPU, relative to each row's
    diagonal (a constant per query row is free: the softmax ignores it)."""
    got = _need(_build(ctx).alibi_bias(n_heads, length), "alibi_bias")
    if got.dim() != 3 or got.shape[0] != n_heads or got.shape[1] not in (1, length):
        raise AssertionError(
            f"alibi_bias({n_heads}, {length}) has shape {tuple(got.shape)}, expected "
            f"(h, q, k) = {(n_heads, length, length)} or (h, 1, k)"
        )
    bias = got.double().cpu().expand(n_heads, length, length)
    return bias - bias.diagonal(dim1=-2, dim2=-1)[..., None]


def _causal_distances(length: int) -> tuple[Tensor, Tensor]:
    """Distances i - j and where j <= i (the entries a causal model reads)."""
    i, j = torch.arange(length)[:, None], torch.arange(length)[None, :]
    return (i - j).double(), j <= i


_ALIBI_HEADS = st.integers(1, 12)


def _alibi_eps(ctx: Context) -> float:
    """The cell's eps, but at least float32's: Bloom, Falcon and MPT compute their slopes in
    float32 whatever the model's dtype (1.2e-8 off for 9 heads in a float64 build). A wrong
    slope is off by a factor of 2 or more."""
    return max(_eps(ctx), float(torch.finfo(torch.float32).eps))


@prop(
    "components.alibi_bias_linear_in_distance", clauses=("EXT-ALIBI-BIAS",), needs=("components",)
)
def alibi_linear(ctx: Context) -> Check:
    """Each head's ALiBi bias is -m (i - j) on the causal entries, up to a constant per
    query row, with one slope m > 0 per head: linear in the distance, penalising far keys."""
    _applicable(ctx, "alibi_bias", lambda c: c.alibi_bias(2, 3))

    @given(_ALIBI_HEADS, st.integers(2, 12))
    def check(n_heads: int, length: int) -> None:
        rel = _alibi(ctx, n_heads, length)
        distance, causal = _causal_distances(length)
        slopes = -rel[:, 1, 0]  # each head's bias one key back
        if not bool((slopes > 0).all()):
            raise AssertionError(f"ALiBi slopes {slopes.tolist()} are not all > 0")
        want = -slopes[:, None, None] * distance
        bound = 8 * _alibi_eps(ctx) * max(1.0, max_abs(want))
        got, expected = rel.masked_fill(~causal, 0.0), want.masked_fill(~causal, 0.0)
        check_close(got, expected, bound, f"ALiBi bias of {n_heads} heads vs -m (i - j)")

    return check


@prop("components.alibi_slopes_follow_paper", clauses=("EXT-ALIBI-SLOPES",), needs=("components",))
def alibi_slopes(ctx: Context) -> Check:
    """The slopes of n heads are 2^(-8/n), 2^(-16/n), ..., 2^(-8) for n a power of two, and
    the paper's interleaving rule otherwise."""
    _applicable(ctx, "alibi_bias", lambda c: c.alibi_bias(2, 3))

    @given(_ALIBI_HEADS)
    def check(n_heads: int) -> None:
        got = -_alibi(ctx, n_heads, 2)[:, 1, 0]
        want = paper_slopes(n_heads)
        bound = 8 * _alibi_eps(ctx) * max(1.0, max_abs(want))
        check_close(got, want, bound, f"ALiBi slopes of {n_heads} heads")

    return check
