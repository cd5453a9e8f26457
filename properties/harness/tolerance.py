"""The tolerance policy: data in tolerances.toml, read once, looked up per dtype and device."""

import functools
import tomllib
from dataclasses import dataclass, fields
from importlib import resources

import torch
from transformer_spec.reference.config import DTYPES

DTYPE_NAMES = {dtype: name for name, dtype in DTYPES.items()}  # the one table, reversed


@dataclass(frozen=True)
class Tolerance:
    reference_factor: float
    reference_floor: float
    invariance: float
    rowsum: float
    absolute: float
    derivative: float

    def scaled(self, factor: float) -> "Tolerance":
        """Every bound times `factor` (a target's loosening, reported with its reason)."""
        return Tolerance(**{f.name: getattr(self, f.name) * factor for f in fields(self)})


@functools.cache
def _table() -> dict[str, dict[str, float]]:
    raw = tomllib.loads(
        resources.files("transformer_spec.properties.harness")
        .joinpath("tolerances.toml")
        .read_text()
    )
    flat: dict[str, dict[str, float]] = {}
    for key, value in raw.items():
        if key in DTYPE_NAMES.values():
            flat[key] = value
        else:  # a device table: {"cuda": {"float32": {...}}}
            for dtype_name, entry in value.items():
                flat[f"{key}.{dtype_name}"] = entry
    return flat


def tolerance_for(dtype: torch.dtype, device: torch.device) -> Tolerance:
    name = DTYPE_NAMES[dtype]
    table = _table()
    entry = table.get(f"{device.type}.{name}", table[name])
    return Tolerance(**entry)
