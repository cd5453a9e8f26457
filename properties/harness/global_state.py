"""The global torch state a call into a target must leave as it found it (default dtype, grad
mode, deterministic-algorithms flag, TF32 flags, float32 matmul precision, the global and
CUDA RNG): `Snapshot` reads it before a call and puts back whatever changed; and
`release_memory`, which gives cached GPU memory back after a call ran out of it."""

import gc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor


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


def _cuda_started() -> bool:
    return bool(torch.cuda.is_initialized())  # type: ignore[no-untyped-call]


def release_memory() -> None:
    """Drop unreachable tensors and give cached GPU memory back."""
    gc.collect()
    if _cuda_started():
        torch.cuda.empty_cache()
