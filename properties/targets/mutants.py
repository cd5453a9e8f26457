"""The mutant catalogue: seeded bugs in the reference, each a bug class that real
implementations have shipped (see ../shared/anchors/numerics.md in the project's notes). The
entries are in `mutants_notes` (the notes' model) and `mutants_beyond` (the code beyond the
notes); `CATALOGUE` holds them all, in the kill matrix's order.

A mutant is one textual change to one module of `transformer_spec.reference`. `applied(m)`
imports a fresh copy of the reference with that change (and of the built-in targets that
wrap it), without touching any file, and puts the original modules back afterwards. The
mutated reference is then checked like any other target (`transformer-spec mutants`).
"""

import contextlib
import importlib
import importlib.abc
import importlib.machinery
import sys
import types
from collections.abc import Iterator, Sequence

from transformer_spec.properties.targets.mutants_beyond import BEYOND_ATTENTION, BEYOND_COMPONENTS
from transformer_spec.properties.targets.mutants_notes import NOTES, VOCABULARY
from transformer_spec.properties.targets.mutants_notes import Mutant as Mutant

_PACKAGE = "transformer_spec.reference"
_WRAPPERS = "transformer_spec.properties.targets.builtin"


CATALOGUE: tuple[Mutant, ...] = (*NOTES, *BEYOND_COMPONENTS, *VOCABULARY, *BEYOND_ATTENTION)


def select(patterns: Sequence[str] | None) -> list[Mutant]:
    if not patterns:
        return list(CATALOGUE)
    return [m for m in CATALOGUE if any(p in m.name for p in patterns)]


class StaleMutant(Exception):
    """The reference changed: the mutant's original text no longer occurs exactly once."""


class _Loader(importlib.abc.Loader):
    def __init__(self, source: str, origin: str) -> None:
        self.source, self.origin = source, origin

    def exec_module(self, module: types.ModuleType) -> None:
        exec(compile(self.source, self.origin, "exec"), module.__dict__)


class _Finder(importlib.abc.MetaPathFinder):
    """Serves the one mutated module from its mutated source; leaves every other import to
    the normal machinery."""

    def __init__(self, mutant: Mutant) -> None:
        self.mutant, self.fullname = mutant, f"{_PACKAGE}.{mutant.module}"

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != self.fullname:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.origin is None:
            raise StaleMutant(f"{self.mutant.name}: module {fullname} not found")
        with open(spec.origin, encoding="utf-8") as f:
            source = f.read()
        if source.count(self.mutant.old) != 1:
            raise StaleMutant(
                f"{self.mutant.name}: its original text occurs {source.count(self.mutant.old)} "
                f"times in {fullname}, expected once"
            )
        loader = _Loader(source.replace(self.mutant.old, self.mutant.new), spec.origin)
        return importlib.machinery.ModuleSpec(fullname, loader, origin=spec.origin)


def _ours(name: str) -> bool:
    return name in (_PACKAGE, _WRAPPERS) or name.startswith(_PACKAGE + ".")


# (parent package, attribute) that `from parent import attr` would find before sys.modules
_BINDINGS = (
    ("transformer_spec", "reference"),
    ("transformer_spec.properties.targets", "builtin"),
)


def _swap_in(finder: _Finder) -> types.ModuleType:
    """Forget our modules, serve the mutated one, and import the built-in targets anew."""
    for name in [n for n in sys.modules if _ours(n)]:
        del sys.modules[name]
    for parent, attr in _BINDINGS:
        if hasattr(sys.modules[parent], attr):
            delattr(sys.modules[parent], attr)
    sys.meta_path.insert(0, finder)
    return importlib.import_module(_WRAPPERS)


@contextlib.contextmanager
def applied(mutant: Mutant) -> Iterator[types.ModuleType]:
    """The built-in targets module, freshly imported over the mutated reference; the original
    modules are back in place afterwards."""
    if any(isinstance(f, _Finder) for f in sys.meta_path):  # two bugs would show as one
        raise RuntimeError(f"{mutant.name}: another mutant is still applied")
    saved = {name: mod for name, mod in sys.modules.items() if _ours(name)}
    bound = {(p, a): getattr(sys.modules[p], a, None) for p, a in _BINDINGS}
    finder = _Finder(mutant)
    try:
        yield _swap_in(finder)
    finally:
        sys.meta_path.remove(finder)
        for name in [n for n in sys.modules if _ours(n)]:
            del sys.modules[name]
        sys.modules.update(saved)
        for (parent, attr), value in bound.items():
            if value is not None:
                setattr(sys.modules[parent], attr, value)
