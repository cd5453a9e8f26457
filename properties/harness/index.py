"""The properties' ids and needs, read from the source of properties/checks/ without
importing it (no torch): the Plan validates --property patterns and sizes the run with it
before any worker starts. A test keeps it equal to the registry that importing the checks
fills (ids, order, needs, clauses).

A property is registered by `@prop("ID", clauses=(...), needs=(...), ...)` on a function of
a check module, in source order, the modules in the order checks/__init__.py imports them."""

import ast
import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Entry:
    id: str
    clauses: tuple[str, ...]
    needs: tuple[str, ...]

    @property
    def level(self) -> str:
        """The adapter level it runs at: the first part of its first need."""
        return self.needs[0].split(".")[0]


@functools.cache
def entries() -> tuple[Entry, ...]:
    found: list[Entry] = []
    _visit("__init__", set(), found)
    return tuple(found)


def ids() -> list[str]:
    return [e.id for e in entries()]


_PACKAGE = "transformer_spec.properties.checks"


def _visit(module: str, seen: set[str], found: list[Entry]) -> None:
    """Walk a check module's top level as importing it would: a check module it imports
    registers its properties first (once), then its own decorators in source order."""
    seen.add(module)
    source = (_folder() / f"{module}.py").read_text(encoding="utf-8")
    for node in ast.parse(source).body:
        for name in _imported(node):
            if name not in seen:
                _visit(name, seen, found)
        if isinstance(node, ast.FunctionDef):
            found += _registered(node)


@functools.cache
def _folder() -> Path:
    """The checks' folder, found without importing the package (which imports torch)."""
    spec = importlib.util.find_spec(_PACKAGE)
    assert spec is not None and spec.submodule_search_locations is not None
    return Path(next(iter(spec.submodule_search_locations)))


def _imported(node: ast.stmt) -> list[str]:
    """The check modules a top-level import statement imports."""
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level == 1 and node.module is None:  # from . import NAME
        return [alias.name for alias in node.names]
    if node.level == 1 and node.module:  # from .NAME import ...
        return [node.module.split(".")[0]]
    if node.level == 0 and node.module and node.module.startswith(_PACKAGE + "."):
        return [node.module.removeprefix(_PACKAGE + ".").split(".")[0]]
    if node.level == 0 and node.module == _PACKAGE:
        return [alias.name for alias in node.names]
    return []


def _registered(node: ast.FunctionDef) -> list[Entry]:
    found = []
    for deco in node.decorator_list:
        if isinstance(deco, ast.Call) and getattr(deco.func, "id", "") == "prop":
            words = {k.arg: ast.literal_eval(k.value) for k in deco.keywords if k.arg}
            pid = ast.literal_eval(deco.args[0]) if deco.args else words["id"]
            found.append(Entry(pid, tuple(words["clauses"]), tuple(words["needs"])))
    return found
