"""The guard around every call the harness makes into a target: a faulty target is diagnosed,
never trusted, and the run goes on with the next property.

Each call is checked for:
- global torch state left changed (default dtype, grad mode, deterministic-algorithms flag,
  TF32 flags, float32 matmul precision, the global and CUDA RNG): restored, then reported
  (the RNG is not reported for factories, nor for targets declared nondeterministic);
- input tensors modified in place;
- a result of the wrong type, shape, dtype or device, or non-finite values from finite
  inputs (allowed only where the target declares NaN, or leaves unspecified, what a fully
  masked row returns, and a mask or the causal flag is passed);
- a hang: each call has a time limit (a SIGALRM timer, so it ends Python code and
  interruptible waits; a C kernel that never returns is out of its reach);
- running out of GPU memory: the property stops, the memory is released, the run goes on;
- nondeterminism: the first calls of each pure method are made twice and must agree bit
  for bit, unless the target declares `Conventions(deterministic=False)`.
"""

import contextlib
import functools
import math
import signal
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import Tensor
from transformer_spec.properties.harness.call_values import (
    Spec,
    _arguments,
    _contiguous,
    _device,
    _finer_end,
    _first_difference,
    _leading_padding,
    _on,
    _over,
    _same_tensor,
    _tensors,
    _to_cpu,
    _want_shape,
)
from transformer_spec.properties.harness.global_state import Snapshot as Snapshot
from transformer_spec.properties.harness.global_state import release_memory as release_memory
from transformer_spec.properties.harness.profiles import (
    DEFAULT_CALL_TIMEOUT as DEFAULT_CALL_TIMEOUT,
)
from transformer_spec.properties.harness.registry import MissingMethod
from transformer_spec.properties.targets.contracts import CONTRACTS
from transformer_spec.properties.targets.conventions import Conventions
from transformer_spec.properties.targets.protocols import Target


class TargetFault(AssertionError):
    """A fault of the target found by the guard: a property failure, shrunk like any other.
    `kind` names it in the JSON report (e.g. "state", "mutation", "output")."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class StopProperty(BaseException):
    """A fault after which the property stops at once, without shrinking (a hang, out of GPU
    memory, nondeterminism). A BaseException, so that neither Hypothesis nor the target's
    own `except Exception` swallows it."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class _CallTimeout(BaseException):
    pass


# What each method returns, and which are made twice to check determinism: the contract
# table beside the Protocols (targets.CONTRACTS).
_RETURNS = {what: c.returns for what, c in CONTRACTS.items() if c.returns is not None}
_PURE = {what for what, c in CONTRACTS.items() if c.pure}


@dataclass
class Recorded:
    """One call, kept (on the CPU) for the pictures of a failing example."""

    what: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    result: Any


_RECORD = tuple(what for what, c in CONTRACTS.items() if c.recorded)


@dataclass
class Guard:
    conventions: Conventions
    call_timeout: float = DEFAULT_CALL_TIMEOUT  # seconds; 0 turns the limit off
    repeats: int = 2  # calls of each pure method made twice, per property
    # The attention and positional-table calls of the current example (the runner clears
    # it as each example starts, so after a failure it holds the failing example's calls).
    recorded: list[Recorded] = field(default_factory=list)
    _repeated: Counter[str] = field(default_factory=Counter)

    def wrap(self, target: Target) -> Target:
        """The same target with every level reached through the guard."""

        def factory(level: str, make: Callable[..., Any] | None) -> Callable[..., Any] | None:
            if make is None:
                return None

            def build(*args: Any) -> Any:
                spec = args[0] if args else None
                built = self._invoke(f"{level} factory", make, args, {}, _device(spec), True)
                return _Proxy(built, self, level, spec)

            return build

        attention = target.attention
        return replace(
            target,
            attention=None if attention is None else _Proxy(attention, self, "attention", None),
            mha=factory("mha", target.mha),
            model=factory("model", target.model),
            components=factory("components", target.components),
            layers=factory("layer", target.layers),
            vocabulary=factory("vocabulary", target.vocabulary),
        )

    def call(
        self,
        what: str,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        spec: Spec | None,
        owner: object = None,
    ) -> Any:
        """`fn(*args, **kwargs)` checked; `owner`: the object whose method `fn` is."""
        if what.startswith("model."):  # token ids as real callers pass them (a model may .view)
            args = tuple(_contiguous(a) for a in args)
            kwargs = {k: _contiguous(v) for k, v in kwargs.items()}
        inputs = _arguments(args, kwargs)
        device = inputs[0][1].device if inputs else _device(spec)
        copies = [t.detach().clone() for _, t in inputs]
        result = self._invoke(what, fn, args, kwargs, device, False)
        if what in _RECORD:
            self.recorded.append(Recorded(what, _to_cpu(args), _to_cpu(kwargs), _to_cpu(result)))
        for (label, now), before in zip(inputs, copies, strict=True):
            if not _same_tensor(before, now.detach()):
                raise TargetFault(
                    "mutation",
                    f"{what} modified its input ({label}, shape {tuple(before.shape)}) in place: "
                    f"{_first_difference(before, now.detach())}",
                )
        if what in _RETURNS or what == "attention":
            polarity = self.conventions.mask_polarity
            unspecified = _leading_padding(what, owner, args, kwargs, spec, polarity)
            self._check_result(what, result, inputs, args, kwargs, spec, unspecified)
        if what in _PURE and self.conventions.deterministic and self._repeated[what] < self.repeats:
            self._repeated[what] += 1
            again = self._invoke(what, fn, args, kwargs, device, False)
            self._check_same(what, result, again, inputs)
        return result

    def _invoke(
        self,
        what: str,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        device: torch.device,
        factory: bool,
    ) -> Any:
        """The call itself, under the time limit, with global state restored afterwards. A
        factory may seed the global RNG from spec.seed to draw its weights: restored, not a
        fault."""
        snapshot = Snapshot.take(device)
        out_of_memory = ""
        try:
            with self._time_limit():
                result = fn(*args, **kwargs)
        except _CallTimeout:
            snapshot.restore()
            raise StopProperty(
                "hang",
                f"{what} did not return within {self.call_timeout:g} s (the per-call time "
                "limit, --call-timeout); the property was stopped",
            ) from None
        except torch.OutOfMemoryError as err:
            out_of_memory = str(err).strip().splitlines()[0] if str(err).strip() else "OOM"
        except SystemExit as err:
            snapshot.restore()
            raise TargetFault("raised", f"{what} called sys.exit({err.code!r})") from None
        except AssertionError as err:
            snapshot.restore()
            if isinstance(err, TargetFault):
                raise
            # the target's own assert: a fault of the target, not a property's comparison
            raise TargetFault("raised", f"the target raised AssertionError: {err}") from err
        except BaseException:
            snapshot.restore()
            raise
        if out_of_memory:  # outside the except block, so the traceback's tensors are freed
            snapshot.restore()
            release_memory()
            raise StopProperty(
                "out_of_memory",
                f"{what} ran out of memory ({out_of_memory}); the harness released the cached "
                "memory and goes on with the next property",
            )
        changes = snapshot.restore()
        if factory or not self.conventions.deterministic:
            # A factory may seed the RNG to draw its weights, and a target declared
            # nondeterministic may draw from it on any call (dropout): restored, not a fault.
            changes = [c for c in changes if "RNG state" not in c]
        if changes:
            raise TargetFault(
                "state",
                f"{what} changed {'; '.join(changes)} and did not restore it; the harness "
                "restored it",
            )
        return result

    @contextlib.contextmanager
    def _time_limit(self) -> Iterator[None]:
        usable = (
            hasattr(signal, "SIGALRM") and threading.current_thread() is threading.main_thread()
        )
        if self.call_timeout <= 0 or not usable:
            yield
            return

        def expire(signum: int, frame: object) -> None:
            raise _CallTimeout

        previous = signal.signal(signal.SIGALRM, expire)
        signal.setitimer(signal.ITIMER_REAL, self.call_timeout)
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)

    def _check_result(
        self,
        what: str,
        result: object,
        inputs: list[tuple[str, Tensor]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        spec: Spec | None,
        unspecified: Tensor | None = None,
    ) -> None:
        allowed = _RETURNS.get(what, (tuple,))
        if not isinstance(result, allowed):
            names = " or ".join("None" if t is type(None) else t.__name__ for t in allowed)
            raise TargetFault(
                "output", f"{what} returned {type(result).__name__}, expected {names}"
            )
        if isinstance(result, tuple) and not (
            len(result) == 2
            and isinstance(result[0], Tensor)
            and isinstance(result[1], Tensor | type(None))
        ):
            kinds = ", ".join(type(r).__name__ for r in result)
            raise TargetFault(
                "output", f"{what} returned ({kinds}), expected (Tensor, Tensor or None)"
            )
        first = inputs[0][1] if inputs else None
        want = _want_shape(what, first, args, spec)
        out = result[0] if isinstance(result, tuple) else result
        if isinstance(out, Tensor) and want is not None and tuple(out.shape) != want:
            raise TargetFault(
                "output", f"{what} returned shape {tuple(out.shape)}, expected {want}"
            )
        floating = [t for _, t in inputs if t.is_floating_point()]
        dtype = getattr(spec, "dtype", None) or (floating[0].dtype if floating else None)
        device = getattr(spec, "device", None) or (first.device if first is not None else None)
        for label, t in _tensors(result, "result"):
            if not t.is_floating_point():
                continue
            if dtype is not None and t.dtype != dtype and not _finer_end(what, t.dtype, dtype):
                raise TargetFault(
                    "output", f"{what} returned {label} of dtype {t.dtype}, expected {dtype}"
                )
            if device is not None and not _on(t.device, device):
                raise TargetFault(
                    "output", f"{what} returned {label} on {t.device}, expected {device}"
                )
        self._check_finite(what, result, inputs, kwargs, unspecified)

    def _check_finite(
        self,
        what: str,
        result: object,
        inputs: list[tuple[str, Tensor]],
        kwargs: dict[str, Any],
        unspecified: Tensor | None = None,
    ) -> None:
        """No NaN or inf in the result from finite inputs, except in a row that loses every
        key to a mask under a NaN policy, or at the positions (b, t) that `unspecified`
        marks."""
        if not all(bool(torch.isfinite(t).all()) for _, t in inputs if t.is_floating_point()):
            return  # the property passed non-finite values on purpose
        # A row can lose every key to a mask, to the causal flag (bottom-right alignment with
        # more queries than keys), or to both; NaN is then the declared answer.
        masked = any(t.dtype == torch.bool for _, t in inputs) or kwargs.get("causal") is True
        if masked and self.conventions.fully_masked_row in ("nan", "unspecified"):
            return
        for label, t in _tensors(result, "result"):
            if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                bad = ~torch.isfinite(t.detach())
                spared = _over(unspecified, t)
                if spared is not None:  # left padding: only what reached real positions counts
                    bad &= ~spared
                    if not bool(bad.any()):
                        continue
                index = tuple(int(i) for i in bad.nonzero()[0])
                where = "" if spared is None else ", a real position after the left padding"
                raise TargetFault(
                    "non_finite",
                    f"{what} returned {int(bad.sum())} non-finite value(s) in {label} from "
                    f"finite inputs, the first {t[index].item()} at {index}{where}",
                )

    def _check_same(
        self, what: str, first: object, second: object, inputs: list[tuple[str, Tensor]]
    ) -> None:
        a, b = list(_tensors(first, "result")), list(_tensors(second, "result"))
        for (label, x), (_, y) in zip(a, b, strict=False):
            if _same_tensor(x.detach(), y.detach()):
                continue
            diff = (x.detach().double() - y.detach().double()).abs().nan_to_num(math.inf)
            shapes = ", ".join(f"{name} {tuple(t.shape)}" for name, t in inputs)
            raise StopProperty(
                "nondeterministic",
                f"{what} is not deterministic: two identical calls in a row gave {label} "
                f"differing by up to {float(diff.max()):.3g} (inputs: {shapes}); a target "
                "that is meant to vary declares Conventions(deterministic=False)",
            )
        if len(a) != len(b):
            raise StopProperty(
                "nondeterministic", f"{what} returned different structures for identical calls"
            )


class _Proxy:
    """A target's object seen through the guard: calls go through `Guard.call`, plain
    attributes (pad_id, positional_layout, ...) pass through; `__wrapped__` is the object."""

    def __init__(self, wrapped: Any, guard: Guard, level: str, spec: Spec | None) -> None:
        object.__setattr__(self, "__wrapped__", wrapped)
        object.__setattr__(self, "_guard", guard)
        object.__setattr__(self, "_level", level)
        object.__setattr__(self, "_spec", spec)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._guard.call(self._level, self.__wrapped__, args, kwargs, spec=self._spec)

    def __getattr__(self, name: str) -> Any:
        try:
            value = getattr(self.__wrapped__, name)
        except AttributeError:
            if f"{self._level}.{name}" in CONTRACTS:  # a Protocol method the target lacks
                raise MissingMethod(f"the target has no {name}()") from None
            raise
        if not callable(value) or isinstance(value, type | Tensor | torch.nn.Module):
            return value
        call = functools.partial(
            self._guard.call,
            f"{self._level}.{name}",
            value,
            spec=self._spec,
            owner=self.__wrapped__,
        )
        return lambda *args, **kwargs: call(args, kwargs)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.__wrapped__, name, value)


def unwrap(obj: Any) -> Any:
    """The target's own object behind a guard proxy."""
    return getattr(obj, "__wrapped__", obj)
