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
    _rows,
)
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
