"""Whole models: output shape and distributions, batch independence and float64 agreement
for every kind; decoders' causality, caching and teacher forcing (spec ARCH-*, DEC-*, GEN-*,
TRAIN-*, UNEMB-*). The models and inputs come from model_cases."""

import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import Tensor
from transformer_spec.properties.checks.model_cases import (
    FIRST_REAL,
    ModelCase,
    _logits,
    _other_ids,
    _source,
    _tokens,
    max_len,
    model_cases,
    probe_model,
    vocab_size,
)
from transformer_spec.properties.harness.compare import check_close, max_abs, relative_bound
from transformer_spec.properties.harness.registry import Check, Context, NotApplicable, prop
from transformer_spec.properties.harness.strategies import TokenCase, token_cases
from transformer_spec.properties.harness.tolerance import tolerance_for
from transformer_spec.properties.targets.protocols import ModelKind


def _kinds(ctx: Context) -> list[ModelKind]:
    """The kinds the target builds (a model target declares at least one); drawn per example."""
    return list(ctx.target.model_kinds)


# ---- every kind ------------------------------------------------------------------------------


@prop("model.output_shape", clauses=("ARCH-STACK-SHAPE",), needs=("model",))
def output_shape(ctx: Context) -> Check:
    """Logits have shape (batch, length, vocab) for every length up to max_len.

    An encoder-decoder model's source length is drawn independently of the target's."""
    kinds, longest = _kinds(ctx), max_len(ctx)

    @given(model_cases(ctx), token_cases(min_len=1, max_len=longest), st.data())
    def check(mc: ModelCase, case: TokenCase, data: st.DataObject) -> None:
        kind = data.draw(st.sampled_from(kinds), label="kind")
        src = _source(ctx, case, data.draw(st.integers(1, longest), label="src_len"))
        out = _logits(mc.build(ctx, kind), kind, _tokens(ctx, case), src)
        want = (case.batch, case.length, vocab_size(ctx))
        if tuple(out.shape) != want:
            raise AssertionError(f"{kind} logits have shape {tuple(out.shape)}, expected {want}")

    return check


@prop("model.logits_give_distributions", clauses=("UNEMB-DISTRIBUTION",), needs=("model",))
def logits_give_distributions(ctx: Context) -> Check:
    """Logits are finite, and their softmax (in float64) is a distribution at every position."""
    kinds = _kinds(ctx)

    @given(model_cases(ctx), token_cases(min_len=1, max_len=max_len(ctx)), st.data())
    def check(mc: ModelCase, case: TokenCase, data: st.DataObject) -> None:
        kind = data.draw(st.sampled_from(kinds), label="kind")
        src = _source(ctx, case, case.length)
        out = _logits(mc.build(ctx, kind), kind, _tokens(ctx, case), src)
        bad = ~torch.isfinite(out)
        if bool(bad.any()):
            where = tuple(int(i) for i in bad.nonzero()[0])
            raise AssertionError(f"{kind} logit {float(out[where])} at {where} is not finite")
        p = torch.softmax(out.double(), dim=-1)
        check_close(p.sum(-1), torch.ones_like(p[..., 0]), 1e-12, "softmax row sums", out)

    return check


@prop("model.batch_items_independent", clauses=("ARCH-BATCH-INDEPENDENT",), needs=("model",))
def batch_items_independent(ctx: Context) -> Check:
    """Each item's logits equal running it alone and ignore the other batch items."""
    kinds = _kinds(ctx)

    @given(model_cases(ctx), token_cases(min_len=1), st.data())
    def check(mc: ModelCase, case: TokenCase, data: st.DataObject) -> None:
        kind = data.draw(st.sampled_from(kinds), label="kind")
        model = mc.build(ctx, kind)
        tokens, src = _tokens(ctx, case), _source(ctx, case, case.length + 1)
        full = _logits(model, kind, tokens, src)
        bound = relative_bound(ctx.tolerance.invariance, full)
        alone = _logits(model, kind, tokens[:1], src[:1])
        check_close(alone, full[:1], bound, f"{kind}: first item alone vs in the batch")
        if case.batch > 1:
            tokens[1:], src[1:] = _other_ids(ctx, tokens[1:]), _other_ids(ctx, src[1:])
            check_close(
                _logits(model, kind, tokens, src)[:1],
                full[:1],
                bound,
                f"{kind}: first item after replacing the other batch items",
            )

    return check


@prop("model.matches_float64", clauses=("ATTN-FORMULA",), needs=("model",))
def matches_float64(ctx: Context) -> Check:
    """Logits equal those of the same model (same seed) built in float64.

    Bound: the dtype's absolute tolerance relative to the logits' magnitude. Every attention
    sublayer must compute its formula in the dtype under test (ATTN-FORMULA, seen through
    the whole model); the clause the notes give for whole-model numerics is the structure
    clause ARCH-COMPONENTS, which no property can cite."""
    kinds = _kinds(ctx)

    @given(model_cases(ctx), token_cases(), st.data())
    def check(mc: ModelCase, case: TokenCase, data: st.DataObject) -> None:
        kind = data.draw(st.sampled_from(kinds), label="kind")
        tokens, src = _tokens(ctx, case), _source(ctx, case, case.length)
        got = _logits(mc.build(ctx, kind), kind, tokens, src)
        want = _logits(mc.build(ctx, kind, dtype=torch.float64), kind, tokens, src)
        check_close(
            got,
            want,
            relative_bound(ctx.tolerance.absolute, want),
            f"{kind} logits in {ctx.dtype_name} vs float64",
        )

    return check


# ---- decoders: causality, caching, teacher forcing -------------------------------------------


def _causal_no_future_leak(ctx: Context, kind: ModelKind) -> Check:
    @given(model_cases(ctx), token_cases(), st.data())
    def check(mc: ModelCase, case: TokenCase, data: st.DataObject) -> None:
        t = data.draw(st.integers(0, case.length - 2), label="t")
        model = mc.build(ctx, kind)
        tokens, src = _tokens(ctx, case), _source(ctx, case, case.length)
        later = tokens.clone()
        later[:, t + 1 :] = _other_ids(ctx, later[:, t + 1 :])
        a, b = _logits(model, kind, tokens, src), _logits(model, kind, later, src)
        check_close(
            b[:, : t + 1],
            a[:, : t + 1],
            relative_bound(ctx.tolerance.invariance, a),
            f"logits at positions <= {t} after replacing every later token",
        )

    return check


@prop(
    "model.decoder_only.causal_no_future_leak",
    clauses=("MASK-CAUSAL-NO-LEAK", "DEC-CAUSAL-BUILTIN"),
    needs=("model.decoder_only",),
)
def decoder_only_causal(ctx: Context) -> Check:
    """Replacing the tokens after t leaves the logits at positions <= t unchanged.

    Called without a mask: the decoder applies its causal mask itself."""
    return _causal_no_future_leak(ctx, "decoder_only")


@prop(
    "model.encoder_decoder.causal_no_future_leak",
    clauses=("MASK-CAUSAL-NO-LEAK", "DEC-CAUSAL-BUILTIN", "XATTN-ENCODER-ONCE"),
    needs=("model.encoder_decoder",),
)
def encoder_decoder_causal(ctx: Context) -> Check:
    """Replacing the target tokens after t leaves the logits at positions <= t unchanged.

    So neither the decoder nor the encoder output it reads depends on later target tokens
    (XATTN-ENCODER-ONCE: the target does not change H^E)."""
    return _causal_no_future_leak(ctx, "encoder_decoder")


def _incremental_matches_full(ctx: Context, kind: ModelKind) -> Check:
    probe = probe_model(ctx, kind)
    one = torch.full((1, 1), FIRST_REAL, device=ctx.device)
    if probe.incremental_logits(one, one if kind == "encoder_decoder" else None) is None:
        raise NotApplicable("target has no incremental decoding (incremental_logits is None)")

    @given(model_cases(ctx), token_cases(max_len=max_len(ctx)))
    def check(mc: ModelCase, case: TokenCase) -> None:
        tokens, src = _tokens(ctx, case), _source(ctx, case, max(1, case.length // 2))
        _incremental_check(ctx, mc, kind, tokens, src)

    return check


def _incremental_check(
    ctx: Context, mc: ModelCase, kind: ModelKind, tokens: Tensor, src: Tensor | None
) -> None:
    """The model's cached logits equal its full pass's, up to the rounding of one pass."""
    model = mc.build(ctx, kind)
    full = _logits(model, kind, tokens, src)
    steps = model.incremental_logits(tokens, src if kind == "encoder_decoder" else None)
    assert steps is not None
    what = "logits fed one token at a time through the cache vs the full pass"
    bound = relative_bound(ctx.tolerance.invariance, full)
    if "float64" in ctx.target.conventions.dtypes:
        bound = max(bound, _rounding_of_one_pass(ctx, mc, kind, tokens, src, full, what))
    check_close(steps, full, bound, what)


def _rounding_of_one_pass(
    ctx: Context,
    mc: ModelCase,
    kind: ModelKind,
    tokens: Tensor,
    src: Tensor | None,
    full: Tensor,
    what: str,
) -> float:
    """How far the cell's cache and full pass may differ for rounding alone: reference_factor
    times how far either path of the float64 build strays from its full pass's logits, or
    the cell's full pass from them. A cache and a full pass that compute differently (a
    state-space model's chunked scan against its step-by-step recurrence, rotary angles
    taken in float32 on one path) round differently: a correct Bamba's were 2.6e-5 apart in
    float32 and 6e-7 in its float64 build, DeepSeek-V2's 2.7e-9 in float64. The float64
    build's two paths must first agree at float32's bound, which no cache bug meets (a cache
    that forgets positions moves logits by 1e-2), so its gap measures rounding only."""
    exact = mc.build(ctx, kind, dtype=torch.float64)
    full64 = _logits(exact, kind, tokens, src)
    steps64 = exact.incremental_logits(tokens, src if kind == "encoder_decoder" else None)
    assert steps64 is not None
    coarse = tolerance_for(torch.float32, ctx.device).invariance
    check_close(steps64, full64, relative_bound(coarse, full64), f"{what} (float64 build)")
    gap = max(max_abs(steps64 - full64), max_abs(full.double() - full64))
    return ctx.tolerance.reference_factor * gap


@prop(
    "model.decoder_only.incremental_matches_full",
    clauses=("GEN-INCREMENTAL",),
    needs=("model.decoder_only",),
)
def decoder_only_incremental(ctx: Context) -> Check:
    """Decoding one token at a time with the key/value cache gives the full pass's logits."""
    return _incremental_matches_full(ctx, "decoder_only")


@prop(
    "model.encoder_decoder.incremental_matches_full",
    clauses=("GEN-INCREMENTAL", "XATTN-ENCODER-ONCE"),
    needs=("model.encoder_decoder",),
)
def encoder_decoder_incremental(ctx: Context) -> Check:
    """Decoding one token at a time with the cache gives the full pass's logits.

    The source is encoded once and its keys and values reused at every step, where the full
    pass recomputes them (XATTN-ENCODER-ONCE: every step uses the same H^E)."""
    return _incremental_matches_full(ctx, "encoder_decoder")


def _teacher_forcing(ctx: Context, kind: ModelKind) -> Check:
    @given(model_cases(ctx), token_cases(max_batch=2))
    def check(mc: ModelCase, case: TokenCase) -> None:
        model = mc.build(ctx, kind)
        tokens, src = _tokens(ctx, case), _source(ctx, case, case.length)
        full = _logits(model, kind, tokens, src)
        prefixes = [
            _logits(model, kind, tokens[:, : t + 1], src)[:, -1] for t in range(case.length)
        ]
        check_close(
            torch.stack(prefixes, dim=1),
            full,
            relative_bound(ctx.tolerance.invariance, full),
            "logits of each prefix's last position vs the parallel (teacher-forced) pass",
        )

    return check


@prop(
    "model.decoder_only.teacher_forcing",
    clauses=("TRAIN-TEACHER-FORCING",),
    needs=("model.decoder_only",),
)
def decoder_only_teacher_forcing(ctx: Context) -> Check:
    """The parallel pass's logits at t equal the last logits of a pass over tokens[:t+1]."""
    return _teacher_forcing(ctx, "decoder_only")


@prop(
    "model.encoder_decoder.teacher_forcing",
    clauses=("TRAIN-TEACHER-FORCING", "XATTN-ENCODER-ONCE"),
    needs=("model.encoder_decoder",),
)
def encoder_decoder_teacher_forcing(ctx: Context) -> Check:
    """The parallel pass's logits at t equal the last logits of a pass over target[:t+1].

    Each prefix pass encodes the source again and must get the same encoder output."""
    return _teacher_forcing(ctx, "encoder_decoder")
