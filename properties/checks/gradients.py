"""Backprop's derivative of a model's loss against finite differences, in the presence of
rounding (spec TRAIN-END-TO-END): the machinery of `training.end_to_end_gradients`.

A cut gradient path (a detach) or a wrong gradient is off by the same share of the
derivative at every step size; the loss's rounding, divided by the step, and the
derivative's change across the step (a ReLU crossing zero) are not. So the finite
difference is fitted at several steps, and the gradient is wrong only where no step agrees
and some step differs by more than rounding allows.
"""

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor
from transformer_spec.properties.targets.protocols import TrainableModel

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


def loss_value(model: TrainableModel, tokens: Tensor, src: Tensor | None) -> Tensor:
    out = model.loss(tokens, src)
    if not (isinstance(out, Tensor) and out.dim() == 0 and out.is_floating_point()):
        got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise AssertionError(f"loss returned {got}, expected a floating-point scalar")
    return out


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
            values.append(float(loss_value(model, tokens, src)))
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
    loss_value(model, tokens, src).backward()  # type: ignore[no-untyped-call]
    along, square, count = 0.0, 0.0, 0
    for n, d in dirs.items():
        grad = params[n].grad
        count += d.numel()
        if grad is not None:
            along += float((grad.double() * d).sum())
            square += float((grad.double() ** 2).sum())
    return along, math.sqrt(square / count)


def derivative_agrees(
    tol: float,
    model: TrainableModel,
    tokens: Tensor,
    src: Tensor | None,
    dirs: dict[str, Tensor],
    what: str,
    *,
    scale: float = 0.0,
) -> None:
    """Backprop's derivative along `dirs` against finite differences at each of _STEPS.
    `scale`: the least size a derivative is measured against (a typical gradient of the
    whole model, for directions whose own derivative is zero but for backprop's rounding).

    At a step h a finite difference carries the loss's rounding divided by h, and the
    derivative's change across [-h, h] (a ReLU crossing zero), while a cut path or a wrong
    gradient is off by the same amount at every h. So at each h the slope of a quadratic
    fit to 7 points is compared with backprop, allowing _SIGMAS standard errors of the
    slope (from the scatter about the fit), the change of backprop's derivative across the
    window, and `tol` of the derivative's size. A step that agrees
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
    typical = max(typical, scale)
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


def typical_gradient(model: TrainableModel) -> float:
    """The root mean square of every gradient entry the last backward pass left."""
    grads = [p.grad.double() for p in model.parameters().values() if p.grad is not None]
    count = sum(g.numel() for g in grads)
    return math.sqrt(sum(float((g**2).sum()) for g in grads) / count) if count else 0.0


def loss_moves(
    model: TrainableModel, tokens: Tensor, src: Tensor | None, dirs: dict[str, Tensor]
) -> str:
    """How the loss moves along `dirs` beyond its rounding ("" when it does not): some
    step's fitted slope exceeds _SIGMAS standard errors of the largest scatter measured at
    any step. A loss that does not change at all (bit for bit) at the smallest step is taken
    as flat at once: parameters a call never reads leave it so."""
    if _central(model, tokens, src, dirs, _STEPS[0]) == 0.0:
        return ""
    fits = [_fit(model, tokens, src, dirs, step) for step in _STEPS]
    noise = max(f.noise for f in fits)
    for f in fits:
        if abs(f.slope) > _SIGMAS * f.spread(noise):
            return f"slope {f.slope:.3g} ± {_SIGMAS * f.spread(noise):.2g} at step {f.step:.0e}"
    return ""
