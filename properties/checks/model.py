"""Whole models: causal masking, padding, permutation, caching, teacher forcing (spec ARCH-*,
ENC-*, DEC-*, GEN-*, TRAIN-*, UNEMB-*).

Models are tiny (vocabulary 24, d_model 16 or 32, 2 or 4 heads, 1 or 2 layers per stack,
max_len 16) and built per example from a drawn seed, so a failure shrinks to a small model
and a short sequence. Token ids are real tokens (>= 4, not special). A target with a fixed
model (`Target.model_fixed`) is checked on that one model, with inputs drawn within its
vocabulary and context length.
"""

from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import Tensor
from transformer_spec.properties.harness.compare import check_close, max_abs, relative_bound
from transformer_spec.properties.harness.registry import Check, Context, NotApplicable, prop
from transformer_spec.properties.harness.strategies import TokenCase, token_cases
from transformer_spec.properties.harness.tolerance import tolerance_for
from transformer_spec.properties.targets.protocols import (
    Model,
    ModelKind,
    ModelSpec,
    Unsupported,
    masks_padding,
    pads_left,
)

VOCAB = 24
MAX_LEN = 16
FIRST_REAL = 4  # ids 0-3 are <PAD>, <START>, <END>, <UNK>
# How far (in invariance bounds) logits must move to show that they depend on an input.
# A model lacking the dependency computes the same outputs bit for bit (masked weights are
# exact zeros), so a small fraction suffices; the smallest genuine change measured on the
# reference over 900 random models was 0.33 bounds in bfloat16 (2.6 in float16, 340 in
# float32), a margin of 3x.
_DEPENDS = 0.1
# Rotating the tokens of a model without positions gives the rotated logits up to rounding
# (<= 0.21 bounds measured in 16-bit); with positions the smallest mismatch measured was 1.9
# bounds in bfloat16: half a bound sits with a margin of about 4x on both sides.
_ORDER = 0.5


@dataclass(frozen=True)
class Features:
    """What a model is built with beyond the notes (ModelSpec's fields of the same names)."""

    n_kv_heads: int | None = None
    window: int | None = None
    relative_positions: bool = False


@dataclass(frozen=True)
class ModelCase:
    """A tiny model's shape and weight seed; Hypothesis shrinks it like a TokenCase."""

    d_model: int
    n_heads: int
    n_layers: int
    seed: int
    features: Features = Features()

    def build(
        self,
        ctx: Context,
        kind: ModelKind,
        *,
        positional: bool = True,
        dtype: torch.dtype | None = None,
    ) -> Model:
        factory = ctx.target.model
        assert factory is not None
        dtype = ctx.dtype if dtype is None else dtype
        fixed = ctx.target.model_fixed
        if fixed is not None:
            assert positional and kind == fixed.kind, "guarded by the property's needs"
            assert self.features == Features(), "a fixed model is built as it is"
            return factory(fixed.spec(dtype, ctx.device))
        ratio = ctx.target.model_d_ff_ratio
        spec = ModelSpec(
            kind=kind,
            vocab_size=VOCAB,
            d_model=self.d_model,
            n_heads=self.n_heads,
            d_ff=(2 if ratio is None else ratio) * self.d_model,
            n_layers=self.n_layers,
            max_len=MAX_LEN,
            positional=positional,
            dtype=dtype,
            device=ctx.device,
            seed=self.seed,
            n_kv_heads=self.features.n_kv_heads,
            window=self.features.window,
            relative_positions=self.features.relative_positions,
        )
        return factory(spec)


def model_cases(ctx: Context) -> st.SearchStrategy[ModelCase]:
    """Tiny model shapes and seeds; for a fixed model, its own shape (and seed 0) alone, so
    that a counterexample shows the model that was checked."""
    fixed = ctx.target.model_fixed
    if fixed is not None:
        return st.just(ModelCase(fixed.d_model, fixed.n_heads, fixed.n_layers, seed=0))
    return st.builds(
        ModelCase,
        d_model=st.sampled_from((16, 32)),
        n_heads=st.sampled_from((2, 4)),
        n_layers=st.integers(1, 2),
        seed=st.integers(0, 2**16),
    )


# The sizes a property's set-up probe tries, in order, until the target builds one: a
# library that takes only some sizes (heads a multiple of 4) is probed at one it takes.
_PROBES = (
    ModelCase(d_model=16, n_heads=2, n_layers=1, seed=0),
    ModelCase(d_model=32, n_heads=4, n_layers=2, seed=0),
)


def probe_model(ctx: Context, kind: ModelKind) -> Model:
    """A tiny model of `kind` to see what the target offers, before any example is drawn;
    NotApplicable, with the target's reason, when it refuses every probe size."""
    refusals = []
    for case in _PROBES:
        try:
            return case.build(ctx, kind)
        except Unsupported as err:
            if err.always:
                raise NotApplicable(f"the target refuses every model: {err}") from None
            refusals.append(str(err))
    raise NotApplicable(f"the target refuses the probe models it is set up with: {refusals[-1]}")


def vocab_size(ctx: Context) -> int:
    """The vocabulary of the models the target builds: the fixed model's, or VOCAB."""
    fixed = ctx.target.model_fixed
    return VOCAB if fixed is None else fixed.vocab_size


def max_len(ctx: Context) -> int:
    """The longest sequence the target's models take: the fixed model's, or MAX_LEN."""
    fixed = ctx.target.model_fixed
    return MAX_LEN if fixed is None else fixed.max_len


def pad_id(model: Model) -> int | None:
    """The model's <PAD> id, or None when it declares none (a model without padding)."""
    pad: int | None = getattr(model, "pad_id", None)
    return pad


def need_pad_id(ctx: Context, kind: ModelKind) -> None:
    """NotApplicable unless the target's model (probed once) declares a <PAD> id."""
    probe = probe_model(ctx, kind)
    if pad_id(probe) is None:
        raise NotApplicable("the target's model declares no pad_id (it has no padding)")


def _tokens(ctx: Context, case: TokenCase) -> Tensor:
    return case.tokens(vocab_size(ctx), FIRST_REAL, ctx.device)


def _source(ctx: Context, case: TokenCase, length: int) -> Tensor:
    """A source for the same batch, from its own seed."""
    return _tokens(ctx, TokenCase(case.batch, length, case.seed + 1))


def _other_ids(ctx: Context, tokens: Tensor) -> Tensor:
    """Every id replaced by a different real id: a large change."""
    n = vocab_size(ctx) - FIRST_REAL
    return (tokens - FIRST_REAL + n // 2) % n + FIRST_REAL


def _logits(model: Model, kind: ModelKind, tokens: Tensor, src: Tensor | None = None) -> Tensor:
    return model.logits(tokens, src if kind == "encoder_decoder" else None)


def _must_change(
    ctx: Context, before: Tensor, after: Tensor, what: str, factor: float = _DEPENDS
) -> None:
    """`after` differs from `before` by more than `factor` invariance bounds."""
    bound = factor * relative_bound(ctx.tolerance.invariance, before, after)
    change = max_abs(after.double() - before.double())
    if not change > bound:
        raise AssertionError(f"{what}: changed by at most {change:.3g}, not more than {bound:.3g}")


def _must_differ(ctx: Context, before: Tensor, after: Tensor, what: str) -> None:
    """In float64, `after` differs from `before` at all. A deterministic target that ignores
    what was changed repeats its logits bit for bit: the same operations on the same operands
    (a masked or ignored position adds an exact zero). So any difference proves the
    dependency, however small: an nn.TransformerEncoder with nn.Embedding's N(0, 1) table
    scaled by sqrt(d_model) saturates its softmax, and replacing one token moved an earlier
    logit by 1.67e-13, under the 1.17e-11 invariance bound. A target that declares itself
    nondeterministic could fake a difference with its own run-to-run noise, so for it the
    invariance bound applies."""
    if not ctx.target.conventions.deterministic:
        _must_change(ctx, before, after, what)
    elif torch.equal(before, after):
        raise AssertionError(f"{what}: unchanged, bit for bit")


# Below float64, a dependency counts only where the float64 build of the same model moves the
# logits by this many invariance bounds of the cell: a smaller change may round away.
_VISIBLE = 2.0
Pairs = Callable[[Model], list[tuple[str, Tensor, Tensor]]]


def _depends(
    ctx: Context,
    mc: ModelCase,
    kind: ModelKind,
    pairs: Pairs,
    positional: bool = True,
    *,
    reordered: bool = False,
) -> None:
    """Each (what, before, after) of `pairs(model)` must differ: the logits depend on what
    was changed. This is decided in float64 (see `_must_differ`), on the float64 build of the
    same model when the cell is below float64. The cell's own build must then show each
    change that float64 puts above the cell's resolution. (With Hugging Face's std-0.02
    initialisation the influence of one position on another in a tiny model is often below
    a bfloat16 ulp: 0.000977 against a 0.003 bound; an nn.TransformerEncoder drawn at seed
    4179 moved a logit by 1.2e-7 in float32, one ulp, against a 2.4e-6 bound.)

    `reordered`: the change reorders the inputs (a rotation of the tokens), so even a model
    that ignores order repeats its logits only up to rounding: float64 must then move them
    by more than _ORDER of its invariance bound, and the cell's build by _ORDER of its own
    where float64 puts the change above the cell's resolution. (A rotary-only encoder at
    Hugging Face's initialisation moves its logits by about 1e-6: far above float64's
    rounding, below float32's bound.)"""
    factor = _ORDER if reordered else _DEPENDS

    def judge(exact: Context, before: Tensor, after: Tensor, what: str) -> None:
        if reordered:
            _must_change(exact, before, after, what, factor)
        else:
            _must_differ(exact, before, after, what)

    if ctx.dtype == torch.float64:
        for what, before, after in pairs(mc.build(ctx, kind, positional=positional)):
            judge(ctx, before, after, what)
        return
    visible = []
    if "float64" in ctx.target.conventions.dtypes:
        exact = replace(
            ctx, dtype=torch.float64, tolerance=tolerance_for(torch.float64, ctx.device)
        )
        for what, before, after in pairs(
            mc.build(ctx, kind, positional=positional, dtype=torch.float64)
        ):
            judge(exact, before, after, f"{what} (float64 build)")
            bound = relative_bound(ctx.tolerance.invariance, before, after)
            visible.append(max_abs(after - before) > _VISIBLE * bound)
    for i, (what, before, after) in enumerate(pairs(mc.build(ctx, kind, positional=positional))):
        if i >= len(visible) or visible[i]:
            _must_change(ctx, before, after, what, factor)


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
