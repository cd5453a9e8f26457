"""A package's public names imported on first use (PEP 562): the package stays light to
import (no torch) while its names read as if imported at the top."""

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def exports(
    package: str, where: Mapping[str, str], names: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The package's `__getattr__` and `__dir__`: `where` maps each public name to the
    module (absolute, or relative to `package` when it starts with a dot) that defines it;
    `names` is the package's globals(), where a name is kept once found."""

    def attribute(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = where[name]
        module = f"{package}{module}" if module.startswith(".") else module
        names[name] = getattr(importlib.import_module(module), name)
        return names[name]

    def listing() -> list[str]:
        return sorted({*names, *where})

    return attribute, listing
