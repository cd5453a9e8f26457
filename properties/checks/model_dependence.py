"""Whole models: what the logits depend on and what not. Padding changes no real position,
an encoder without positions treats its tokens as a set and with them as a sequence, every
position sees the ones it may, and the decoder reads the whole source (spec MASK-*, ATTN-*,
PE-*, ENC-*, DEC-*, XATTN-*). The models and inputs come from model_cases."""

from dataclasses import dataclass

import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import Tensor
from transformer_spec.properties.checks.model_cases import (
    FIRST_REAL,
    ModelCase,
    _depends,
    _logits,
    _other_ids,
    _source,
    _tokens,
    model_cases,
    need_pad_id,
    probe_model,
    vocab_size,
)
from transformer_spec.properties.harness.compare import check_close, relative_bound
from transformer_spec.properties.harness.registry import Check, Context, NotApplicable, prop
from transformer_spec.properties.harness.strategies import TokenCase, token_cases
from transformer_spec.properties.targets.protocols import (
    Model,
    ModelKind,
    masks_padding,
    pads_left,
)

# ---- padding ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Padded:
    """A batch of real sequences of different lengths, padded to one length on one side."""

    tokens: Tensor
    real: list[slice]  # per item, where its real tokens are
    left: bool


def _pad(
    ctx: Context, case: TokenCase, data: st.DataObject, pad_id: int | None, allow_left: bool = True
) -> Padded:
    """Items get 1..length real tokens; left padding (unless not `allow_left`) only for
    models that can be built without positions."""
    assert pad_id is not None, "guarded by need_pad_id"
    can_left = allow_left and ctx.target.model_positional_off and ctx.target.model_fixed is None
    left = data.draw(st.booleans(), label="left_padding") if can_left else False
    keep = [data.draw(st.integers(1, case.length), label=f"real_{b}") for b in range(case.batch)]
    tokens = _tokens(ctx, case)
    real = [slice(case.length - n, None) if left else slice(0, n) for n in keep]
    for b, sl in enumerate(real):
        padded = torch.ones(case.length, dtype=torch.bool, device=ctx.device)
        padded[sl] = False
        tokens[b, padded] = pad_id
    return Padded(tokens, real, left)


@prop(
    "model.encoder_only.padding_has_no_effect",
    clauses=("MASK-PAD-NO-EFFECT",),
    needs=("model.encoder_only",),
)
def encoder_only_padding(ctx: Context) -> Check:
    """Padding changes no logit at a real position: each item equals its real tokens alone.

    Right padding, or left padding on a model without positional encoding. Not applicable
    to a model that declares `masks_padding = False`: it takes <PAD> as an ordinary token
    (FNet's Fourier mixing takes no mask), and every token sees it."""
    need_pad_id(ctx, "encoder_only")
    if not masks_padding(probe_model(ctx, "encoder_only")):
        raise NotApplicable(
            "the target's encoder takes <PAD> as an ordinary token (masks_padding = False)"
        )

    @given(model_cases(ctx), token_cases(), st.data())
    def check(mc: ModelCase, case: TokenCase, data: st.DataObject) -> None:
        probe = mc.build(ctx, "encoder_only")
        p = _pad(ctx, case, data, probe.pad_id)
        # Left padding shifts the real tokens' positions: only position-free models agree.
        model = mc.build(ctx, "encoder_only", positional=False) if p.left else probe
        out = model.logits(p.tokens)
        bound = relative_bound(ctx.tolerance.invariance, out)
        for b, sl in enumerate(p.real):
            alone = model.logits(p.tokens[b : b + 1, sl])
            check_close(out[b : b + 1, sl], alone, bound, f"item {b}: padded vs unpadded")

    return check


@prop(
    "model.encoder_decoder.source_padding_has_no_effect",
    clauses=("MASK-PAD-NO-EFFECT",),
    needs=("model.encoder_decoder",),
)
def encoder_decoder_padding(ctx: Context) -> Check:
    """Source padding changes no target logit: each item equals its real source alone.

    Right padding, or left padding on a model without positional encoding."""
    need_pad_id(ctx, "encoder_decoder")

    @given(model_cases(ctx), token_cases(), st.data())
    def check(mc: ModelCase, case: TokenCase, data: st.DataObject) -> None:
        probe = mc.build(ctx, "encoder_decoder")
        p = _pad(ctx, case, data, probe.pad_id)
        model = mc.build(ctx, "encoder_decoder", positional=False) if p.left else probe
        tgt = _source(ctx, case, data.draw(st.integers(1, 6), label="tgt_len"))
        out = model.logits(tgt, p.tokens)
        bound = relative_bound(ctx.tolerance.invariance, out)
        for b, sl in enumerate(p.real):
            alone = model.logits(tgt[b : b + 1], p.tokens[b : b + 1, sl])
            check_close(out[b : b + 1], alone, bound, f"item {b}: padded vs unpadded source")

    return check


def _target_padding(ctx: Context, kind: ModelKind) -> Check:
    """Each padded item's logits at its real positions equal those of its real tokens
    alone (an encoder-decoder model reads the same source in both passes)."""
    need_pad_id(ctx, kind)

    @given(model_cases(ctx), token_cases(), st.data())
    def check(mc: ModelCase, case: TokenCase, data: st.DataObject) -> None:
        probe = mc.build(ctx, kind)
        p = _pad(ctx, case, data, probe.pad_id, allow_left=pads_left(probe))
        # Left padding shifts the real tokens' positions: only position-free models agree.
        model = mc.build(ctx, kind, positional=False) if p.left else probe
        src = None
        if kind == "encoder_decoder":
            src = _source(ctx, case, data.draw(st.integers(1, 6), label="src_len"))
        out = _logits(model, kind, p.tokens, src)
        for b, sl in enumerate(p.real):
            alone = _logits(
                model, kind, p.tokens[b : b + 1, sl], None if src is None else src[b : b + 1]
            )
            padded = out[b : b + 1, sl]
            bound = relative_bound(ctx.tolerance.invariance, alone, padded)
            side = "left" if p.left else "right"
            what = f"item {b}: real positions {sl.start}.. with {side} padding vs unpadded"
            hint = " (a model that takes <PAD> as an ordinary token declares masks_padding = False)"
            check_close(padded, alone, bound, what + (hint if p.left else ""))

    return check


@prop(
    "model.decoder_only.padding_has_no_effect",
    clauses=("MASK-PAD-NO-EFFECT", "MASK-COMBINED"),
    needs=("model.decoder_only",),
)
def decoder_only_padding(ctx: Context) -> Check:
    """Padding changes no logit at a real position: each item equals its real tokens alone.

    Right padding, or left padding on a model without positional encoding. Left padding is
    where a decoder must mask <PAD> keys itself: its causal mask alone lets every real
    token see the pads before it. A model that declares `masks_padding = False` (<PAD> an
    ordinary token to it) is padded on the right only."""
    return _target_padding(ctx, "decoder_only")


@prop(
    "model.encoder_decoder.target_padding_has_no_effect",
    clauses=("MASK-PAD-NO-EFFECT", "MASK-COMBINED"),
    needs=("model.encoder_decoder",),
)
def encoder_decoder_target_padding(ctx: Context) -> Check:
    """Target padding changes no logit at a real target position: each item equals its real
    target tokens alone, with the same source.

    Right padding, or left padding on a model without positional encoding (the decoder's
    self-attention must mask <PAD> keys itself); right padding only for a model that
    declares `masks_padding = False`."""
    return _target_padding(ctx, "encoder_decoder")


# ---- encoder-only: order and all-to-all attention --------------------------------------------


def _permutation(case: TokenCase, start: int = 0) -> Tensor:
    """A random order of positions start..length-1, after the fixed positions < start."""
    g = torch.Generator().manual_seed(case.seed)
    rest = torch.randperm(case.length - start, generator=g) + start
    return torch.cat([torch.arange(start), rest])


@prop(
    "model.encoder_only.permutation_equivariant",
    clauses=("ATTN-PERM-EQUIV",),
    needs=("model.encoder_only", "model.positional_off"),
)
def encoder_only_permutation(ctx: Context) -> Check:
    """Without positional encoding, permuting the tokens permutes the logits the same way."""

    @given(model_cases(ctx), token_cases())
    def check(mc: ModelCase, case: TokenCase) -> None:
        model = mc.build(ctx, "encoder_only", positional=False)
        tokens, perm = _tokens(ctx, case), _permutation(case).to(ctx.device)
        out = model.logits(tokens)
        check_close(
            model.logits(tokens[:, perm]),
            out[:, perm],
            relative_bound(ctx.tolerance.invariance, out),
            f"logits of the permuted tokens vs the permuted logits (perm={perm.tolist()})",
        )

    return check


@prop(
    "model.encoder_only.class_token_invariant",
    clauses=("ATTN-CLS-PERM-INVARIANT",),
    needs=("model.encoder_only", "model.positional_off"),
)
def encoder_only_class_token(ctx: Context) -> Check:
    """Without positional encoding, permuting the non-class tokens keeps the class output.

    Position 0 is the class token: its logits and the mean logits over positions must stay
    the same."""

    @given(model_cases(ctx), token_cases(min_len=3))
    def check(mc: ModelCase, case: TokenCase) -> None:
        model = mc.build(ctx, "encoder_only", positional=False)
        tokens, perm = _tokens(ctx, case), _permutation(case, start=1).to(ctx.device)
        a, b = model.logits(tokens), model.logits(tokens[:, perm])
        bound = relative_bound(ctx.tolerance.invariance, a)
        what = f"after permuting the other tokens (perm={perm.tolist()})"
        check_close(b[:, 0], a[:, 0], bound, f"class-token logits {what}")
        check_close(b.double().mean(1), a.double().mean(1), bound, f"mean logits {what}")

    return check


def _distinct_tokens(ctx: Context, case: TokenCase) -> Tensor:
    """Per item, `length` different real ids, so that moving a token changes the sequence."""
    g = torch.Generator().manual_seed(case.seed)
    rows = [
        torch.randperm(vocab_size(ctx) - FIRST_REAL, generator=g)[: case.length]
        for _ in range(case.batch)
    ]
    return (torch.stack(rows) + FIRST_REAL).to(ctx.device)


@prop(
    "model.encoder_only.order_sensitive",
    clauses=("PE-ORDER-SENSITIVE",),
    needs=("model.encoder_only",),
)
def encoder_only_order_sensitive(ctx: Context) -> Check:
    """With positional encoding, rotating the tokens does not just rotate the logits."""

    @given(model_cases(ctx), token_cases())
    def check(mc: ModelCase, case: TokenCase) -> None:
        tokens = _distinct_tokens(ctx, case)
        # A rotation moves every token, unlike a random permutation that may fix most.
        perm = torch.arange(case.length, device=ctx.device).roll(1)

        def pairs(model: Model) -> list[tuple[str, Tensor, Tensor]]:
            what = "logits of the rotated tokens vs the rotated logits"
            return [(what, model.logits(tokens)[:, perm], model.logits(tokens[:, perm]))]

        _depends(ctx, mc, "encoder_only", pairs, reordered=True)

    return check


@prop("model.encoder_only.all_to_all", clauses=("ENC-ALL-TO-ALL",), needs=("model.encoder_only",))
def encoder_only_all_to_all(ctx: Context) -> Check:
    """Replacing the token at position j changes the logits at every earlier position."""

    @given(model_cases(ctx), token_cases(), st.data())
    def check(mc: ModelCase, case: TokenCase, data: st.DataObject) -> None:
        j = data.draw(st.integers(1, case.length - 1), label="j")
        tokens = _tokens(ctx, case)
        changed = tokens.clone()
        changed[:, j] = _other_ids(ctx, changed[:, j])

        def pairs(model: Model) -> list[tuple[str, Tensor, Tensor]]:
            a, b = model.logits(tokens), model.logits(changed)
            return [
                (f"logits at {i} after replacing token {j}", a[:, i], b[:, i]) for i in range(j)
            ]

        _depends(ctx, mc, "encoder_only", pairs)

    return check


def _sees_every_earlier_token(ctx: Context, kind: ModelKind) -> Check:
    @given(model_cases(ctx), token_cases(), st.data())
    def check(mc: ModelCase, case: TokenCase, data: st.DataObject) -> None:
        j = data.draw(st.integers(0, case.length - 2), label="j")
        tokens, src = _tokens(ctx, case), _source(ctx, case, case.length)
        changed = tokens.clone()
        changed[:, j] = _other_ids(ctx, changed[:, j])

        def pairs(model: Model) -> list[tuple[str, Tensor, Tensor]]:
            a, b = _logits(model, kind, tokens, src), _logits(model, kind, changed, src)
            later = range(j + 1, case.length)
            return [(f"logits at {i} after replacing token {j}", a[:, i], b[:, i]) for i in later]

        _depends(ctx, mc, kind, pairs)

    return check


@prop(
    "model.decoder_only.sees_every_earlier_token",
    clauses=("MASK-CAUSAL-PATTERN", "MASK-COMBINED"),
    needs=("model.decoder_only",),
)
def decoder_only_sees_the_past(ctx: Context) -> Check:
    """Replacing the token at position j changes the logits at every later position: the
    causal mask hides the future only, not the past (a window too short, or a mask that
    keeps the diagonal alone, passes every "no future" check)."""
    return _sees_every_earlier_token(ctx, "decoder_only")


@prop(
    "model.encoder_decoder.sees_every_earlier_token",
    clauses=("MASK-CAUSAL-PATTERN", "MASK-COMBINED"),
    needs=("model.encoder_decoder",),
)
def encoder_decoder_sees_the_past(ctx: Context) -> Check:
    """Replacing the target token at position j changes the logits at every later target
    position, with the same source."""
    return _sees_every_earlier_token(ctx, "encoder_decoder")


# ---- encoder-decoder: the source reaches the decoder -----------------------------------------


@prop(
    "model.encoder_decoder.uses_source",
    clauses=("DEC-USES-SOURCE",),
    needs=("model.encoder_decoder",),
)
def encoder_decoder_uses_source(ctx: Context) -> Check:
    """Replacing one source token changes the target logits."""

    @given(model_cases(ctx), token_cases(), st.data())
    def check(mc: ModelCase, case: TokenCase, data: st.DataObject) -> None:
        j = data.draw(st.integers(0, case.length - 1), label="j")
        src, tgt = _tokens(ctx, case), _source(ctx, case, data.draw(st.integers(1, 6)))
        changed = src.clone()
        changed[:, j] = _other_ids(ctx, changed[:, j])
        what = f"target logits after replacing source token {j}"
        _depends(
            ctx,
            mc,
            "encoder_decoder",
            lambda model: [(what, model.logits(tgt, src), model.logits(tgt, changed))],
        )

    return check


@prop(
    "model.encoder_decoder.cross_attention_not_causal",
    clauses=("XATTN-NO-CAUSAL",),
    needs=("model.encoder_decoder", "model.positional_off"),
)
def encoder_decoder_no_causal_cross(ctx: Context) -> Check:
    """Every target position sees every source position, also later ones.

    Without positional encoding, moving the last source token to the front leaves the target
    logits unchanged, and replacing it changes the logits at target position 0."""

    @given(model_cases(ctx), token_cases(), st.data())
    def check(mc: ModelCase, case: TokenCase, data: st.DataObject) -> None:
        # Without positions the encoder output is permuted with the source and cross-
        # attention treats it as a set, unless a causal mask hides later source positions
        # from earlier target positions. (Replacing a token alone cannot show such a mask:
        # the all-to-all encoder already carries the token to every source position.)
        model = mc.build(ctx, "encoder_decoder", positional=False)
        src, tgt = _tokens(ctx, case), _source(ctx, case, data.draw(st.integers(1, 6)))
        out = model.logits(tgt, src)
        check_close(
            model.logits(tgt, src.roll(1, dims=1)),
            out,
            relative_bound(ctx.tolerance.invariance, out),
            "target logits after moving the last source token to the front",
        )
        changed = src.clone()
        changed[:, -1] = _other_ids(ctx, changed[:, -1])
        what = f"target position 0 after replacing the last source token ({case.length - 1})"
        _depends(
            ctx,
            mc,
            "encoder_decoder",
            lambda m: [(what, m.logits(tgt, src)[:, 0], m.logits(tgt, changed)[:, 0])],
            positional=False,
        )

    return check
