"""The tiny models and token inputs of the whole-model properties (model, model_dependence,
beyond_model, generation, training), and the judges of "the logits depend on this input".

Models are tiny (vocabulary 24, d_model 16 or 32, 2 or 4 heads, 1 or 2 layers per stack,
max_len 16) and built per example from a drawn seed, so a failure shrinks to a small model
and a short sequence. Token ids are real tokens (>= 4, not special). A target with a fixed
model (`Target.model_fixed`) is checked on that one model, with inputs drawn within its
vocabulary and context length.
"""

from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
from hypothesis import strategies as st
from torch import Tensor
from transformer_spec.properties.harness.compare import max_abs, relative_bound
from transformer_spec.properties.harness.registry import Context, NotApplicable
from transformer_spec.properties.harness.strategies import TokenCase
from transformer_spec.properties.harness.tolerance import tolerance_for
from transformer_spec.properties.targets.protocols import (
    Model,
    ModelKind,
    ModelSpec,
    Unsupported,
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
