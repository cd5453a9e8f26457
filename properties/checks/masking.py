"""Masks at the attention-function level: causal, padding, combined, fully masked rows
(spec MASK-*). Masks reach the target in its declared polarity."""

import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import Tensor
from transformer_spec.properties.checks._call import attend, need_weights
from transformer_spec.properties.checks.reference_math import attention64
from transformer_spec.properties.harness.compare import (
    check_close,
    check_rows,
    check_rows_sum_to_one,
    follows_policy,
    relative_bound,
)
from transformer_spec.properties.harness.registry import Check, Context, prop
from transformer_spec.properties.harness.strategies import (
    AttentionCase,
    attention_cases,
    causal_attends,
    keep_tensor,
    key_keep,
)

_BIG = 100.0  # what a leak would add: far above any tolerance


def expected(ctx: Context, q: Tensor, k: Tensor, v: Tensor, attends: Tensor | None) -> Tensor:
    """The float64 formula's output with the target's declared score scale."""
    scale = ctx.target.conventions.scale(q.shape[-1])
    return attention64(q, k, v, attends, scale=scale)[0]


@prop("masking.causal_no_future_leak", clauses=("MASK-CAUSAL-NO-LEAK",), needs=("attention",))
def causal_no_future_leak(ctx: Context) -> Check:
    """Under the causal flag, changing keys and values after position t leaves every output
    at or before t unchanged."""

    @given(attention_cases(equal_lengths=True, min_q_len=2), st.data())
    def check(case: AttentionCase, data: st.DataObject) -> None:
        t = data.draw(st.integers(0, case.q_len - 2), label="t")
        q, k, v = case.qkv(ctx.dtype, ctx.device)
        k2, v2 = k.clone(), v.clone()
        k2[..., t + 1 :, :] = -k2[..., t + 1 :, :] * 4
        v2[..., t + 1 :, :] += _BIG
        a = attend(ctx, q, k, v, causal=True)[0]
        b = attend(ctx, q, k2, v2, causal=True)[0]
        check_close(
            b[..., : t + 1, :],
            a[..., : t + 1, :],
            relative_bound(ctx.tolerance.invariance, a),
            f"causal outputs at positions <= {t} after changing later keys and values",
        )

    return check


@prop(
    "masking.causal_weights_lower_triangular",
    clauses=("MASK-CAUSAL-PATTERN",),
    needs=("attention.weights",),
)
def causal_pattern(ctx: Context) -> Check:
    """With the causal flag and equal lengths, weights above the diagonal are exactly zero, and
    query 0 returns value 0."""

    @given(attention_cases(equal_lengths=True))
    def check(case: AttentionCase) -> None:
        q, k, v = case.qkv(ctx.dtype, ctx.device)
        out, w = attend(ctx, q, k, v, causal=True)
        w = need_weights(w)
        future = ~causal_attends(case.q_len, case.k_len, "top_left", ctx.device)
        if bool((w[..., future] != 0).any()):
            raise AssertionError(
                f"weight {float(w[..., future].abs().max()):.3g} on a future key\n"
                f"weights: {w[0, 0].double().cpu().numpy().round(3).tolist()}"
            )
        if not torch.equal(out[..., 0, :], v[..., 0, :]):
            raise AssertionError("query 0 under a causal mask must return exactly value 0")

    return check


@prop(
    "masking.causal_alignment_as_declared",
    clauses=("MASK-CAUSAL-ALIGNMENT",),
    needs=("attention", "attention.unequal_causal"),
    conventions=("causal_alignment", "fully_masked_row", "score_scale"),
    exact=True,
)
def causal_alignment(ctx: Context) -> Check:
    """With query length != key length, the causal flag hides exactly the keys the declared
    alignment hides: equal to the float64 formula under that alignment's mask."""

    @given(attention_cases(min_q_len=1, min_k_len=1))
    def check(case: AttentionCase) -> None:
        alignment = ctx.target.conventions.causal_alignment
        assert alignment is not None
        attends = causal_attends(case.q_len, case.k_len, alignment, ctx.device)
        q, k, v = case.qkv(ctx.dtype, ctx.device)
        out = attend(ctx, q, k, v, causal=True)[0]
        want = expected(ctx, q, k, v, attends)
        check_rows(
            out,
            want,
            attends,
            ctx.target.conventions.fully_masked_row,
            relative_bound(ctx.tolerance.absolute, want),
            f"causal attention vs the {alignment} mask (q_len={case.q_len}, k_len={case.k_len})",
        )

    return check


@prop(
    "masking.masked_keys_get_zero_weight",
    clauses=("MASK-PAD-ZERO-WEIGHT", "MASK-POLARITY"),
    needs=("attention.weights",),
    conventions=("mask_polarity",),
    exact=True,
)
def masked_keys_zero_weight(ctx: Context) -> Check:
    """Keys the mask blocks (in the declared polarity) get weight exactly 0; the others share
    all the weight."""

    @given(attention_cases(min_k_len=2), st.data())
    def check(case: AttentionCase, data: st.DataObject) -> None:
        keep = data.draw(key_keep(case.batch, case.k_len), label="keep")
        attends = keep_tensor(keep, case.q_len, ctx.device)
        q, k, v = case.qkv(ctx.dtype, ctx.device)
        w = need_weights(attend(ctx, q, k, v, attends)[1])
        blocked = ~attends.expand_as(w)
        if bool((w[blocked] != 0).any()):
            raise AssertionError(
                f"a blocked key got weight {float(w[blocked].abs().max()):.3g} "
                f"(keep={keep}, declared polarity "
                f"{ctx.target.conventions.mask_polarity})"
            )
        check_rows_sum_to_one(w, ctx.tolerance.rowsum, "row sums over the visible keys")

    return check


@prop(
    "masking.masked_content_has_no_effect",
    clauses=("MASK-PAD-NO-EFFECT", "MASK-BEFORE-SOFTMAX"),
    needs=("attention",),
)
def masked_content_no_effect(ctx: Context) -> Check:
    """Changing blocked keys and values changes nothing, and the result equals attention over
    the visible keys alone (the mask acts before the softmax)."""

    @given(attention_cases(min_k_len=2), st.data())
    def check(case: AttentionCase, data: st.DataObject) -> None:
        keep = data.draw(key_keep(case.batch, case.k_len), label="keep")
        attends = keep_tensor(keep, case.q_len, ctx.device)
        q, k, v = case.qkv(ctx.dtype, ctx.device)
        out = attend(ctx, q, k, v, attends)[0]
        hidden = ~torch.tensor(keep, device=ctx.device)[:, None, :].expand(-1, case.heads, -1)
        k2, v2 = k.clone(), v.clone()
        k2[hidden] = k2[hidden] * -5
        v2[hidden] = v2[hidden] + _BIG
        bound = relative_bound(ctx.tolerance.invariance, out)
        check_close(
            attend(ctx, q, k2, v2, attends)[0],
            out,
            bound,
            f"output after changing blocked keys (keep={keep})",
        )
        for b, row in enumerate(keep):
            idx = torch.tensor([j for j, kept in enumerate(row) if kept], device=ctx.device)
            alone = attend(ctx, q[b : b + 1], k[b : b + 1, :, idx], v[b : b + 1, :, idx])[0]
            check_close(
                out[b : b + 1],
                alone,
                relative_bound(ctx.tolerance.absolute, alone),
                f"item {b}: masked attention vs attention over its visible keys only",
            )

    return check


@prop(
    "masking.padding_and_causal_combine",
    clauses=("MASK-COMBINED",),
    needs=("attention",),
    conventions=("fully_masked_row", "score_scale"),
    exact=True,
)
def padding_and_causal_combine(ctx: Context) -> Check:
    """A padding mask together with the causal flag hides a key when either hides it."""

    @given(attention_cases(equal_lengths=True, min_q_len=2), st.data())
    def check(case: AttentionCase, data: st.DataObject) -> None:
        keep = data.draw(key_keep(case.batch, case.k_len), label="keep")
        pad = keep_tensor(keep, case.q_len, ctx.device)
        q, k, v = case.qkv(ctx.dtype, ctx.device)
        out = attend(ctx, q, k, v, pad, causal=True)[0]
        both = pad & causal_attends(case.q_len, case.k_len, "top_left", ctx.device)
        want = expected(ctx, q, k, v, both)
        check_rows(
            out,
            want,
            both,
            ctx.target.conventions.fully_masked_row,
            relative_bound(ctx.tolerance.absolute, want),
            f"padding (keep={keep}) combined with causal vs the float64 formula",
        )

    return check


@prop(
    "masking.fully_masked_rows_follow_policy",
    clauses=("MASK-FULLY-MASKED-ROW",),
    needs=("attention", "attention.fully_masked_policy"),
    conventions=("fully_masked_row", "score_scale"),
)
def fully_masked_rows(ctx: Context) -> Check:
    """A query that may attend to no key returns what the target declared (zeros, NaN, or any
    finite values); other rows are unaffected."""

    @given(attention_cases(min_q_len=2), st.data())
    def check(case: AttentionCase, data: st.DataObject) -> None:
        row = data.draw(st.integers(0, case.q_len - 1), label="masked_row")
        attends = torch.ones(
            case.batch, 1, case.q_len, case.k_len, dtype=torch.bool, device=ctx.device
        )
        attends[:, :, row, :] = False
        q, k, v = case.qkv(ctx.dtype, ctx.device)
        out = attend(ctx, q, k, v, attends)[0]
        policy = ctx.target.conventions.fully_masked_row
        follows_policy(out[..., row, :], policy, f"fully masked row {row}")
        others = [i for i in range(case.q_len) if i != row]
        want = expected(ctx, q, k, v, attends)
        check_close(
            out[..., others, :],
            want[..., others, :],
            relative_bound(ctx.tolerance.absolute, want),
            "the other rows next to a fully masked row",
        )

    return check
