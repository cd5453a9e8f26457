"""Multi-head attention and cross-attention, at the module level (spec MHA-*, XATTN-*): the
output against the per-head float64 formula, the weights, and which inputs each head and
each output row depends on. The cases and calls are in multihead_cases, the formula in
multihead_formula; masks are in multihead_masking."""

import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import Tensor
from transformer_spec.properties.checks.multihead_cases import (
    MHACase,
    _keep,
    _real_rows,
    _rows_only,
    build,
    cases,
    default_causal,
    inputs,
    is_self,
    mha_cases,
    need_weights,
    projections,
    require_projections,
    run,
)
from transformer_spec.properties.checks.multihead_formula import (
    check_weights,
    formula,
    formula_bound,
    per_head_weights,
    scale_of,
)
from transformer_spec.properties.harness.compare import (
    check_close,
    check_rows_sum_to_one,
    max_abs,
    relative_bound,
)
from transformer_spec.properties.harness.registry import Check, Context, prop
from transformer_spec.properties.harness.strategies import causal_attends
from transformer_spec.properties.targets.protocols import Projections


@prop(
    "multihead.equals_concat_of_heads_then_W_O",
    clauses=("MHA-FORMULA", "MHA-HEAD-SPLIT", "XATTN-KV-FROM-ENCODER"),
    needs=("mha",),
    conventions=("score_scale",),
    exact=True,
)
def equals_concat_of_heads(ctx: Context) -> Check:
    """Output equals Concat(head_1..head_h) W_O + b_O, each head on its own d_k columns.

    Head i attends with columns i*d_k:(i+1)*d_k of X_query W_Q + b_Q, X_kv W_K + b_K and
    X_kv W_V + b_V; the ground truth is computed in float64 from the target's projections
    (for an always-causal module, under the causal mask)."""
    require_projections(ctx)

    @given(cases(ctx))
    def check(case: MHACase) -> None:
        module = build(ctx, case)
        p = projections(module)
        xq, xkv = inputs(ctx, case)
        causal = default_causal(ctx)
        attends = causal_attends(case.q_len, case.k_len, "top_left", ctx.device) if causal else None
        out = run(ctx, case, module, xq, xkv, causal=causal)[0]
        want = formula(p, xq, xkv, case.n_heads, attends=attends, scale=scale_of(ctx, case))[0]
        naive = formula(p, xq, xkv, case.n_heads, ctx.dtype, attends, scale=scale_of(ctx, case))[0]
        bound = formula_bound(ctx, want, naive)
        check_close(out, want, bound, "multi-head output vs the per-head float64 formula", xq)

    return check


@prop(
    "multihead.output_has_query_shape",
    clauses=("MHA-CONCAT-WIDTH",),
    needs=("mha", "mha.cross"),
)
def output_has_query_shape(ctx: Context) -> Check:
    """With L_query != L_key the output has the query's shape (b, L_query, d_model).

    It also keeps the input's dtype and is finite; weights (if any) cover (L_query, L_key)."""

    @given(mha_cases(distinct_lengths=True))
    def check(case: MHACase) -> None:
        xq, xkv = case.inputs(ctx.dtype, ctx.device)
        out = run(ctx, case, build(ctx, case), xq, xkv)[0]  # `run` checks both shapes
        if out.dtype != xq.dtype:
            raise AssertionError(f"output dtype {out.dtype}, the input's is {xq.dtype}")
        if not bool(torch.isfinite(out).all()):
            raise AssertionError("the output has non-finite values")

    return check


@prop(
    "multihead.weights_are_distributions_per_head",
    clauses=("MHA-WEIGHTS-PER-HEAD",),
    needs=("mha.weights",),
    conventions=("weights",),
    exact=True,
)
def weights_are_distributions(ctx: Context) -> Check:
    """Weights have the declared layout (per head or averaged); every row is a distribution.

    Each row is non-negative and sums to one."""

    @given(cases(ctx))
    def check(case: MHACase) -> None:
        xq, xkv = inputs(ctx, case)
        result = run(ctx, case, build(ctx, case), xq, xkv, causal=default_causal(ctx))
        w = need_weights(result[1])
        if bool((w < 0).any()):
            raise AssertionError(f"negative attention weight {float(w.min()):.3g}")
        check_rows_sum_to_one(
            w,
            ctx.tolerance.rowsum,
            f"row sums of the attention weights ({ctx.target.conventions.weights})",
        )

    return check


@prop(
    "multihead.weights_from_W_Q_W_K_only",
    clauses=("MHA-WEIGHTS-FROM-QK", "MHA-WEIGHTS-PER-HEAD", "MHA-HEAD-SPLIT"),
    needs=("mha.weights",),
    conventions=("weights", "score_scale"),
    exact=True,
)
def weights_from_q_k(ctx: Context) -> Check:
    """Weights equal softmax(Q_i K_i^T / sqrt(d_k)) per head, from W_Q and W_K alone.

    The float64 ground truth uses W_Q, b_Q, W_K, b_K only, so W_V and W_O cannot move the
    weights; weights declared averaged must equal the mean of the per-head ones."""
    require_projections(ctx)

    @given(cases(ctx))
    def check(case: MHACase) -> None:
        module = build(ctx, case)
        p = projections(module)
        xq, xkv = inputs(ctx, case)
        causal = default_causal(ctx)
        attends = causal_attends(case.q_len, case.k_len, "top_left", ctx.device) if causal else None
        w = need_weights(run(ctx, case, module, xq, xkv, causal=causal)[1])
        check_weights(ctx, w, p, case, xq, xkv, attends)

    return check


def head_query_shift(p: Projections, case: MHACase, head: int, g: torch.Generator) -> Tensor:
    """A change of x_query (b, Lq, d_model), in float64, that moves head `head`'s queries and
    no other head's: rows in the left null space of W_Q's other columns."""
    W_Q = p.W_Q.double().cpu()
    d_k = case.d_k
    others = [c for c in range(case.d_model) if not head * d_k <= c < (head + 1) * d_k]
    U: Tensor = torch.linalg.svd(W_Q[:, others], full_matrices=True)[0]
    null = U[:, case.d_model - d_k :]  # u^T W_Q[:, others] = 0 for these orthonormal u
    c = torch.randn(case.batch, case.q_len, d_k, generator=g, dtype=torch.float64)
    return 2.0 * case.scale * c @ null.T


@prop(
    "multihead.one_heads_queries_leave_other_heads_unchanged",
    clauses=("MHA-HEADS-INDEPENDENT",),
    needs=("mha.per_head_weights", "mha.cross"),
)
def heads_independent(ctx: Context) -> Check:
    """Changing only head j's queries leaves every other head's weights unchanged.

    x_query moves along directions that W_Q maps into head j's columns alone (the left null
    space of W_Q's other columns), a change of head j's W_Q seen through the input. (With
    one input, as in self-attention, the keys would move too: no direction moves one head's
    queries and nothing else unless there is one head.)"""
    require_projections(ctx)

    @given(mha_cases(min_heads=2), st.data())
    def check(case: MHACase, data: st.DataObject) -> None:
        j = data.draw(st.integers(0, case.n_heads - 1), label="changed_head")
        module = build(ctx, case)
        p = projections(module)
        xq, xkv = case.inputs(ctx.dtype, ctx.device)
        shift = head_query_shift(p, case, j, torch.Generator().manual_seed(case.seed))
        xq2 = (xq.double() + shift.to(ctx.device)).to(ctx.dtype)
        others = [i for i in range(case.n_heads) if i != j]
        w1 = need_weights(run(ctx, case, module, xq, xkv)[1])[:, others]
        w2 = need_weights(run(ctx, case, module, xq2, xkv)[1])[:, others]
        # Rounding xq2 to the dtype leaks a little into the other heads: allow exactly what
        # it moves their float64 weights, plus two calls' rounding.
        scale = scale_of(ctx, case)
        leak = max_abs(
            per_head_weights(p, xq2, xkv, case.n_heads, torch.float64, scale=scale)[:, others]
            - per_head_weights(p, xq, xkv, case.n_heads, torch.float64, scale=scale)[:, others]
        )
        bound = leak + 2 * ctx.tolerance.invariance
        check_close(w2, w1, bound, f"weights of heads {others} after changing head {j}'s queries")

    return check


@prop(
    "multihead.output_row_depends_only_on_its_query_row",
    clauses=("ATTN-QKV-PROJ", "XATTN-KV-FROM-ENCODER"),
    needs=("mha", "mha.cross"),
)
def query_rows_independent(ctx: Context) -> Check:
    """Changing query row i of x_query changes no other output row.

    Q is a row-wise projection of x_query, and keys and values come from x_kv alone (no
    mask: every query sees the same keys)."""

    @given(mha_cases(min_q_len=2), st.data())
    def check(case: MHACase, data: st.DataObject) -> None:
        i = data.draw(st.integers(0, case.q_len - 1), label="changed_row")
        module = build(ctx, case)
        xq, xkv = case.inputs(ctx.dtype, ctx.device)
        xq2 = xq.clone()
        xq2[:, i] = -2 * xq2[:, i] + 1
        a, b = run(ctx, case, module, xq, xkv)[0], run(ctx, case, module, xq2, xkv)[0]
        rest = [r for r in range(case.q_len) if r != i]
        check_close(
            b[:, rest],
            a[:, rest],
            relative_bound(ctx.tolerance.invariance, a),
            f"output rows {rest} after changing query row {i}",
        )

    return check


@prop(
    "multihead.key_value_rows_are_a_set",
    clauses=("ATTN-QKV-PROJ", "XATTN-KV-FROM-ENCODER"),
    needs=("mha",),
)
def kv_rows_are_a_set(ctx: Context) -> Check:
    """Permuting the rows of x_kv (with their padding flags) leaves the output unchanged.

    K and V are row-wise projections of x_kv: key j depends on row j alone. With one input
    (self-attention) the outputs are permuted the same way; under an always-causal mask,
    permuting rows 0..t-1 leaves every output at t or later unchanged (each still sees the
    same set of keys)."""
    causal = default_causal(ctx)

    @given(cases(ctx, min_k_len=3 if causal else 2), st.data())
    def check(case: MHACase, data: st.DataObject) -> None:
        keep = _keep(ctx, case, data)
        module = build(ctx, case)
        xq, xkv = inputs(ctx, case)
        a = run(ctx, case, module, xq, xkv, keep, causal=causal)[0]
        bound = relative_bound(ctx.tolerance.invariance, a)
        if not is_self(ctx):
            perm = data.draw(st.permutations(range(case.k_len)), label="perm")
            keep2 = None if keep is None else keep[:, perm]
            b = run(ctx, case, module, xq, xkv[:, perm], keep2)[0]
            check_close(b, a, bound, f"output after permuting the rows of x_kv by {perm}")
            return
        if not causal:
            perm = data.draw(st.permutations(range(case.k_len)), label="perm")
            keep2 = None if keep is None else keep[:, perm]
            x2 = xq[:, perm]
            b = run(ctx, case, module, x2, x2, keep2)[0]
            rows = _real_rows(ctx, keep2, (case.batch, case.q_len))
            check_close(
                _rows_only(b, rows),
                _rows_only(a[:, perm], rows),
                bound,
                f"self-attention output after permuting the rows of x by {perm}: the outputs "
                "permuted alike",
            )
            return
        t = data.draw(st.integers(2, case.k_len - 1), label="t")
        perm = data.draw(st.permutations(range(t)), label="perm") + list(range(t, case.k_len))
        keep2 = None if keep is None else keep[:, perm]
        x2 = xq[:, perm]
        b = run(ctx, case, module, x2, x2, keep2, causal=True)[0]
        rows = _real_rows(ctx, keep, (case.batch, case.q_len))
        check_close(
            _rows_only(b[:, t:], None if rows is None else rows[:, t:]),
            _rows_only(a[:, t:], None if rows is None else rows[:, t:]),
            bound,
            f"causal outputs at positions >= {t} after permuting rows 0..{t - 1} of x by "
            f"{perm[:t]}",
        )

    return check
