"""Multi-head attention and cross-attention, at the module level (spec MHA-*, XATTN-*).

The ground truth is the notes' formula written out head by head: head i takes the columns
i*d_k:(i+1)*d_k of Q = X_query W_Q + b_Q, K = X_kv W_K + b_K, V = X_kv W_V + b_V, attends in
float64, and the heads are concatenated in order, then multiplied by W_O (plus b_O). Slicing
columns, rather than reshaping, is what makes a reshape without transpose visible.

Calls are cross-attention calls (x_query and x_kv separate, lengths drawn independently)
unless a property needs self-attention; self-attention passes one tensor in both roles.
"""

import math
from dataclasses import dataclass

import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import Tensor

from ..compare import check_close, max_abs, relative_bound
from ..reference_math import attention64
from ..registry import Check, Context, NotApplicable, prop
from ..strategies import key_keep
from ..targets import MHA, MHASpec, Projections, to_polarity
from ._call import need_weights

_BIG = 100.0  # what a leak would add: far above any tolerance


@dataclass(frozen=True)
class MHACase:
    """Sizes of one multi-head attention call; weights and inputs come from `seed`."""

    batch: int
    n_heads: int
    d_k: int
    q_len: int
    k_len: int
    seed: int
    scale: float = 1.0  # std of the inputs; larger values sharpen the softmax

    @property
    def d_model(self) -> int:
        return self.n_heads * self.d_k

    def inputs(self, dtype: torch.dtype, device: torch.device) -> tuple[Tensor, Tensor]:
        """x_query (b, Lq, d_model) and x_kv (b, Lk, d_model), drawn in float64, rounded once."""
        g = torch.Generator().manual_seed(self.seed)
        shape = (self.batch, self.q_len, self.d_model)
        xq = torch.randn(*shape, generator=g, dtype=torch.float64) * self.scale
        shape = (self.batch, self.k_len, self.d_model)
        xkv = torch.randn(*shape, generator=g, dtype=torch.float64) * self.scale
        return xq.to(device=device, dtype=dtype), xkv.to(device=device, dtype=dtype)


def mha_cases(
    *,
    min_heads: int = 1,
    min_q_len: int = 1,
    min_k_len: int = 1,
    equal_lengths: bool = False,
    distinct_lengths: bool = False,
    max_len: int = 7,
    min_batch: int = 1,
) -> st.SearchStrategy[MHACase]:
    """Small modules: 1..4 heads (2 and more drawn most: a head-split bug needs h > 1),
    d_k 1..6, lengths up to 7, batch 1..3."""
    heads = [h for h in (2, 3, 4, 1) if h >= min_heads]

    @st.composite
    def build(draw: st.DrawFn) -> MHACase:
        q_len = draw(st.integers(min_q_len, max_len))
        if equal_lengths:
            k_len = q_len
        elif distinct_lengths:  # one draw, skipping q_len: shrinks without filtering
            k_len = draw(st.integers(min_k_len, max_len - 1))
            k_len += k_len >= q_len
        else:
            k_len = draw(st.integers(min_k_len, max_len))
        return MHACase(
            batch=draw(st.integers(min_batch, 3)),
            n_heads=draw(st.sampled_from(heads)),
            d_k=draw(st.integers(1, 6)),
            q_len=q_len,
            k_len=k_len,
            seed=draw(st.integers(0, 2**16)),
            scale=draw(st.sampled_from((1.0, 3.0))),
        )

    return build()


def build(ctx: Context, case: MHACase) -> MHA:
    factory = ctx.target.mha
    assert factory is not None
    return factory(MHASpec(case.d_model, case.n_heads, ctx.dtype, ctx.device, case.seed))


def require_projections(ctx: Context) -> None:
    """Raise NotApplicable now, while building the property, if the target hides W_Q etc."""
    probe = build(ctx, MHACase(batch=1, n_heads=2, d_k=2, q_len=1, k_len=1, seed=0))
    if probe.projections() is None:
        raise NotApplicable("target exposes no projection matrices")


def projections(module: MHA) -> Projections:
    p = module.projections()
    if p is None:
        raise AssertionError("projections() returned None for this module but not for another")
    return p


def run(
    ctx: Context,
    case: MHACase,
    module: MHA,
    x_query: Tensor,
    x_kv: Tensor,
    keep: Tensor | None = None,
    *,
    causal: bool = False,
) -> tuple[Tensor, Tensor | None]:
    """Call the module with a 'may attend' key_padding (b, Lk) converted to the declared
    polarity; check the output has the query's shape and the weights the declared one."""
    key_padding = to_polarity(keep, ctx.target.conventions.mask_polarity)
    out, weights = module(x_query, x_kv, key_padding=key_padding, causal=causal)
    (b, q_len, d_model), k_len = x_query.shape, x_kv.shape[1]
    if tuple(out.shape) != (b, q_len, d_model):
        raise AssertionError(
            f"output has shape {tuple(out.shape)}, expected (batch, L_query, d_model) = "
            f"{(b, q_len, d_model)} (L_key = {k_len})"
        )
    kind = ctx.target.conventions.weights
    if weights is not None and kind != "none":
        want = (b, case.n_heads, q_len, k_len) if kind == "per_head" else (b, q_len, k_len)
        if tuple(weights.shape) != want:
            raise AssertionError(
                f"weights have shape {tuple(weights.shape)}, expected {want} ({kind}, declared)"
            )
    return out, weights


def split_heads(t: Tensor, n_heads: int) -> Tensor:
    """(b, L, d_model) -> (b, h, L, d_k): head i gets columns i*d_k:(i+1)*d_k (MHA-HEAD-SPLIT)."""
    d_k = t.shape[-1] // n_heads
    return torch.stack([t[..., i * d_k : (i + 1) * d_k] for i in range(n_heads)], dim=1)


def project(x: Tensor, W: Tensor, b: Tensor | None, dtype: torch.dtype) -> Tensor:
    y = x.to(dtype) @ W.to(device=x.device, dtype=dtype)
    return y if b is None else y + b.to(device=x.device, dtype=dtype)


def per_head_weights(
    p: Projections, x_query: Tensor, x_kv: Tensor, n_heads: int, dtype: torch.dtype
) -> Tensor:
    """softmax(Q_i K_i^T / sqrt(d_k)) per head, from W_Q, b_Q, W_K, b_K only (no mask)."""
    q = split_heads(project(x_query, p.W_Q, p.b_Q, dtype), n_heads)
    k = split_heads(project(x_kv, p.W_K, p.b_K, dtype), n_heads)
    return torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)


def formula(
    p: Projections,
    x_query: Tensor,
    x_kv: Tensor,
    n_heads: int,
    dtype: torch.dtype = torch.float64,
    attends: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Concat(head_1, ..., head_h) W_O + b_O and the per-head weights, every step in `dtype`
    (float64: the ground truth; the target's dtype: the error baseline)."""
    q = split_heads(project(x_query, p.W_Q, p.b_Q, dtype), n_heads)
    k = split_heads(project(x_kv, p.W_K, p.b_K, dtype), n_heads)
    v = split_heads(project(x_kv, p.W_V, p.b_V, dtype), n_heads)
    if dtype == torch.float64:
        z, w = attention64(q, k, v, attends)
    else:  # the plain formula in the low dtype; attends (if any) leaves every row a key
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
        if attends is not None:
            scores = scores.masked_fill(~attends, -math.inf)
        w = torch.softmax(scores, dim=-1)
        z = w @ v
    concat = torch.cat(z.unbind(dim=1), dim=-1)  # heads side by side, in order: width h * d_k
    return project(concat, p.W_O, p.b_O, dtype), w


def declared_weights(ctx: Context, per_head: Tensor) -> Tensor:
    """Per-head weights (b, h, Lq, Lk) as the target declared it returns them."""
    return per_head if ctx.target.conventions.weights == "per_head" else per_head.mean(dim=1)


@prop(
    "multihead.equals_concat_of_heads_then_W_O",
    clauses=("MHA-FORMULA", "MHA-HEAD-SPLIT", "XATTN-KV-FROM-ENCODER"),
    needs=("mha",),
)
def equals_concat_of_heads(ctx: Context) -> Check:
    """Output equals Concat(head_1..head_h) W_O + b_O, each head on its own d_k columns.

    Head i attends with columns i*d_k:(i+1)*d_k of X_query W_Q + b_Q, X_kv W_K + b_K and
    X_kv W_V + b_V; the ground truth is computed in float64 from the target's projections."""
    require_projections(ctx)

    @given(mha_cases())
    def check(case: MHACase) -> None:
        module = build(ctx, case)
        p = projections(module)
        xq, xkv = case.inputs(ctx.dtype, ctx.device)
        out = run(ctx, case, module, xq, xkv)[0]
        want = formula(p, xq, xkv, case.n_heads)[0]
        # FlashAttention-style: F x the error of the plain formula in this dtype, + a floor
        naive = max_abs(formula(p, xq, xkv, case.n_heads, ctx.dtype)[0].double() - want)
        tol = ctx.tolerance
        bound = tol.reference_factor * naive + relative_bound(tol.reference_floor, want)
        check_close(out, want, bound, "multi-head output vs the per-head float64 formula", xq)

    return check


@prop("multihead.output_has_query_shape", clauses=("MHA-CONCAT-WIDTH",), needs=("mha",))
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
)
def weights_are_distributions(ctx: Context) -> Check:
    """Weights have the declared layout (per head or averaged); every row is a distribution.

    Each row is non-negative and sums to one."""

    @given(mha_cases())
    def check(case: MHACase) -> None:
        xq, xkv = case.inputs(ctx.dtype, ctx.device)
        w = need_weights(run(ctx, case, build(ctx, case), xq, xkv)[1])
        if bool((w < 0).any()):
            raise AssertionError(f"negative attention weight {float(w.min()):.3g}")
        check_close(
            w.double().sum(-1),
            torch.ones(w.shape[:-1], dtype=torch.float64),
            ctx.tolerance.rowsum,
            f"row sums of the attention weights ({ctx.target.conventions.weights})",
            w,
        )

    return check


@prop(
    "multihead.weights_from_W_Q_W_K_only",
    clauses=("MHA-WEIGHTS-FROM-QK", "MHA-WEIGHTS-PER-HEAD", "MHA-HEAD-SPLIT"),
    needs=("mha.weights",),
    conventions=("weights",),
)
def weights_from_q_k(ctx: Context) -> Check:
    """Weights equal softmax(Q_i K_i^T / sqrt(d_k)) per head, from W_Q and W_K alone.

    The float64 ground truth uses W_Q, b_Q, W_K, b_K only, so W_V and W_O cannot move the
    weights; weights declared averaged must equal the mean of the per-head ones."""
    require_projections(ctx)

    @given(mha_cases())
    def check(case: MHACase) -> None:
        module = build(ctx, case)
        p = projections(module)
        xq, xkv = case.inputs(ctx.dtype, ctx.device)
        w = need_weights(run(ctx, case, module, xq, xkv)[1])
        want = declared_weights(ctx, per_head_weights(p, xq, xkv, case.n_heads, torch.float64))
        naive = declared_weights(ctx, per_head_weights(p, xq, xkv, case.n_heads, ctx.dtype))
        tol = ctx.tolerance
        # the plain formula's error, but at least a rounding of the weights themselves
        err = max(max_abs(naive.double() - want), tol.rowsum)
        bound = tol.reference_factor * err + tol.reference_floor
        check_close(w, want, bound, "weights vs softmax of the Q, K projections (float64)", xq)

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
    needs=("mha.per_head_weights",),
)
def heads_independent(ctx: Context) -> Check:
    """Changing only head j's queries leaves every other head's weights unchanged.

    x_query moves along directions that W_Q maps into head j's columns alone (the left null
    space of W_Q's other columns), a change of head j's W_Q seen through the input."""
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
        leak = max_abs(
            per_head_weights(p, xq2, xkv, case.n_heads, torch.float64)[:, others]
            - per_head_weights(p, xq, xkv, case.n_heads, torch.float64)[:, others]
        )
        bound = leak + 2 * ctx.tolerance.invariance
        check_close(w2, w1, bound, f"weights of heads {others} after changing head {j}'s queries")

    return check


@prop(
    "multihead.output_row_depends_only_on_its_query_row",
    clauses=("ATTN-QKV-PROJ", "XATTN-KV-FROM-ENCODER"),
    needs=("mha",),
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

    K and V are row-wise projections of x_kv: key j depends on row j alone."""

    @given(mha_cases(min_k_len=2), st.data())
    def check(case: MHACase, data: st.DataObject) -> None:
        keep = torch.tensor(data.draw(key_keep(case.batch, case.k_len), label="keep"))
        perm = data.draw(st.permutations(range(case.k_len)), label="perm")
        module = build(ctx, case)
        xq, xkv = case.inputs(ctx.dtype, ctx.device)
        keep = keep.to(ctx.device)
        a = run(ctx, case, module, xq, xkv, keep)[0]
        b = run(ctx, case, module, xq, xkv[:, perm], keep[:, perm])[0]
        check_close(
            b,
            a,
            relative_bound(ctx.tolerance.invariance, a),
            f"output after permuting the rows of x_kv by {perm}",
        )

    return check


@prop("multihead.causal_no_future_leak", clauses=("MASK-CAUSAL-NO-LEAK",), needs=("mha",))
def causal_no_future_leak(ctx: Context) -> Check:
    """Causal self-attention: changing x after position t leaves outputs <= t unchanged."""

    @given(mha_cases(equal_lengths=True, min_q_len=2), st.data())
    def check(case: MHACase, data: st.DataObject) -> None:
        t = data.draw(st.integers(0, case.q_len - 2), label="t")
        module = build(ctx, case)
        x = case.inputs(ctx.dtype, ctx.device)[0]
        x2 = x.clone()
        x2[:, t + 1 :] = -4 * x2[:, t + 1 :] + _BIG
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
    needs=("mha",),
    conventions=("mask_polarity",),
)
def padded_keys_no_effect(ctx: Context) -> Check:
    """Changing the rows of x_kv that key_padding marks as padding changes no output."""

    @given(mha_cases(min_k_len=2), st.data())
    def check(case: MHACase, data: st.DataObject) -> None:
        keep = data.draw(key_keep(case.batch, case.k_len), label="keep")
        kept = torch.tensor(keep, device=ctx.device)
        module = build(ctx, case)
        xq, xkv = case.inputs(ctx.dtype, ctx.device)
        xkv2 = xkv.clone()
        xkv2[~kept] = -5 * xkv2[~kept] + _BIG
        a = run(ctx, case, module, xq, xkv, kept)[0]
        b = run(ctx, case, module, xq, xkv2, kept)[0]
        check_close(
            b,
            a,
            relative_bound(ctx.tolerance.invariance, a),
            f"output after changing padded rows of x_kv (keep={keep})",
        )

    return check


@prop("multihead.batch_items_independent", clauses=("ARCH-BATCH-INDEPENDENT",), needs=("mha",))
def batch_items_independent(ctx: Context) -> Check:
    """Each batch item's output equals running it alone, and ignores the other items."""

    @given(mha_cases())
    def check(case: MHACase) -> None:
        module = build(ctx, case)
        xq, xkv = case.inputs(ctx.dtype, ctx.device)
        full = run(ctx, case, module, xq, xkv)[0]
        bound = relative_bound(ctx.tolerance.invariance, full)
        check_close(run(ctx, case, module, xq[:1], xkv[:1])[0], full[:1], bound, "item 0 run alone")
        if case.batch > 1:
            xq2, xkv2 = xq.clone(), xkv.clone()
            xq2[1:], xkv2[1:] = -3 * xq2[1:] + 1, -3 * xkv2[1:] + 1
            check_close(
                run(ctx, case, module, xq2, xkv2)[0][:1],
                full[:1],
                bound,
                "item 0 after changing the other batch items",
            )

    return check


@prop(
    "multihead.fully_padded_item_follows_policy",
    clauses=("MASK-FULLY-MASKED-ROW",),
    needs=("mha",),
    conventions=("fully_masked_row",),
)
def fully_padded_item(ctx: Context) -> Check:
    """A batch item whose keys are all padding returns what the target declared for a row
    with no visible key (heads' outputs zero, so b_O alone; NaN; or any finite values), and
    the other items are what they are when run alone."""
    policy = ctx.target.conventions.fully_masked_row
    if policy == "unspecified":
        raise NotApplicable("target declares no fully-masked-row policy")

    @given(mha_cases(min_batch=2), st.data())
    def check(case: MHACase, data: st.DataObject) -> None:
        keep = list(data.draw(key_keep(case.batch, case.k_len), label="keep"))
        j = data.draw(st.integers(0, case.batch - 1), label="fully_padded_item")
        keep[j] = (False,) * case.k_len
        kept = torch.tensor(keep, device=ctx.device)
        module = build(ctx, case)
        xq, xkv = case.inputs(ctx.dtype, ctx.device)
        out = run(ctx, case, module, xq, xkv, kept)[0]
        item = out[j]
        if policy == "nan" and not bool(torch.isnan(item).all()):
            raise AssertionError(f"item {j}, all keys padded, should be NaN (declared)")
        if policy == "finite" and not bool(torch.isfinite(item).all()):
            raise AssertionError(f"item {j}, all keys padded, gave non-finite values")
        p = module.projections() if policy == "zeros" else None
        if p is not None:  # zero heads: the output is the bias b_O (or 0) in every row
            b_O = torch.zeros(case.d_model) if p.b_O is None else p.b_O.detach().double().cpu()
            want = b_O.expand(case.q_len, -1).to(device=ctx.device)
            check_close(
                item,
                want,
                relative_bound(ctx.tolerance.absolute, want),
                f"item {j}, all keys padded: zero heads give b_O",
            )
        others = [i for i in range(case.batch) if i != j]
        alone = run(ctx, case, module, xq[others], xkv[others], kept[others])[0]
        check_close(
            out[others],
            alone,
            relative_bound(ctx.tolerance.invariance, alone),
            f"the other items next to fully padded item {j}",
        )

    return check
