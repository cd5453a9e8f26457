"""Building blocks on their own: embedding and positional encoding (spec EMB-*, PE-*), and
the component helpers that components_positionwise and beyond share."""

from collections.abc import Callable

import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import Tensor
from transformer_spec.properties.harness.compare import check_close, max_abs, relative_bound
from transformer_spec.properties.harness.registry import Check, Context, NotApplicable, prop
from transformer_spec.properties.targets.protocols import Components, ComponentSpec

VOCAB, D_FF, MAX_LEN = 20, 32, 32
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
