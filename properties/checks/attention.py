"""Scaled dot-product attention, at the attention-function level (spec ATTN-*, SCALE-SQRT-DK)."""

import torch
from hypothesis import given
from transformer_spec.properties.checks._call import attend, need_weights
from transformer_spec.properties.checks.reference_math import attention64, attention_same_dtype
from transformer_spec.properties.harness.compare import (
    check_close,
    check_rows_sum_to_one,
    max_abs,
    relative_bound,
)
from transformer_spec.properties.harness.registry import Check, Context, prop
from transformer_spec.properties.harness.strategies import AttentionCase, attention_cases


@prop(
    "attention.weights_are_distributions",
    clauses=("ATTN-ROWSUM",),
    needs=("attention.weights",),
    exact=True,
)
def weights_are_distributions(ctx: Context) -> Check:
    """Attention weights are non-negative and every query row sums to one."""

    @given(attention_cases())
    def check(case: AttentionCase) -> None:
        q, k, v = case.qkv(ctx.dtype, ctx.device)
        w = need_weights(attend(ctx, q, k, v)[1])
        if bool((w < 0).any()):
            raise AssertionError(f"negative attention weight {float(w.min()):.3g}")
        check_rows_sum_to_one(w, ctx.tolerance.rowsum, "row sums of the attention weights")

    return check


@prop(
    "attention.output_in_convex_hull_of_values",
    clauses=("ATTN-CONVEX-HULL",),
    needs=("attention",),
    exact=True,
)
def output_in_convex_hull(ctx: Context) -> Check:
    """Each output lies between the smallest and largest value row (per coordinate); one key
    returns exactly its value; equal value rows are returned unchanged."""

    @given(attention_cases())
    def check(case: AttentionCase) -> None:
        q, k, v = case.qkv(ctx.dtype, ctx.device)
        out = attend(ctx, q, k, v)[0].double()
        slack = relative_bound(ctx.tolerance.invariance, v)
        lo = v.double().amin(-2, keepdim=True) - slack
        hi = v.double().amax(-2, keepdim=True) + slack
        if bool(((out < lo) | (out > hi)).any()):
            excess = float(torch.maximum(lo - out, out - hi).max())
            raise AssertionError(f"an output leaves the range of the values by {excess:.3g}")
        if case.k_len == 1 and not torch.equal(out, v.double().expand_as(out)):
            raise AssertionError("with a single key the output must be exactly that key's value")
        same = v[..., :1, :].expand_as(v).contiguous()
        check_close(
            attend(ctx, q, k, same)[0],
            same[..., :1, :].expand(*out.shape),
            relative_bound(ctx.tolerance.invariance, same),
            "output for equal value rows",
        )

    return check


@prop(
    "attention.matches_float64_formula",
    clauses=("ATTN-FORMULA", "SCALE-SQRT-DK"),
    needs=("attention",),
    conventions=("score_scale", "statistics_dtype"),
    exact=True,
)
def matches_float64_formula(ctx: Context) -> Check:
    """Output (and weights, if returned) equal softmax(q k^T / sqrt(d_k)) v computed in float64
    on the same inputs (with the declared score scale), within F x the error of the plain
    formula in the same dtype + floor."""

    @given(attention_cases(max_width=24))
    def check(case: AttentionCase) -> None:
        q, k, v = case.qkv(ctx.dtype, ctx.device)
        out, w = attend(ctx, q, k, v)
        scale = ctx.target.conventions.scale(case.d_k)
        want, w64 = attention64(q, k, v, None, scale=scale)
        naive = max_abs(attention_same_dtype(q, k, v, None, scale=scale).double() - want)
        tol = ctx.tolerance
        bound = tol.reference_factor * naive + relative_bound(tol.reference_floor, want)
        check_close(out, want, bound, "attention output vs the float64 formula", q, k, v)
        if w is not None:
            check_close(
                w,
                w64,
                tol.reference_factor * ctx.tolerance.rowsum + tol.reference_floor,
                "attention weights vs the float64 formula",
                q,
                k,
            )

    return check


@prop("attention.softmax_is_per_query_row", clauses=("ATTN-SOFTMAX-PER-ROW",), needs=("attention",))
def softmax_per_row(ctx: Context) -> Check:
    """Changing every query but the first leaves the first query's output unchanged."""

    @given(attention_cases(min_q_len=2))
    def check(case: AttentionCase) -> None:
        q, k, v = case.qkv(ctx.dtype, ctx.device)
        q2 = q.clone()
        q2[..., 1:, :] = -q2[..., 1:, :] * 2
        a, b = attend(ctx, q, k, v)[0], attend(ctx, q2, k, v)[0]
        check_close(
            b[..., :1, :],
            a[..., :1, :],
            relative_bound(ctx.tolerance.invariance, a),
            "first query's output after changing the other queries",
        )

    return check


@prop(
    "attention.keys_and_values_are_a_set",
    clauses=("ATTN-KV-SET", "ATTN-LENGTHS"),
    needs=("attention",),
)
def keys_values_are_a_set(ctx: Context) -> Check:
    """Permuting key and value rows together leaves the output unchanged (lengths may differ)."""

    @given(attention_cases(min_k_len=2))
    def check(case: AttentionCase) -> None:
        q, k, v = case.qkv(ctx.dtype, ctx.device)
        perm = torch.randperm(case.k_len, generator=torch.Generator().manual_seed(case.seed)).to(
            ctx.device
        )
        a, b = attend(ctx, q, k, v)[0], attend(ctx, q, k[..., perm, :], v[..., perm, :])[0]
        check_close(
            b,
            a,
            relative_bound(ctx.tolerance.invariance, a),
            "output after permuting keys and values",
        )

    return check


@prop(
    "attention.permutation_equivariant",
    clauses=("ATTN-PERM-EQUIV", "ATTN-SELF"),
    needs=("attention",),
)
def permutation_equivariant(ctx: Context) -> Check:
    """Self-attention (one sequence supplies queries, keys and values) has no notion of
    position: permuting the sequence permutes the output rows the same way."""

    @given(attention_cases(equal_lengths=True, min_q_len=2))
    def check(case: AttentionCase) -> None:
        x = case.qkv(ctx.dtype, ctx.device)[0]  # X_query = X_key = X_value
        perm = torch.randperm(case.q_len, generator=torch.Generator().manual_seed(case.seed)).to(
            ctx.device
        )
        a = attend(ctx, x, x, x)[0]
        xp = x[..., perm, :]
        b = attend(ctx, xp, xp, xp)[0]
        check_close(
            b,
            a[..., perm, :],
            relative_bound(ctx.tolerance.invariance, a),
            "self-attention output after permuting the sequence",
        )

    return check


@prop(
    "attention.batch_items_independent", clauses=("ARCH-BATCH-INDEPENDENT",), needs=("attention",)
)
def batch_items_independent(ctx: Context) -> Check:
    """Each batch item's output is unchanged when the other items change, and equals the
    output of running that item alone."""

    @given(attention_cases(max_batch=3))
    def check(case: AttentionCase) -> None:
        q, k, v = case.qkv(ctx.dtype, ctx.device)
        full = attend(ctx, q, k, v)[0]
        alone = attend(ctx, q[:1], k[:1], v[:1])[0]
        bound = relative_bound(ctx.tolerance.invariance, full)
        check_close(alone, full[:1], bound, "first item run alone vs in the batch")
        if case.batch > 1:
            q2, k2, v2 = q.clone(), k.clone(), v.clone()
            for t in (q2, k2, v2):
                t[1:] = t[1:] * -3 + 1
            check_close(
                attend(ctx, q2, k2, v2)[0][:1],
                full[:1],
                bound,
                "first item after changing the other batch items",
            )

    return check
