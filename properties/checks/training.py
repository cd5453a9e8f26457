"""Training through the model's own loss (spec TRAIN-CROSS-ENTROPY, TRAIN-PAD-IGNORED,
TRAIN-END-TO-END, TRAIN-FINE-TUNE).

Token sequences start with <START> and are right-padded with <PAD> per item (each item
keeps at least one label). The harness's cross-entropy is computed in float64 from the
model's own logits, so only the loss's arithmetic is compared, not the model's rounding.
"""

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import Tensor
from transformer_spec.properties.checks.generation import generative_kinds
from transformer_spec.properties.checks.model import (
    ModelCase,
    _logits,
    _source,
    _tokens,
    model_cases,
    need_pad_id,
    pad_id,
    vocab_size,
)
from transformer_spec.properties.harness.compare import check_close, relative_bound
from transformer_spec.properties.harness.registry import Check, Context, NotApplicable, prop
from transformer_spec.properties.harness.strategies import TokenCase, token_cases
from transformer_spec.properties.targets.protocols import ModelKind, TrainableModel

# One SGD step moves each row's entry with the largest gradient by this many spacings of
# the dtype at the row's largest value: it shows in every dtype, and stays a small step.
_SPACINGS = 4.0
# Finite-difference steps along a unit direction, in float64, tried in this order until one
# agrees. The smallest rarely crosses a ReLU kink (a crossing at 1e-4 gave a 0.6% mismatch
# on the reference), and float64 rounding is negligible there. The larger ones are for a
# float64 build that computes part of its loss in float32: at a small step its points share
# their float32 rounding, and what rounding shows is divided by the step. Measured on such
# targets (float32 softmax, LayerNorm statistics or cross-entropy), the fitted slope's
# standard error was up to 2.2x the derivative at 1e-6, 2.7% at 1e-4 and 0.3% at 1e-3 (4%
# for the cross-entropy). A step of 1e-2 crosses several ReLU kinks.
_STEPS = (1e-6, 1e-4, 1e-3)
# Standard errors of the fitted slope allowed for the loss's rounding: correct targets
# measured up to 6, a cut path 400 and more at steps from 1e-4 (7.5 and more at 1e-6).
_SIGMAS = 10.0
# A step whose rounding allows a discrepancy above this share of the derivative's size
# cannot decide.
_UNDECIDED = 0.02
# In float64 arithmetic the central difference at the smallest step agrees with backprop
# to 4e-8 of the derivative's size on the reference: agreement this close settles it at
# once, and noisier rounding cannot fake it (at 1e-3 of the size, a float32 softmax's noise
# did, once in 300).
_EXACT = 1e-6


def _padded(
    ctx: Context, model: TrainableModel, case: TokenCase, data: st.DataObject, min_kept: int
) -> Tensor:
    """<START> (when the model names one) + tokens, each item right-padded after n >=
    min_kept >= 2 tokens, so that it has at least min_kept - 1 labels (not padded when the
    model declares no <PAD>)."""
    tokens = _tokens(ctx, case)
    start_id = getattr(model, "start_id", None)
    if start_id is not None:
        start = torch.full((case.batch, 1), start_id, dtype=torch.long, device=ctx.device)
        tokens = torch.cat([start, tokens], dim=1)
    pad = pad_id(model)
    if pad is None:
        return tokens
    kept = data.draw(
        st.lists(st.integers(min_kept, tokens.shape[1]), min_size=case.batch, max_size=case.batch),
        label="kept",
    )
    padded = (
        torch.arange(tokens.shape[1], device=ctx.device)[None, :]
        >= torch.tensor(kept, device=ctx.device)[:, None]
    )
    return tokens.masked_fill(padded, pad)


def _loss(model: TrainableModel, tokens: Tensor, src: Tensor | None) -> Tensor:
    out = model.loss(tokens, src)
    if not (isinstance(out, Tensor) and out.dim() == 0 and out.is_floating_point()):
        got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise AssertionError(f"loss returned {got}, expected a floating-point scalar")
    return out


def _cross_entropy64(logits: Tensor, labels: Tensor, pad: int | None) -> Tensor:
    """Mean over non-<PAD> labels of -log softmax(logits)[label], in float64."""
    logp = torch.log_softmax(logits.double(), dim=-1)
    picked = logp.gather(-1, labels[..., None])[..., 0]
    scored = labels != pad if pad is not None else torch.ones_like(labels, dtype=torch.bool)
    return -(picked * scored).sum() / scored.sum()


def _setup(
    ctx: Context,
    mc: ModelCase,
    case: TokenCase,
    data: st.DataObject,
    kinds: list[ModelKind],
    min_kept: int = 2,
) -> tuple[ModelKind, TrainableModel, Tensor, Tensor | None]:
    kind = data.draw(st.sampled_from(kinds), label="kind")
    model: TrainableModel = mc.build(ctx, kind)  # type: ignore[assignment]
    src = _source(ctx, case, case.length) if kind == "encoder_decoder" else None
    return kind, model, _padded(ctx, model, case, data, min_kept), src


@prop("training.loss_is_cross_entropy", clauses=("TRAIN-CROSS-ENTROPY",), needs=("model",))
def loss_is_cross_entropy(ctx: Context) -> Check:
    """loss(tokens) equals the mean over non-<PAD> labels of -log p(tokens[t + 1]) under the
    logits at position t, computed in float64 from the model's logits of tokens[:, :-1]."""
    kinds = _own_loss_kinds(ctx)

    @given(model_cases(ctx), token_cases(), st.data())
    def check(mc: ModelCase, case: TokenCase, data: st.DataObject) -> None:
        kind, model, tokens, src = _setup(ctx, mc, case, data, kinds)
        got = _loss(model, tokens, src).detach()
        logits = _logits(model, kind, tokens[:, :-1], src)
        want = _cross_entropy64(logits, tokens[:, 1:], pad_id(model))
        bound = relative_bound(ctx.tolerance.invariance, want)
        check_close(got, want, bound, f"{kind} loss vs cross-entropy of its logits", tokens)

    return check


@prop("training.pad_ignored", clauses=("TRAIN-PAD-IGNORED",), needs=("model",))
def pad_ignored(ctx: Context) -> Check:
    """Appending <PAD> columns leaves the loss unchanged (padded labels add nothing, and
    the mean is over non-<PAD> labels only)."""
    kinds = _own_loss_kinds(ctx, padding=True)

    @given(model_cases(ctx), token_cases(max_len=6), st.data())
    def check(mc: ModelCase, case: TokenCase, data: st.DataObject) -> None:
        kind, model, tokens, src = _setup(ctx, mc, case, data, kinds)
        extra = data.draw(st.integers(1, 4), label="extra_pad")
        pad = pad_id(model)
        assert pad is not None, "guarded by _own_loss_kinds(ctx, padding=True)"
        padding = torch.full((case.batch, extra), pad, device=ctx.device)
        a = _loss(model, tokens, src).detach()
        b = _loss(model, torch.cat([tokens, padding], dim=1), src).detach()
        bound = relative_bound(ctx.tolerance.invariance, a)
        check_close(b, a, bound, f"{kind} loss after appending {extra} <PAD> columns", tokens)

    return check


def _own_loss_kinds(ctx: Context, *, padding: bool = False) -> list[ModelKind]:
    """generative_kinds for a property of the loss itself: NotApplicable when the loss is
    the harness's own cross-entropy (an adapter's `harness_loss`), which it cannot test, or
    with `padding`, when the model declares no <PAD>."""
    kinds = generative_kinds(ctx, "loss")
    if padding:
        need_pad_id(ctx, kinds[0])
    probe = ModelCase(d_model=16, n_heads=2, n_layers=1, seed=0).build(ctx, kinds[0])
    if getattr(probe, "harness_loss", False):
        raise NotApplicable(
            "the target's module computes no loss: the harness's own cross-entropy stands in "
            "(declare loss= or targets_kwarg to check the module's)"
        )
    return kinds


def _scored_inputs(tokens: Tensor, pad: int | None) -> Tensor:
    """The ids fed in at positions whose label is scored (not <PAD>): their embedding rows
    reach the loss. (An input whose label is <PAD>, under right padding, reaches only
    unscored positions.)"""
    inputs, labels = tokens[:, :-1], tokens[:, 1:]
    ids: Tensor = torch.unique(inputs if pad is None else inputs[labels != pad])
    return ids


def _named(model: TrainableModel) -> dict[str, Tensor]:
    params = dict(model.parameters())
    if not params:
        raise AssertionError("parameters() returned nothing")
    return params


@prop("training.end_to_end_gradients", clauses=("TRAIN-END-TO-END",), needs=("model",))
def end_to_end_gradients(ctx: Context) -> Check:
    """One backward pass from the loss reaches every parameter; every weight matrix gets a
    non-zero gradient, and so does the embedding row of every input token that is scored.
    Items keep at least two labels: with one, self-attention sees one key, and W_Q and W_K
    rightly get no gradient.

    Biases need only be reached: the key projection's bias has zero gradient in exact
    arithmetic (adding a constant to every score of a row leaves its softmax unchanged)."""
    kinds = generative_kinds(ctx, "loss", "parameters", "embedding_parameter")

    @given(model_cases(ctx), token_cases(min_len=3), st.data())
    def check(mc: ModelCase, case: TokenCase, data: st.DataObject) -> None:
        kind, model, tokens, src = _setup(ctx, mc, case, data, kinds, min_kept=3)
        params = _named(model)
        for name, p in params.items():
            if not p.requires_grad:
                raise AssertionError(f"{kind}: parameter {name} does not require grad")
            p.grad = None
        _loss(model, tokens, src).backward()  # type: ignore[no-untyped-call]
        for name, p in params.items():
            if p.grad is None:
                raise AssertionError(f"{kind}: no gradient reached parameter {name}")
        zero = [n for n, p in params.items() if p.dim() >= 2 and not bool(p.grad.ne(0).any())]  # type: ignore[union-attr]
        if zero:
            _zero_gradients_underflow(ctx, mc, kind, tokens, src, zero)
        if "float64" in ctx.target.conventions.dtypes:
            _gradient_is_derivative(ctx, mc, kind, tokens, src)
        grad = model.embedding_parameter().grad
        used = _scored_inputs(tokens, pad_id(model))
        if grad is None or not bool(grad[used].ne(0).any(dim=-1).all()):
            raise AssertionError(
                f"{kind}: embedding rows of input tokens {used.tolist()} did not all get a "
                "non-zero gradient"
            )

    return check


def _zero_gradients_underflow(
    ctx: Context,
    mc: ModelCase,
    kind: ModelKind,
    tokens: Tensor,
    src: Tensor | None,
    zero: list[str],
) -> None:
    """Weight matrices with an all-zero gradient fail, unless the cell is 16-bit and the
    float64 build of the same model gives each a non-zero gradient below the dtype's smallest
    normal number: the 16-bit backward pass flushed it to zero (why float16 training needs
    loss scaling). Hugging Face's std-0.02 initialisation makes a tiny BART's key-projection
    gradient about that small. A cut path gives zero or None in float64 as well."""
    if ctx.dtype.itemsize > 2 or "float64" not in ctx.target.conventions.dtypes:
        raise AssertionError(f"{kind}: parameter {zero[0]} got an all-zero gradient")
    tiny = torch.finfo(ctx.dtype).tiny
    exact: TrainableModel = mc.build(ctx, kind, dtype=torch.float64)  # type: ignore[assignment]
    params = _named(exact)
    _loss(exact, tokens, src).backward()  # type: ignore[no-untyped-call]
    for name in zero:
        grad = params[name].grad
        largest = 0.0 if grad is None else float(grad.abs().max())
        if not 0.0 < largest < tiny:
            raise AssertionError(
                f"{kind}: parameter {name} got an all-zero gradient in {ctx.dtype_name}, and "
                f"{largest:.3g} at most in float64 (not a {ctx.dtype_name} underflow: that "
                f"needs a non-zero float64 gradient below {tiny:.3g})"
            )


@dataclass(frozen=True)
class _Fit:
    """The loss along one direction at 7 points evenly spaced in [-step, step], fitted by
    a + slope * s + c * s^2: `slope` is the finite difference, `noise` the scatter of the
    loss about the fit (its rounding), in the loss's units. `variation` is half the change
    of backprop's derivative from one end of the window to the other: a finite difference
    is the derivative averaged over the window, and can differ by that much from its value
    at the centre (a ReLU crossing zero near the centre made it 5% off in one case)."""

    step: float
    slope: float
    noise: float
    variation: float

    def spread(self, noise: float) -> float:
        """The slope's standard error when the loss scatters by `noise` about the fit."""
        return noise / (self.step * _SPREAD)


# Σ (s / step)^2 over the 7 points, square-rooted: the fitted slope's standard error is
# noise / (step * _SPREAD).
_SPREAD = math.sqrt(sum((j / 3) ** 2 for j in range(-3, 4)))


@contextlib.contextmanager
def _moved(model: TrainableModel, dirs: dict[str, Tensor]) -> Iterator[Callable[[float], None]]:
    """move(s) puts the parameters at start + s * dirs; they are back at start after."""
    params = model.parameters()
    start = {n: params[n].detach().clone() for n in dirs}

    def move(s: float) -> None:
        with torch.no_grad():
            for n, d in dirs.items():
                params[n].copy_(start[n] + s * d)

    try:
        yield move
    finally:
        move(0.0)


def _losses(
    model: TrainableModel,
    tokens: Tensor,
    src: Tensor | None,
    dirs: dict[str, Tensor],
    offsets: list[float],
) -> list[float]:
    """The loss with the parameters moved by s * dirs, for each s of `offsets`."""
    values = []
    with _moved(model, dirs) as move, torch.no_grad():
        for s in offsets:
            move(s)
            values.append(float(_loss(model, tokens, src)))
    return values


def _central(
    model: TrainableModel, tokens: Tensor, src: Tensor | None, dirs: dict[str, Tensor], step: float
) -> float:
    plus, minus = _losses(model, tokens, src, dirs, [step, -step])
    return (plus - minus) / (2 * step)


def _fit(
    model: TrainableModel,
    tokens: Tensor,
    src: Tensor | None,
    dirs: dict[str, Tensor],
    step: float,
) -> _Fit:
    offsets = [step * j / 3 for j in range(-3, 4)]
    values = _losses(model, tokens, src, dirs, offsets)
    # The points are symmetric about 0, so 1, s and s^2 - mean(s^2) are orthogonal: each
    # coefficient is a projection.
    sq = [s * s for s in offsets]
    mean_sq = sum(sq) / len(sq)
    even = [q - mean_sq for q in sq]
    a = sum(values) / len(values)
    slope = sum(s * v for s, v in zip(offsets, values, strict=True)) / sum(sq)
    c = sum(e * v for e, v in zip(even, values, strict=True)) / sum(e * e for e in even)
    residual = [v - a - slope * s - c * e for s, e, v in zip(offsets, even, values, strict=True)]
    noise = math.sqrt(sum(r * r for r in residual) / (len(values) - 3))
    with _moved(model, dirs) as move:
        move(step)
        right = _backprop(model, tokens, src, dirs)[0]
        move(-step)
        left = _backprop(model, tokens, src, dirs)[0]
    return _Fit(step, slope, noise, abs(right - left) / 2)


def _backprop(
    model: TrainableModel, tokens: Tensor, src: Tensor | None, dirs: dict[str, Tensor]
) -> tuple[float, float]:
    """(backprop's derivative of the loss along `dirs`, the size of a typical one: the
    gradient's norm over the direction's parameters / sqrt(their number))."""
    params = model.parameters()
    for p in params.values():
        p.grad = None
    _loss(model, tokens, src).backward()  # type: ignore[no-untyped-call]
    along, square, count = 0.0, 0.0, 0
    for n, d in dirs.items():
        grad = params[n].grad
        count += d.numel()
        if grad is not None:
            along += float((grad.double() * d).sum())
            square += float((grad.double() ** 2).sum())
    return along, math.sqrt(square / count)


def _gradient_is_derivative(
    ctx: Context, mc: ModelCase, kind: ModelKind, tokens: Tensor, src: Tensor | None
) -> None:
    """In float64, backprop's derivative along a random unit direction equals the finite
    difference: over all parameters, and over the embedding alone. A tensor detached on
    the way (the embedding before the layers, say) still moves the loss but not the
    gradient; a tied un-embedding would otherwise hide a detached input embedding."""
    model: TrainableModel = mc.build(ctx, kind, dtype=torch.float64)  # type: ignore[assignment]
    params = {n: p for n, p in _named(model).items() if p.requires_grad}
    g = torch.Generator().manual_seed(mc.seed)
    every = {
        n: torch.randn(p.shape, generator=g, dtype=torch.float64).to(p.device)
        for n, p in params.items()
    }
    norm = sum(float((d**2).sum()) for d in every.values()) ** 0.5
    every = {n: d / norm for n, d in every.items()}
    m = model.embedding_parameter()
    name = next(n for n, p in params.items() if p is m)
    only_m = {name: every[name] / float(every[name].norm())}
    for what, dirs in (("every parameter", every), ("the embedding", only_m)):
        _derivative_agrees(
            ctx, model, tokens, src, dirs, f"{kind} (float64): gradient of the loss over {what}"
        )


def _derivative_agrees(
    ctx: Context,
    model: TrainableModel,
    tokens: Tensor,
    src: Tensor | None,
    dirs: dict[str, Tensor],
    what: str,
) -> None:
    """Backprop's derivative along `dirs` against finite differences at each of _STEPS.

    At a step h a finite difference carries the loss's rounding divided by h, and the
    derivative's change across [-h, h] (a ReLU crossing zero), while a cut path or a wrong
    gradient is off by the same amount at every h. So at each h the slope of a quadratic
    fit to 7 points is compared with backprop, allowing _SIGMAS standard errors of the
    slope (from the scatter about the fit), the change of backprop's derivative across the
    window, and ctx.tolerance.derivative of the derivative's size. A step that agrees
    settles it. A step whose rounding alone allows more than _UNDECIDED of the derivative's
    size cannot decide. The gradient is wrong only when no step agrees and some step
    differs.

    The scatter used at every step is the largest measured at any: rounding belongs to the
    loss, not to the step, and at a small step the 7 points can share their rounding (a
    float32 softmax in a float64 build rounds the scores to the same float32 values), which
    hides the scatter and takes those terms out of the slope.

    Passing when no step can decide is safe for what this is for: a cut path drops a fixed
    share of the derivative at every step, and float32 arithmetic inside a float64 build
    leaves the larger steps decisive. Over random examples like the property's, correct
    targets with a float32 softmax, LayerNorm statistics or cross-entropy in the float64
    build passed all 2000 directions; their twins with the embedding detached were caught
    in 449 of 450 examples (the one missed: a float32 cross-entropy whose rounding swamped
    a cut worth 0.6% of the derivative). Rounding to 16 bits inside a float64 build (the
    catalogue's unembedding-input-in-bfloat16) is another matter: every step stays on one
    rounding plateau, the loss does not move where backprop says it does, and that is
    reported."""
    backprop, typical = _backprop(model, tokens, src, dirs)
    tol = ctx.tolerance.derivative
    central = _central(model, tokens, src, dirs, _STEPS[0])
    if abs(central - backprop) <= _EXACT * max(abs(backprop), abs(central), typical):
        return
    fits: list[_Fit] = []
    for step in _STEPS:
        fit = _fit(model, tokens, src, dirs, step)
        fits.append(fit)
        if _verdict(fit, fit.noise, backprop, typical, tol) == "agrees":
            return
    noise = max(f.noise for f in fits)
    verdicts = [_verdict(f, noise, backprop, typical, tol) for f in fits]
    if "agrees" in verdicts or "differs" not in verdicts:
        return
    where = " that rounding lets decide" if "undecided" in verdicts else ""
    found = ", ".join(
        f"{f.slope:.6g} ± {_SIGMAS * f.spread(noise) + f.variation:.2g} at step {f.step:.0e}"
        + (" (too noisy to decide)" if v == "undecided" else "")
        for f, v in zip(fits, verdicts, strict=True)
    )
    raise AssertionError(
        f"{what} differs from the finite difference at every step size{where}: along a "
        f"random direction backprop gives {backprop:.6g}, finite differences {found} (± "
        f"{_SIGMAS:g} standard errors of the loss's rounding and the derivative's change "
        f"across the step; {tol:.2g} of the derivative allowed besides): some gradient path "
        "is cut (a detach?), the gradient is wrong, or "
        "the float64 build rounds a tensor to 16 bits (its loss then stays flat where "
        "backprop says it moves)"
    )


def _verdict(fit: _Fit, noise: float, backprop: float, typical: float, tol: float) -> str:
    """Whether `fit` "differs" from backprop by more than rounding and tolerance allow;
    if not, whether it "agrees", or is "undecided": its rounding alone would allow more
    than _UNDECIDED of the derivative's size."""
    size = max(abs(backprop), abs(fit.slope), typical)
    rounding = _SIGMAS * fit.spread(noise)
    if abs(fit.slope - backprop) > rounding + fit.variation + tol * size:
        return "differs"
    return "undecided" if rounding > _UNDECIDED * size else "agrees"


def _sgd_step(model: TrainableModel) -> None:
    """One SGD step over the parameters that require grad, with a learning rate per row (of
    a matrix; a vector is one row): the row's entry with the largest gradient moves by
    _SPACINGS spacings of the parameter's dtype at the row's largest value, so every row
    with a non-zero gradient changes, in every dtype (computed in float64, rounded once).

    A rate shared by the whole model, scaled to its largest gradient, left embedding rows
    unchanged: with an untied head initialised like Hugging Face's (std 0.02), an embedding
    row's largest gradient was 0.5% of the head's, so its update was 0.0012 where half a
    bfloat16 spacing near 1 is 0.002."""
    live = [p for p in model.parameters().values() if p.requires_grad and p.grad is not None]
    with torch.no_grad():
        for p in live:
            w = p.double().reshape(-1, p.shape[-1] if p.dim() else 1)
            g = p.grad.double().reshape(w.shape)  # type: ignore[union-attr]
            info = torch.finfo(p.dtype)
            largest = w.abs().amax(dim=-1, keepdim=True).clamp(min=info.tiny)
            spacing = info.eps * torch.exp2(torch.floor(torch.log2(largest)))
            steepest = g.abs().amax(dim=-1, keepdim=True)
            rate = torch.where(steepest > 0, _SPACINGS * spacing / steepest, 0.0)
            p.copy_((w - rate * g).reshape(p.shape).to(p.dtype))


@prop("training.fine_tunes_pretrained_embedding", clauses=("TRAIN-FINE-TUNE",), needs=("model",))
def fine_tunes_pretrained_embedding(ctx: Context) -> Check:
    """After load_pretrained_embedding(M), the embedding equals M; one SGD step changes the
    rows of the tokens in the batch unless freeze was asked, and none of them if it was."""
    methods = ("loss", "parameters", "embedding_parameter", "load_pretrained_embedding")
    kinds = generative_kinds(ctx, *methods)

    @given(model_cases(ctx), token_cases(), st.data())
    def check(mc: ModelCase, case: TokenCase, data: st.DataObject) -> None:
        kind, model, tokens, src = _setup(ctx, mc, case, data, kinds)
        freeze = data.draw(st.booleans(), label="freeze")
        g = torch.Generator().manual_seed(case.seed)
        fixed = ctx.target.model_fixed
        width = mc.d_model if fixed is None else fixed.d_model
        matrix = torch.randn(vocab_size(ctx), width, generator=g, dtype=torch.float64)
        matrix = matrix.to(ctx.device, ctx.dtype)
        model.load_pretrained_embedding(matrix, freeze=freeze)
        check_close(model.embedding_parameter(), matrix, 0.0, f"{kind}: embedding after loading")
        for p in model.parameters().values():
            p.grad = None
        _loss(model, tokens, src).backward()  # type: ignore[no-untyped-call]
        _sgd_step(model)
        rows = _scored_inputs(tokens, pad_id(model))
        after = model.embedding_parameter().detach()
        if freeze and not torch.equal(after, matrix):
            moved = after.ne(matrix).any(dim=-1).nonzero()[:, 0].tolist()
            raise AssertionError(f"{kind}: frozen embedding rows {moved} changed in an SGD step")
        changed = after[rows].ne(matrix[rows]).any(dim=-1)
        if not freeze and not bool(changed.all()):
            grad = model.embedding_parameter().grad
            why = (
                "no gradient reached the embedding: is the pretrained embedding frozen?"
                if grad is None
                else "their largest gradients are "
                + ", ".join(f"{float(x):.3g}" for x in grad[rows[~changed]].abs().amax(dim=-1))
            )
            raise AssertionError(
                f"{kind}: embedding rows {rows[~changed].tolist()} of tokens in the batch did "
                f"not change in an SGD step after load_pretrained_embedding(freeze=False) "
                f"({why})"
            )

    return check
