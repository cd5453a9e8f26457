"""Properties of the clauses beyond the notes (spec/16_beyond_notes.toml) at the multi-head
and whole-model levels: grouped-query attention against repeated heads, relative positions,
sliding windows, and the cache with all of them.

A target builds these features when asked through MHASpec.n_kv_heads and ModelSpec's
n_kv_heads, window and relative_positions; one that cannot says so (Unsupported, or plain
d_model-wide key/value projections), and the property is then not applicable."""

from dataclasses import replace
from typing import cast

import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import Tensor
from transformer_spec.properties.checks import multihead_cases as M
from transformer_spec.properties.checks.model import _incremental_check
from transformer_spec.properties.checks.model_cases import (
    _PROBES,
    FIRST_REAL,
    MAX_LEN,
    Features,
    ModelCase,
    _depends,
    _tokens,
    model_cases,
)
from transformer_spec.properties.checks.model_dependence import _distinct_tokens
from transformer_spec.properties.checks.multihead_formula import formula, formula_bound, scale_of
from transformer_spec.properties.harness.compare import check_close, relative_bound
from transformer_spec.properties.harness.registry import Check, Context, NotApplicable, prop
from transformer_spec.properties.harness.strategies import TokenCase, causal_attends, token_cases
from transformer_spec.properties.harness.tolerance import tolerance_for
from transformer_spec.properties.targets.protocols import (
    MHA,
    MHASpec,
    Model,
    PositionedModel,
    Projections,
    Unsupported,
)

# ---- grouped-query attention (multi-head level) ------------------------------------------


def repeated_heads(p: Projections, n_heads: int, groups: str = "consecutive") -> Projections:
    """The multi-head projections that grouped-query attention equals: W_K, W_V (and their
    biases) with each of the g key/value heads repeated for the h / g query heads of its
    group (EXT-GQA-SHARED): consecutive query heads share one, or, declared "strided",
    query head i reads key/value head i mod g."""
    d_k = p.W_Q.shape[1] // n_heads
    n_kv = p.W_K.shape[1] // d_k
    group = n_heads // n_kv
    source = [h // group if groups == "consecutive" else h % n_kv for h in range(n_heads)]
    columns = [j * d_k + c for j in source for c in range(d_k)]

    def spread(t: Tensor | None) -> Tensor | None:
        return None if t is None else t[..., columns]

    return replace(
        p, W_K=p.W_K[:, columns], W_V=p.W_V[:, columns], b_K=spread(p.b_K), b_V=spread(p.b_V)
    )


def _grouped(ctx: Context, case: M.MHACase, n_kv: int) -> tuple[MHA, Projections]:
    factory = ctx.target.mha
    assert factory is not None
    spec = MHASpec(case.d_model, case.n_heads, ctx.dtype, ctx.device, case.seed, n_kv)
    module = factory(spec)
    p = M.projections(module)
    want = (case.d_model, n_kv * case.d_k)
    for name, W in (("W_K", p.W_K), ("W_V", p.W_V)):
        if tuple(W.shape) != want:
            raise AssertionError(
                f"{name} has shape {tuple(W.shape)} for {n_kv} key/value heads of d_k="
                f"{case.d_k}; expected (d_model, n_kv_heads * d_k) = {want}"
            )
    return module, p


def _groups_built(ctx: Context) -> None:
    """NotApplicable unless the module builds fewer key/value heads when asked."""
    M.require_projections(ctx)
    factory = ctx.target.mha
    assert factory is not None
    probe = factory(MHASpec(8, 4, ctx.dtype, ctx.device, 0, n_kv_heads=2))
    p = probe.projections()
    if p is not None and p.W_K.shape[1] == 8:
        raise NotApplicable(
            "the module builds no grouped key/value heads: asked for 2 of 4 heads "
            "(MHASpec.n_kv_heads), its W_K still has d_model columns"
        )


@prop(
    "multihead.grouped_query_equals_repeated_heads",
    clauses=("EXT-GQA-SHARED", "EXT-MQA-ONE-HEAD"),
    needs=("mha",),
    conventions=("score_scale", "kv_head_groups"),
    exact=True,
)
def grouped_query(ctx: Context) -> Check:
    """With g key/value heads for h query heads (g = 1: multi-query), the output equals the
    float64 multi-head formula with each key/value head repeated for its group of h / g
    query heads (consecutive ones, or as declared)."""
    _groups_built(ctx)

    @given(M.cases(ctx, min_heads=2), st.data())
    def check(case: M.MHACase, data: st.DataObject) -> None:
        if case.n_heads % 2:
            case = replace(case, n_heads=case.n_heads + 1)
        n_kv = data.draw(st.sampled_from([1, case.n_heads // 2]), label="n_kv_heads")
        module, p = _grouped(ctx, case, n_kv)
        full = repeated_heads(p, case.n_heads, ctx.target.conventions.kv_head_groups)
        xq, xkv = M.inputs(ctx, case)
        causal = M.default_causal(ctx)
        attends = causal_attends(case.q_len, case.k_len, "top_left", ctx.device) if causal else None
        out = M.run(ctx, case, module, xq, xkv, causal=causal)[0]
        scale = scale_of(ctx, case)
        want = formula(full, xq, xkv, case.n_heads, attends=attends, scale=scale)[0]
        naive = formula(full, xq, xkv, case.n_heads, ctx.dtype, attends, scale=scale)[0]
        what = f"{n_kv} key/value heads for {case.n_heads} query heads vs repeated heads (float64)"
        check_close(out, want, formula_bound(ctx, want, naive), what, xq)

    return check


# ---- whole models ------------------------------------------------------------------------


def _probe(ctx: Context, features: Features, n_layers: int | None = None) -> Model:
    """A decoder-only model built with `features` (and `n_layers`, if given); NotApplicable
    with the target's reason when it cannot build one (or checks one fixed model, built as
    it is)."""
    if ctx.target.model_fixed is not None:
        raise NotApplicable("the target checks one fixed model, which cannot be rebuilt")
    reasons = []
    probes = _PROBES if n_layers is None else [replace(c, n_layers=n_layers) for c in _PROBES]
    for case in probes:
        try:
            model = replace(case, features=features).build(ctx, "decoder_only")
        except Unsupported as err:
            reasons.append(str(err))
            continue
        _says_built(model, features)
        return model
    raise NotApplicable(f"the target cannot build this model: {reasons[-1]}")


def _says_built(model: Model, features: Features) -> None:
    """NotApplicable unless the model echoes every asked feature (Model protocol): a factory
    that ignores ModelSpec's fields beyond the notes builds without them, silently."""
    for name, value in vars(features).items():
        if value not in (None, False) and getattr(model, name, None) != value:
            raise NotApplicable(
                f"the model does not say it built {name}={value!r} (a model built for "
                f"ModelSpec.{name} sets model.{name}; lm_target declares honours=)"
            )


def _angle_rounding(ctx: Context) -> float:
    """The invariance bound for logits at shifted positions: the cell's, but at least
    float32's. Rotary angles are commonly taken in float32 whatever the model's dtype
    (transformers computes inv_freq x positions in float32 with autocast off), so the angles
    of positions m and m + c round differently: correct float64 builds of Llama, Gemma and
    Qwen3 moved their logits by 3e-10 to 1.3e-8 under a shift, against float64's 1e-10. A
    model that sees absolute positions moves them by 1e-2 and more."""
    coarse = tolerance_for(torch.float32, ctx.device).invariance
    return max(ctx.tolerance.invariance, coarse)


def _window_for(ctx: Context, keys: int) -> int:
    """The window that shows a query exactly `keys` keys, itself included."""
    return keys - (ctx.target.conventions.window_span == "w+1")


def _with(mc: ModelCase, features: Features) -> ModelCase:
    return replace(mc, features=features)


@prop(
    "model.decoder_only.relative_positions_shift_invariant",
    clauses=("EXT-RELATIVE-MODEL", "EXT-ROPE-RELATIVE"),
    needs=("model.decoder_only",),
)
def relative_shift(ctx: Context) -> Check:
    """A model with relative positions only (rotary, ALiBi) gives the same logits when
    every position id is shifted by the same amount."""
    relative = Features(relative_positions=True)
    probe = _probe(ctx, relative)
    at = getattr(probe, "logits_at", None)
    one = torch.full((1, 1), FIRST_REAL, device=ctx.device)
    if at is None or at(one, 0) is None:
        raise NotApplicable("the model takes no position ids (no logits_at)")

    @given(model_cases(ctx), token_cases(max_len=8), st.data())
    def check(mc: ModelCase, case: TokenCase, data: st.DataObject) -> None:
        shift = data.draw(st.integers(1, MAX_LEN - case.length), label="shift")
        model = _with(mc, relative).build(ctx, "decoder_only")
        tokens = _tokens(ctx, case)
        positioned = cast(PositionedModel, model)
        base, moved = positioned.logits_at(tokens, 0), positioned.logits_at(tokens, shift)
        if base is None or moved is None:
            raise AssertionError("logits_at returned None for this model but not for another")
        bound = relative_bound(_angle_rounding(ctx), base, moved)
        check_close(moved, base, bound, f"logits with every position id shifted by {shift}")

    return check


@prop(
    "model.decoder_only.relative_positions_tell_order",
    clauses=("EXT-RELATIVE-ORDER",),
    needs=("model.decoder_only",),
)
def relative_order(ctx: Context) -> Check:
    """In a one-layer model with relative positions only, swapping the tokens at i and j
    changes the logits after j. Without positions one causal layer sees the earlier tokens
    as a set, so this is what tells rotary or ALiBi applied from rotary or ALiBi dropped
    (a model without positions also passes relative_positions_shift_invariant). One layer:
    with two, a position-free model changes too (position i's first-layer state sees
    another prefix)."""
    relative = Features(relative_positions=True)
    _probe(ctx, relative, n_layers=1)

    @given(model_cases(ctx), token_cases(min_len=3, max_len=8), st.data())
    def check(mc: ModelCase, case: TokenCase, data: st.DataObject) -> None:
        j = data.draw(st.integers(1, case.length - 2), label="j")
        i = data.draw(st.integers(0, j - 1), label="i")
        tokens = _distinct_tokens(ctx, case)
        swapped = tokens.clone()
        swapped[:, [i, j]] = tokens[:, [j, i]]
        after = slice(j + 1, None)
        what = f"logits at positions {j + 1}.. after swapping the tokens at {i} and {j} (1 layer)"

        def pairs(model: Model) -> list[tuple[str, Tensor, Tensor]]:
            return [(what, model.logits(tokens)[:, after], model.logits(swapped)[:, after])]

        one_layer = replace(mc, n_layers=1, features=relative)
        _depends(ctx, one_layer, "decoder_only", pairs, reordered=True)

    return check


@prop(
    "model.decoder_only.window_hides_distant_keys",
    clauses=("EXT-WINDOW-REACH",),
    needs=("model.decoder_only",),
    conventions=("window_span",),
)
def window_reach(ctx: Context) -> Check:
    """With a sliding window showing s keys, changing the token at j leaves the logits at
    every position from j + L (s - 1) + 1 on unchanged (L layers): no key beyond the window
    is seen, in any layer."""
    _probe(ctx, Features(window=_window_for(ctx, 2)))

    @given(model_cases(ctx), token_cases(min_len=4, max_len=MAX_LEN - 4), st.data())
    def check(mc: ModelCase, case: TokenCase, data: st.DataObject) -> None:
        span = data.draw(st.integers(2, 3), label="keys_in_window")
        reach = mc.n_layers * (span - 1)
        if case.length <= reach + 1:
            case = replace(case, length=reach + 2)
        j = data.draw(st.integers(0, case.length - reach - 2), label="changed_position")
        model = _with(mc, Features(window=_window_for(ctx, span))).build(ctx, "decoder_only")
        tokens = _tokens(ctx, case)
        changed = tokens.clone()
        changed[:, j] = (tokens[:, j] - FIRST_REAL + 1) % 8 + FIRST_REAL
        far = slice(j + reach + 1, None)
        before, after = model.logits(tokens)[:, far], model.logits(changed)[:, far]
        what = (
            f"logits at positions {j + reach + 1}.. after changing the token at {j} "
            f"({mc.n_layers} layer(s), {span} keys per window)"
        )
        check_close(after, before, relative_bound(ctx.tolerance.invariance, before, after), what)

    return check


@prop(
    "model.decoder_only.window_as_long_as_sequence_is_causal",
    clauses=("EXT-WINDOW-FULL",),
    needs=("model.decoder_only",),
    conventions=("window_span",),
)
def window_full(ctx: Context) -> Check:
    """A sliding window showing exactly as many keys as the sequence has gives the logits of
    the same model (same weights) with a window longer than the context, and the first
    position's logits of the same model without a window (it sees only itself either way).
    Not every position's: Gemma 3 and Cohere 2 give their windowed layers other positions
    than their full ones, which the first position, at angle 0, does not feel."""
    _probe(ctx, Features(window=_window_for(ctx, 2)))

    @given(model_cases(ctx), token_cases(min_len=2, max_len=8))
    def check(mc: ModelCase, case: TokenCase) -> None:
        tokens = _tokens(ctx, case)
        exact = _with(mc, Features(window=_window_for(ctx, case.length)))
        longer = _with(mc, Features(window=MAX_LEN))
        got = exact.build(ctx, "decoder_only").logits(tokens)
        full = longer.build(ctx, "decoder_only").logits(tokens)
        what = f"logits with a window of the sequence's {case.length} keys vs a window of {MAX_LEN}"
        check_close(got, full, relative_bound(ctx.tolerance.invariance, full, got), what)
        first = mc.build(ctx, "decoder_only").logits(tokens)[:, :1]
        what = "the first position's logits (it sees only itself) with a window vs without one"
        bound = relative_bound(ctx.tolerance.invariance, first, got[:, :1])
        check_close(got[:, :1], first, bound, what)

    return check


@prop(
    "model.decoder_only.windowed_grouped_cache_matches_full",
    clauses=("EXT-WINDOW-CACHE",),
    needs=("model.decoder_only",),
    conventions=("window_span",),
)
def windowed_cache(ctx: Context) -> Check:
    """With rotary positions, half as many key/value heads as query heads and a window
    shorter than the sequence, decoding one token at a time through the cache gives the full
    pass's logits."""
    probe = _probe(ctx, _cache_features(ctx, n_heads=2))
    one = torch.full((1, 1), FIRST_REAL, device=ctx.device)
    if probe.incremental_logits(one) is None:
        raise NotApplicable("target has no incremental decoding (incremental_logits is None)")

    @given(model_cases(ctx), token_cases(min_len=4, max_len=MAX_LEN - 4))
    def check(mc: ModelCase, case: TokenCase) -> None:
        mc = _with(mc, _cache_features(ctx, mc.n_heads))
        _incremental_check(ctx, mc, "decoder_only", _tokens(ctx, case), None)

    return check


def _cache_features(ctx: Context, n_heads: int) -> Features:
    return Features(n_kv_heads=n_heads // 2, window=_window_for(ctx, 3), relative_positions=True)
