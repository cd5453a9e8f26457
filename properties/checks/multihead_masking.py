"""Multi-head attention under masks, at the module level (spec MASK-*, MHA-*): no leak from
the future or from padded keys, batch items independent, a fully padded item, causal
attention with unequal lengths, padding with causal, and the weights under causal. The
cases and calls are in multihead_cases, the formula in multihead_formula."""

import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import Tensor
from transformer_spec.properties.checks.multihead_cases import (
    MHACase,
    _real_rows,
    _rows_only,
    build,
    cases,
    default_causal,
    has_projections,
    inputs,
    is_self,
    mha_cases,
    need_weights,
    projections,
    require_projections,
    run,
)
from transformer_spec.properties.checks.multihead_formula import (
    b_O_of,
    check_rows,
    check_weights,
    follows_policy,
    formula,
    formula_bound,
    scale_of,
)
from transformer_spec.properties.harness.compare import (
    check_close,
    check_rows_sum_to_one,
    relative_bound,
    show,
)
from transformer_spec.properties.harness.registry import Check, Context, NotApplicable, prop
from transformer_spec.properties.harness.strategies import causal_attends, key_keep


def _changed(x: Tensor) -> Tensor:
    """Rows a leak would let through, changed: -4 x is far from x (a leak moves an output by
    about its own size), yet q.k of two changed rows stays inside float16's range. (-4 x + 100
    made a correct float16 self-attention overflow to inf on the changed rows themselves:
    a false alarm.)"""
    return -4 * x


@prop(
    "multihead.causal_no_future_leak",
    clauses=("MASK-CAUSAL-NO-LEAK",),
    needs=("mha", "mha.causal"),
)
def causal_no_future_leak(ctx: Context) -> Check:
    """Causal self-attention: changing x after position t leaves outputs <= t unchanged."""

    @given(mha_cases(equal_lengths=True, min_q_len=2), st.data())
    def check(case: MHACase, data: st.DataObject) -> None:
        t = data.draw(st.integers(0, case.q_len - 2), label="t")
        module = build(ctx, case)
        x = case.inputs(ctx.dtype, ctx.device)[0]
        x2 = x.clone()
        x2[:, t + 1 :] = _changed(x2[:, t + 1 :])
        a = run(ctx, case, module, x, x, causal=True)[0]
        b = run(ctx, case, module, x2, x2, causal=True)[0]
        check_close(
            b[:, : t + 1],
            a[:, : t + 1],
            relative_bound(ctx.tolerance.invariance, a),
            f"causal outputs at positions <= {t} after changing later positions",
        )

    return check


@prop(
    "multihead.padded_keys_have_no_effect",
    clauses=("MASK-PAD-NO-EFFECT",),
    needs=("mha", "mha.key_padding"),
    conventions=("mask_polarity",),
)
def padded_keys_no_effect(ctx: Context) -> Check:
    """Changing the rows of x_kv that key_padding marks as padding changes no output (in
    self-attention: no output at a real position)."""

    @given(cases(ctx, min_k_len=2), st.data())
    def check(case: MHACase, data: st.DataObject) -> None:
        keep = data.draw(key_keep(case.batch, case.k_len), label="keep")
        kept = torch.tensor(keep, device=ctx.device)
        module = build(ctx, case)
        xq, xkv = inputs(ctx, case)
        causal = default_causal(ctx)
        xkv2 = xkv.clone()
        xkv2[~kept] = _changed(xkv2[~kept])
        xq2 = xkv2 if is_self(ctx) else xq
        a = run(ctx, case, module, xq, xkv, kept, causal=causal)[0]
        b = run(ctx, case, module, xq2, xkv2, kept, causal=causal)[0]
        rows = _real_rows(ctx, kept, (case.batch, case.q_len))
        check_close(
            _rows_only(b, rows),
            _rows_only(a, rows),
            relative_bound(ctx.tolerance.invariance, a),
            f"output after changing padded rows of x_kv (keep={keep})",
        )

    return check


@prop("multihead.batch_items_independent", clauses=("ARCH-BATCH-INDEPENDENT",), needs=("mha",))
def batch_items_independent(ctx: Context) -> Check:
    """Each batch item's output equals running it alone, and ignores the other items."""

    @given(cases(ctx))
    def check(case: MHACase) -> None:
        module = build(ctx, case)
        xq, xkv = inputs(ctx, case)
        causal = default_causal(ctx)
        full = run(ctx, case, module, xq, xkv, causal=causal)[0]
        bound = relative_bound(ctx.tolerance.invariance, full)
        q1 = xq[:1]
        alone = run(ctx, case, module, q1, q1 if is_self(ctx) else xkv[:1], causal=causal)[0]
        check_close(alone, full[:1], bound, "item 0 run alone")
        if case.batch > 1:
            xq2, xkv2 = xq.clone(), xkv.clone()
            xq2[1:], xkv2[1:] = -3 * xq2[1:] + 1, -3 * xkv2[1:] + 1
            check_close(
                run(ctx, case, module, xq2, xq2 if is_self(ctx) else xkv2, causal=causal)[0][:1],
                full[:1],
                bound,
                "item 0 after changing the other batch items",
            )

    return check


@prop(
    "multihead.fully_padded_item_follows_policy",
    clauses=("MASK-FULLY-MASKED-ROW",),
    needs=("mha", "mha.key_padding"),
    conventions=("fully_masked_row",),
)
def fully_padded_item(ctx: Context) -> Check:
    """A batch item whose keys are all padding returns what the target declared for a row
    with no visible key (heads' outputs zero, so b_O alone; NaN; or any finite values), and
    the other items are what they are when run alone."""
    policy = ctx.target.conventions.fully_masked_row
    if policy == "unspecified":
        raise NotApplicable("target declares no fully-masked-row policy")

    @given(cases(ctx, min_batch=2), st.data())
    def check(case: MHACase, data: st.DataObject) -> None:
        keep = list(data.draw(key_keep(case.batch, case.k_len), label="keep"))
        j = data.draw(st.integers(0, case.batch - 1), label="fully_padded_item")
        keep[j] = (False,) * case.k_len
        kept = torch.tensor(keep, device=ctx.device)
        module = build(ctx, case)
        xq, xkv = inputs(ctx, case)
        causal = default_causal(ctx)
        out = run(ctx, case, module, xq, xkv, kept, causal=causal)[0]
        item = torch.zeros(case.batch, case.q_len, dtype=torch.bool, device=ctx.device)
        item[j] = True
        p = module.projections() if policy == "zeros" else None
        follows_policy(ctx, out, item, f"item {j}, all keys padded", b_O=b_O_of(p))
        others = [i for i in range(case.batch) if i != j]
        q_others = xq[others]
        kv_others = q_others if is_self(ctx) else xkv[others]
        alone = run(ctx, case, module, q_others, kv_others, kept[others], causal=causal)[0]
        rows = _real_rows(ctx, kept[others], (len(others), case.q_len))
        check_close(
            _rows_only(out[others], rows),
            _rows_only(alone, rows),
            relative_bound(ctx.tolerance.invariance, alone),
            f"the other items next to fully padded item {j}",
        )

    return check


# ---- causal attention with unequal lengths, padding with causal, weights under causal ----


@prop(
    "multihead.causal_alignment_as_declared",
    clauses=("MASK-CAUSAL-ALIGNMENT", "MHA-FORMULA", "MASK-FULLY-MASKED-ROW"),
    needs=("mha", "mha.cross", "mha.causal", "mha.unequal_causal"),
    conventions=("causal_alignment", "fully_masked_row", "score_scale"),
    exact=True,
)
def causal_alignment(ctx: Context) -> Check:
    """With L_query != L_key, causal attention hides exactly the keys the declared alignment
    hides: the rows that see a key equal the per-head float64 formula under that alignment's
    mask, and the rows that see none (bottom-right, L_query > L_key) follow the declared
    fully-masked-row policy."""
    require_projections(ctx)
    alignment = ctx.target.conventions.causal_alignment
    assert alignment is not None

    @given(mha_cases(distinct_lengths=True))
    def check(case: MHACase) -> None:
        module = build(ctx, case)
        p = projections(module)
        xq, xkv = case.inputs(ctx.dtype, ctx.device)
        attends = causal_attends(case.q_len, case.k_len, alignment, ctx.device)
        out = run(ctx, case, module, xq, xkv, causal=True)[0]
        want = formula(p, xq, xkv, case.n_heads, attends=attends, scale=scale_of(ctx, case))[0]
        naive = formula(p, xq, xkv, case.n_heads, ctx.dtype, attends, scale=scale_of(ctx, case))[0]
        sees_key = attends.any(-1).expand(case.batch, -1)
        check_rows(
            ctx,
            out,
            want,
            formula_bound(ctx, want, naive, sees_key),
            sees_key,
            f"causal attention, {alignment} (declared), q_len={case.q_len}, k_len={case.k_len}, "
            "vs the per-head float64 formula",
            b_O=b_O_of(p),
            extra=(attends,),
        )

    return check


@prop(
    "multihead.padding_and_causal_combine",
    clauses=("MASK-COMBINED", "MHA-FORMULA", "MASK-FULLY-MASKED-ROW"),
    needs=("mha", "mha.key_padding", "mha.causal"),
    conventions=("mask_polarity", "fully_masked_row", "score_scale"),
    exact=True,
)
def padding_and_causal_combine(ctx: Context) -> Check:
    """Key padding together with the causal mask hides a key when either hides it: rows
    that see a key equal the per-head float64 formula under both masks; rows that see none
    (every earlier key padded) follow the declared fully-masked-row policy."""
    require_projections(ctx)

    @given(cases(ctx, min_q_len=2, equal_lengths=True), st.data())
    def check(case: MHACase, data: st.DataObject) -> None:
        keep = data.draw(key_keep(case.batch, case.k_len, min_kept=0), label="keep")
        kept = torch.tensor(keep, dtype=torch.bool, device=ctx.device)
        kept = kept.reshape(case.batch, case.k_len)
        module = build(ctx, case)
        p = projections(module)
        xq, xkv = inputs(ctx, case)
        attends = kept[:, None, None, :] & causal_attends(
            case.q_len, case.k_len, "top_left", ctx.device
        )
        out = run(ctx, case, module, xq, xkv, kept, causal=True)[0]
        want = formula(p, xq, xkv, case.n_heads, attends=attends, scale=scale_of(ctx, case))[0]
        naive = formula(p, xq, xkv, case.n_heads, ctx.dtype, attends, scale=scale_of(ctx, case))[0]
        sees_key = attends[:, 0].any(-1)
        rows = _real_rows(ctx, kept, (case.batch, case.q_len))
        checked = sees_key if rows is None else sees_key & rows
        check_rows(
            ctx,
            out,
            want,
            formula_bound(ctx, want, naive, checked),
            sees_key,
            f"padding (keep={keep}) with causal vs the per-head float64 formula",
            b_O=b_O_of(p),
            rows=rows,
        )

    return check


@prop(
    "multihead.causal_weights_hide_future_keys",
    clauses=("MASK-CAUSAL-PATTERN", "MHA-WEIGHTS-PER-HEAD"),
    needs=("mha.weights", "mha.causal"),
    conventions=("weights",),
    exact=True,
)
def causal_weights(ctx: Context) -> Check:
    """Under the causal mask a target that declares weights returns them, in the declared
    layout: exactly 0 on every future key, each row summing to one, and equal to the causal
    softmax of Q_i K_i^T / sqrt(d_k) (when the projections are exposed)."""
    compare = has_projections(ctx)

    @given(cases(ctx, equal_lengths=True))
    def check(case: MHACase) -> None:
        module = build(ctx, case)
        xq, xkv = inputs(ctx, case)
        w = need_weights(run(ctx, case, module, xq, xkv, causal=True)[1], " for a causal call")
        attends = causal_attends(case.q_len, case.k_len, "top_left", ctx.device)
        future = w[..., ~attends]
        if bool((future != 0).any()):
            raise AssertionError(
                f"weight {float(future.double().abs().max()):.3g} on a future key under the "
                f"causal mask\n{show('weights', w)}"
            )
        check_rows_sum_to_one(w, ctx.tolerance.rowsum, "row sums of the causal attention weights")
        if compare:
            p = projections(module)
            what = "causal weights vs the causal softmax of the Q, K projections (float64)"
            check_weights(ctx, w, p, case, xq, xkv, attends, what)

    return check
