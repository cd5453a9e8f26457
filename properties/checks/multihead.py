"""Multi-head attention and cross-attention, at the module level (spec MHA-*, XATTN-*).

The ground truth is the notes' formula written out head by head: head i takes the columns
i*d_k:(i+1)*d_k of Q = X_query W_Q + b_Q, K = X_kv W_K + b_K, V = X_kv W_V + b_V, attends in
float64, and the heads are concatenated in order, then multiplied by W_O (plus b_O). Slicing
columns, rather than reshaping, is what makes a reshape without transpose visible.

Calls follow the form the target declares (Target.mha_inputs, mha_causal, mha_key_padding):
- a cross-attention module ("cross") gets x_query and x_kv separate, lengths drawn
  independently, unless a property needs self-attention (one tensor in both roles);
- a self-attention module ("self", forward(x)) gets one tensor in both roles, always; a
  property that needs queries apart from keys (unequal lengths, queries moved alone) is not
  applicable to it;
- a module with no causal switch is called as it is: an always-causal module's expected
  values are the causal ones, and a property that needs a causal mask is not applicable to
  a never-causal module.
A query row that sees no key (causal bottom-right with L_query > L_key, padding together
with causal, an all-padded item) is never compared with the formula: it must give what the
target declares in Conventions.fully_masked_row (`follows_policy`).
"""

import math
from dataclasses import dataclass

import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import Tensor
from transformer_spec.properties.checks.reference_math import attention64
from transformer_spec.properties.harness.compare import (
    check_close,
    check_rows_sum_to_one,
    max_abs,
    relative_bound,
    show,
)
from transformer_spec.properties.harness.compare import follows_policy as row_policy
from transformer_spec.properties.harness.registry import Check, Context, NotApplicable, prop
from transformer_spec.properties.harness.strategies import causal_attends, key_keep
from transformer_spec.properties.targets.protocols import MHA, MHASpec, Projections, to_polarity


def _changed(x: Tensor) -> Tensor:
    """Rows a leak would let through, changed: -4 x is far from x (a leak moves an output by
    about its own size), yet q.k of two changed rows stays inside float16's range. (-4 x + 100
    made a correct float16 self-attention overflow to inf on the changed rows themselves:
    a false alarm.)"""
    return -4 * x


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


def cases(
    ctx: Context,
    *,
    min_heads: int = 1,
    min_q_len: int = 1,
    min_k_len: int = 1,
    equal_lengths: bool = False,
    min_batch: int = 1,
) -> st.SearchStrategy[MHACase]:
    """`mha_cases` for this target: equal lengths for a self-attention module."""
    if is_self(ctx):
        equal_lengths, min_q_len = True, max(min_q_len, min_k_len)
    return mha_cases(
        min_heads=min_heads,
        min_q_len=min_q_len,
        min_k_len=min_k_len,
        equal_lengths=equal_lengths,
        min_batch=min_batch,
    )


def is_self(ctx: Context) -> bool:
    """The module is self-attention only: x_query and x_kv are one tensor."""
    return ctx.target.mha_inputs == "self"


def default_causal(ctx: Context) -> bool:
    """The causal flag of a call that does not need one: True for an always-causal module."""
    return ctx.target.mha_causal == "always"


def inputs(ctx: Context, case: MHACase) -> tuple[Tensor, Tensor]:
    """x_query and x_kv; for a self-attention module one tensor twice (the same object)."""
    xq, xkv = case.inputs(ctx.dtype, ctx.device)
    if is_self(ctx):
        assert case.q_len == case.k_len, "a self-attention case has equal lengths"
        return xq, xq
    return xq, xkv


def build(ctx: Context, case: MHACase) -> MHA:
    factory = ctx.target.mha
    assert factory is not None
    return factory(MHASpec(case.d_model, case.n_heads, ctx.dtype, ctx.device, case.seed))


def require_projections(ctx: Context) -> None:
    """Raise NotApplicable now, while building the property, if the target hides W_Q etc."""
    if not has_projections(ctx):
        raise NotApplicable("target exposes no projection matrices")


def has_projections(ctx: Context) -> bool:
    probe = build(ctx, MHACase(batch=1, n_heads=2, d_k=2, q_len=1, k_len=1, seed=0))
    return probe.projections() is not None


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
    t = ctx.target
    # the harness's own invariants: calls in the form the target declared
    assert t.mha_inputs == "cross" or x_query is x_kv, "self-attention: one tensor in both roles"
    assert causal if t.mha_causal == "always" else t.mha_causal == "argument" or not causal
    assert t.mha_key_padding or keep is None, "the module takes no key padding"
    key_padding = to_polarity(keep, t.conventions.mask_polarity)
    out, weights = module(x_query, x_kv, key_padding=key_padding, causal=causal)
    (b, q_len, d_model), k_len = x_query.shape, x_kv.shape[1]
    if tuple(out.shape) != (b, q_len, d_model):
        raise AssertionError(
            f"output has shape {tuple(out.shape)}, expected (batch, L_query, d_model) = "
            f"{(b, q_len, d_model)} (L_key = {k_len})"
        )
    kind = t.conventions.weights
    if weights is not None and kind != "none":
        want = (b, case.n_heads, q_len, k_len) if kind == "per_head" else (b, q_len, k_len)
        if tuple(weights.shape) != want:
            raise AssertionError(
                f"weights have shape {tuple(weights.shape)}, expected {want} ({kind}, declared)"
            )
    return out, weights


def need_weights(weights: Tensor | None, when: str = "") -> Tensor:
    if weights is None:
        raise AssertionError(f"the target declares attention weights but returned None{when}")
    return weights


def split_heads(t: Tensor, n_heads: int) -> Tensor:
    """(b, L, d_model) -> (b, h, L, d_k): head i gets columns i*d_k:(i+1)*d_k (MHA-HEAD-SPLIT)."""
    d_k = t.shape[-1] // n_heads
    return torch.stack([t[..., i * d_k : (i + 1) * d_k] for i in range(n_heads)], dim=1)


def project(x: Tensor, W: Tensor, b: Tensor | None, dtype: torch.dtype) -> Tensor:
    y = x.to(dtype) @ W.to(device=x.device, dtype=dtype)
    return y if b is None else y + b.to(device=x.device, dtype=dtype)


def _softmax(scores: Tensor, attends: Tensor | None) -> Tensor:
    """softmax over the keys an `attends` mask leaves; a row with none gets zero weights."""
    if attends is None:
        return torch.softmax(scores, dim=-1)
    open_rows = attends.any(-1, keepdim=True)
    scores = scores.masked_fill(~attends, -math.inf).masked_fill(~open_rows, 0.0)
    return torch.softmax(scores, dim=-1) * open_rows


def per_head_weights(
    p: Projections,
    x_query: Tensor,
    x_kv: Tensor,
    n_heads: int,
    dtype: torch.dtype,
    attends: Tensor | None = None,
    *,
    scale: float,
) -> Tensor:
    """softmax(scale Q_i K_i^T) per head (scale: 1/sqrt(d_k), or the target's declared
    score_scale), from W_Q, b_Q, W_K, b_K only; `attends` (broadcast to (b, h, Lq, Lk))
    hides keys."""
    q = split_heads(project(x_query, p.W_Q, p.b_Q, dtype), n_heads)
    k = split_heads(project(x_kv, p.W_K, p.b_K, dtype), n_heads)
    return _softmax((q @ k.transpose(-2, -1)) * scale, attends)


def scale_of(ctx: Context, case: MHACase) -> float:
    """The factor on the scores: 1/sqrt(d_k), or the target's declared score_scale."""
    return ctx.target.conventions.scale(case.d_k)


def formula(
    p: Projections,
    x_query: Tensor,
    x_kv: Tensor,
    n_heads: int,
    dtype: torch.dtype = torch.float64,
    attends: Tensor | None = None,
    *,
    scale: float,
) -> tuple[Tensor, Tensor]:
    """Concat(head_1, ..., head_h) W_O + b_O and the per-head weights, every step in `dtype`
    (float64: the ground truth; the target's dtype: the error baseline). `attends`
    (broadcast to (b, h, Lq, Lk)) hides keys; a row that sees none has zero heads (b_O)."""
    q = split_heads(project(x_query, p.W_Q, p.b_Q, dtype), n_heads)
    k = split_heads(project(x_kv, p.W_K, p.b_K, dtype), n_heads)
    v = split_heads(project(x_kv, p.W_V, p.b_V, dtype), n_heads)
    if dtype == torch.float64:
        z, w = attention64(q, k, v, attends, scale=scale)
    else:  # the plain formula in the low dtype
        w = _softmax((q @ k.transpose(-2, -1)) * scale, attends)
        z = w @ v
    concat = torch.cat(z.unbind(dim=1), dim=-1)  # heads side by side, in order: width h * d_k
    return project(concat, p.W_O, p.b_O, dtype), w


def formula_bound(ctx: Context, want: Tensor, naive: Tensor, rows: Tensor | None = None) -> float:
    """FlashAttention-style: F x the error of the plain formula in this dtype, + a floor;
    over `rows` (b, Lq) only, when given."""
    diff = naive.double() - want
    if rows is not None:
        diff = diff.masked_fill(~rows[..., None], 0.0)
        want = want.masked_fill(~rows[..., None], 0.0)
    tol = ctx.tolerance
    return tol.reference_factor * max_abs(diff) + relative_bound(tol.reference_floor, want)


def b_O_of(p: Projections | None) -> Tensor | None:
    """What a row with zero heads gives: b_O (0 without a bias); None without projections."""
    if p is None:
        return None
    if p.b_O is None:
        return torch.zeros(p.W_O.shape[-1], dtype=torch.float64)
    return p.b_O.detach().double().cpu()


def follows_policy(
    ctx: Context, out: Tensor, empty: Tensor, what: str, *, b_O: Tensor | None
) -> None:
    """Rows of `out` (b, Lq, d_model) marked in `empty` (b, Lq) see no key: they give what
    Conventions.fully_masked_row declares (MASK-FULLY-MASKED-ROW). "zeros": zero heads, so
    the output is b_O (with b_O unknown: one finite vector in every such row); "nan": NaN;
    "finite": any finite values; "unspecified": not checked."""
    policy = ctx.target.conventions.fully_masked_row
    if policy == "unspecified" or not bool(empty.any()):
        return
    rows = out[empty]  # (n, d_model)
    where = [tuple(i) for i in empty.nonzero().tolist()]
    label = f"{what}: rows {where[:8]} (batch, query) see no key"
    if policy != "zeros":  # NaN or finite: as at the attention level
        row_policy(rows, policy, label)
        return
    if not bool(torch.isfinite(rows).all()):
        raise AssertionError(f"{label}; declared zeros, got non-finite values")
    want = rows[:1].double() if b_O is None else b_O.to(rows.device).expand_as(rows)
    bound = relative_bound(ctx.tolerance.absolute, want)
    check_close(rows, want.expand_as(rows), bound, f"{label}; declared zeros: zero heads give b_O")


def check_rows(
    ctx: Context,
    out: Tensor,
    want: Tensor,
    bound: float,
    sees_key: Tensor,
    what: str,
    *,
    b_O: Tensor | None,
    rows: Tensor | None = None,
    extra: tuple[Tensor, ...] = (),
) -> None:
    """Rows of `out` (b, Lq, d_model) that see a key (`sees_key` (b, Lq)) are within `bound`
    of `want`; rows that see none follow the declared policy. `rows` (b, Lq): the rows to
    check at all (default: every row)."""
    checked = torch.ones_like(sees_key) if rows is None else rows
    visible = (checked & sees_key)[..., None].to(out.device)
    got, expected = out.masked_fill(~visible, 0.0), want.to(out.device).masked_fill(~visible, 0.0)
    check_close(got, expected, bound, what, *extra)
    follows_policy(ctx, out, (checked & ~sees_key).to(out.device), what, b_O=b_O)


def declared_weights(ctx: Context, per_head: Tensor) -> Tensor:
    """Per-head weights (b, h, Lq, Lk) as the target declared it returns them."""
    return per_head if ctx.target.conventions.weights == "per_head" else per_head.mean(dim=1)


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


def check_weights(
    ctx: Context,
    w: Tensor,
    p: Projections,
    case: MHACase,
    xq: Tensor,
    xkv: Tensor,
    attends: Tensor | None,
    what: str = "weights vs softmax of the Q, K projections (float64)",
) -> None:
    """Returned weights vs the float64 softmax of the Q, K projections, in the declared
    layout, within F x the plain formula's error (at least a rounding of the weights)."""
    n = case.n_heads
    scale = scale_of(ctx, case)
    want = declared_weights(
        ctx, per_head_weights(p, xq, xkv, n, torch.float64, attends, scale=scale)
    )
    naive = declared_weights(ctx, per_head_weights(p, xq, xkv, n, ctx.dtype, attends, scale=scale))
    tol = ctx.tolerance
    err = max(max_abs(naive.double() - want), tol.rowsum)
    check_close(w, want, tol.reference_factor * err + tol.reference_floor, what, xq)


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


def _keep(ctx: Context, case: MHACase, data: st.DataObject, min_kept: int = 1) -> Tensor | None:
    """Key padding flags (b, Lk), True = real key, for a module that takes them; else None."""
    if not ctx.target.mha_key_padding:
        return None
    keep = data.draw(key_keep(case.batch, case.k_len, min_kept=min_kept), label="keep")
    return torch.tensor(keep, dtype=torch.bool, device=ctx.device).reshape(case.batch, case.k_len)


def _real_rows(ctx: Context, keep: Tensor | None, shape: tuple[int, int]) -> Tensor | None:
    """The query rows to check: in self-attention, the real (unpadded) positions, since a
    padded position's own output is no one's concern; in cross-attention, every row."""
    if keep is None or not is_self(ctx):
        return None
    assert tuple(keep.shape) == shape
    return keep


def _rows_only(t: Tensor, rows: Tensor | None) -> Tensor:
    return t if rows is None else t.masked_fill(~rows[..., None], 0.0)


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
