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
import gc
import math
import signal
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from numbers import Integral
from typing import Any

import torch
from torch import Tensor
from transformer_spec.properties.harness.registry import MissingMethod
from transformer_spec.properties.targets.protocols import (
    CONTRACTS,
    ComponentSpec,
    Conventions,
    LayerSpec,
    MHASpec,
    ModelSpec,
    Target,
    pads_left,
)

Spec = MHASpec | ModelSpec | LayerSpec | ComponentSpec
DEFAULT_CALL_TIMEOUT = 60.0  # seconds: the harness's shapes are tiny, a call takes ms


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


def _deterministic_flag() -> str:
    if not torch.are_deterministic_algorithms_enabled():
        return "off"
    return "warn-only" if torch.is_deterministic_algorithms_warn_only_enabled() else "on"


def _set_deterministic_flag(value: str) -> None:
    torch.use_deterministic_algorithms(value != "off", warn_only=value == "warn-only")


def _set_grad_mode(value: bool) -> None:
    torch.set_grad_enabled(value)


def _set_tf32_matmul(value: bool) -> None:
    torch.backends.cuda.matmul.allow_tf32 = value


def _set_tf32_cudnn(value: bool) -> None:
    torch.backends.cudnn.allow_tf32 = value


# (name in a diagnosis, read, restore)
_GLOBAL_STATE: tuple[tuple[str, Callable[[], Any], Callable[[Any], None]], ...] = (
    ("default dtype", torch.get_default_dtype, torch.set_default_dtype),
    ("grad mode", torch.is_grad_enabled, _set_grad_mode),
    ("deterministic-algorithms flag", _deterministic_flag, _set_deterministic_flag),
    ("TF32 matmul flag", lambda: torch.backends.cuda.matmul.allow_tf32, _set_tf32_matmul),
    ("TF32 cuDNN flag", lambda: torch.backends.cudnn.allow_tf32, _set_tf32_cudnn),
    (
        "float32 matmul precision",
        torch.get_float32_matmul_precision,
        torch.set_float32_matmul_precision,
    ),
    ("global RNG state", torch.get_rng_state, torch.set_rng_state),
)


def _state_items(
    device: torch.device,
) -> list[tuple[str, Callable[[], Any], Callable[[Any], None]]]:
    items = list(_GLOBAL_STATE)
    if device.type == "cuda" and _cuda_started():
        items.append(
            (
                "CUDA RNG state",
                lambda: torch.cuda.get_rng_state(device),
                lambda s: torch.cuda.set_rng_state(s, device),
            )
        )
    return items


@dataclass
class Snapshot:
    values: dict[str, Any]
    items: list[tuple[str, Callable[[], Any], Callable[[Any], None]]]

    @staticmethod
    def take(device: torch.device) -> "Snapshot":
        items = _state_items(device)
        return Snapshot({name: read() for name, read, _ in items}, items)

    def restore(self) -> list[str]:
        """Put back whatever changed; returns each change, described."""
        changes = []
        for name, read, write in self.items:
            before, after = self.values[name], read()
            if _same_value(before, after):
                continue
            write(before)
            if name.endswith("RNG state"):
                changes.append(f"the {name} (it drew random numbers from it or reseeded it)")
            else:
                changes.append(f"the {name} from {before} to {after}")
        return changes


def _same_value(a: object, b: object) -> bool:
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        return torch.equal(a, b)
    return a == b


def _same_tensor(a: Tensor, b: Tensor) -> bool:
    """Bit for bit, NaN equal to NaN in the same place."""
    if a.shape != b.shape or a.dtype != b.dtype or a.device != b.device:
        return False
    if a.is_floating_point() or a.is_complex():
        return bool(((a == b) | (torch.isnan(a) & torch.isnan(b))).all())
    return torch.equal(a, b)


def _tensors(value: object, label: str) -> Iterator[tuple[str, Tensor]]:
    """Every tensor in a value (nested tuples, lists and dict values), with where it is."""
    if isinstance(value, Tensor):
        yield label, value
    elif isinstance(value, tuple | list):
        for i, item in enumerate(value):
            yield from _tensors(item, f"{label}[{i}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _tensors(item, f"{label}[{key!r}]")


def _arguments(args: tuple[object, ...], kwargs: dict[str, object]) -> list[tuple[str, Tensor]]:
    found = [t for i, a in enumerate(args) for t in _tensors(a, f"argument {i + 1}")]
    return found + [t for k, a in kwargs.items() for t in _tensors(a, k)]


def _leading_padding(
    what: str,
    owner: object,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    spec: Spec | None,
    polarity: str,
) -> Tensor | None:
    """Where a causal query sees only padded keys, (b, t) True: each sequence's leading run
    of padding (left padding) in a decoder's input, in a model.logits call (<PAD> tokens, the
    `owner` model's pad_id) or a decoder layer call (its key_padding, in `polarity`). These are
    fully masked rows: no clause defines their output (nn.TransformerEncoder's fast path
    gives NaN) and no property reads it. None for any other call, for a model that takes
    <PAD> as an ordinary token (masks_padding = False), or without padding."""
    kind = getattr(spec, "kind", None)
    if what == "model.logits" and kind in ("decoder_only", "encoder_decoder"):
        pad_id = getattr(owner, "pad_id", None)
        tokens = args[0] if args else None
        if (
            not pads_left(owner)
            or not isinstance(pad_id, Integral)
            or not isinstance(tokens, Tensor)
        ):
            return None
        pad = tokens == int(pad_id)
    elif what == "layer" and kind in ("decoder", "decoder_only"):
        given = kwargs.get("key_padding")
        if not isinstance(given, Tensor) or given.dtype != torch.bool:
            return None
        pad = given if polarity == "true_blocks" else ~given
    else:
        return None
    return pad.int().cumprod(dim=-1).bool()


def _over(positions: Tensor | None, t: Tensor) -> Tensor | None:
    """`positions` (b, t) shaped to broadcast over `t` (b, t, ...); None when it marks
    nothing or does not fit."""
    if positions is None or not bool(positions.any()) or positions.shape != t.shape[:2]:
        return None
    return positions.to(t.device).reshape(*positions.shape, *[1] * (t.dim() - 2))


def _first_difference(a: Tensor, b: Tensor) -> str:
    if a.shape != b.shape:
        return f"shape {tuple(a.shape)} became {tuple(b.shape)}"
    differ = ~((a == b) | (torch.isnan(a) & torch.isnan(b))) if a.is_floating_point() else a != b
    index = tuple(int(i) for i in differ.nonzero()[0])
    return (
        f"{int(differ.sum())} element(s), first at {index}: {a[index].item()} -> {b[index].item()}"
    )


# What each method returns, and which are made twice to check determinism: the contract
# table beside the Protocols (targets.CONTRACTS).
_RETURNS = {what: c.returns for what, c in CONTRACTS.items() if c.returns is not None}
_PURE = {what for what, c in CONTRACTS.items() if c.pure}


def _want_shape(
    what: str, first: Tensor | None, args: tuple[object, ...], spec: Spec | None
) -> tuple[int, ...] | None:
    """The result shape the protocol promises, where it is fixed by the inputs and spec."""
    if first is None:
        return None
    if what == "attention" and len(args) >= 3 and isinstance(args[2], Tensor):
        return (*first.shape[:-1], args[2].shape[-1])  # (batch, heads, Lq, d_v)
    vocab = getattr(spec, "vocab_size", None)
    d_model = getattr(spec, "d_model", None)
    if what in (
        "layer",
        "components.layer_norm",
        "components.layer_norm_affine",
        "components.feed_forward",
    ):
        return tuple(first.shape)
    if what in ("model.logits", "model.incremental_logits") and vocab is not None:
        return (*first.shape, vocab)
    if what in ("components.embed", "components.embed_with_positions") and d_model is not None:
        return (*first.shape, d_model)
    if what == "components.unembed" and vocab is not None:
        return (*first.shape[:-1], vocab)
    if what == "model.loss":
        return ()
    if what == "components.positional_table" and args and isinstance(args[0], int):
        return (args[0], d_model) if d_model is not None else None
    return None


@dataclass
class Recorded:
    """One call, kept (on the CPU) for the pictures of a failing example."""

    what: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    result: Any


_RECORD = tuple(what for what, c in CONTRACTS.items() if c.recorded)


def _to_cpu(value: Any) -> Any:
    if isinstance(value, Tensor):  # a meta tensor has no data to copy (a wrong-device fault)
        return value.detach() if value.is_meta else value.detach().cpu()
    if isinstance(value, tuple | list):
        return type(value)(_to_cpu(v) for v in value)
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    return value


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


def _contiguous(value: Any) -> Any:
    """A tensor argument in the layout a tokenizer or data loader gives (the properties slice
    and permute token ids, which leaves views: nanoGPT's loss calls `.view` on its targets)."""
    return value.contiguous() if isinstance(value, Tensor) else value


# What a model returns at the end of its computation: logits and the loss.
_ENDS = ("model.logits", "model.incremental_logits", "model.loss")


def _finer_end(what: str, got: torch.dtype, want: torch.dtype) -> bool:
    """A model's logits or loss may come in a finer dtype than the build's: float32 logits
    from a 16-bit model, or a float32 cross-entropy, lose nothing (good practice, and what
    many libraries do). A coarser one loses what the model computed; and a kernel's, a
    layer's or a component's output, which feeds further computation in the build's dtype,
    must keep it."""
    return what in _ENDS and torch.finfo(got).eps <= torch.finfo(want).eps


def _device(spec: object) -> torch.device:
    device = getattr(spec, "device", None)
    return device if isinstance(device, torch.device) else torch.device("cpu")


def _on(actual: torch.device, wanted: torch.device) -> bool:
    return actual.type == wanted.type and (wanted.index is None or actual.index == wanted.index)


def _cuda_started() -> bool:
    return bool(torch.cuda.is_initialized())  # type: ignore[no-untyped-call]


def release_memory() -> None:
    """Drop unreachable tensors and give cached GPU memory back."""
    gc.collect()
    if _cuda_started():
        torch.cuda.empty_cache()


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
