"""The float64 ground truth of the multi-head properties, and the comparisons with it.

The ground truth is the notes' formula written out head by head: head i takes the columns
i*d_k:(i+1)*d_k of Q = X_query W_Q + b_Q, K = X_kv W_K + b_K, V = X_kv W_V + b_V, attends in
float64, and the heads are concatenated in order, then multiplied by W_O (plus b_O). Slicing
columns, rather than reshaping, is what makes a reshape without transpose visible.

A query row that sees no key (causal bottom-right with L_query > L_key, padding together
with causal, an all-padded item) is never compared with the formula: it must give what the
target declares in Conventions.fully_masked_row (`follows_policy`).
"""

import math

import torch
from torch import Tensor
from transformer_spec.properties.checks.multihead_cases import MHACase
from transformer_spec.properties.checks.reference_math import attention64
from transformer_spec.properties.harness.compare import check_close, max_abs, relative_bound
from transformer_spec.properties.harness.compare import follows_policy as row_policy
from transformer_spec.properties.harness.registry import Context
from transformer_spec.properties.targets.protocols import Projections


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
