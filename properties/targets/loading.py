"""Turning command-line words into targets and known failures; every mistake is a UsageError
with one line saying what is wrong and what would be accepted (the CLI exits 2)."""

import contextlib
import fnmatch
import importlib
import os
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from transformer_spec.properties.harness.guard import Snapshot
from transformer_spec.properties.harness.runner import CellReport
from transformer_spec.properties.targets.adapters import THIRD_PARTY, hf
from transformer_spec.properties.targets.adapters.hf import MissingExtra
from transformer_spec.properties.targets.builtin import BUILTIN_TARGETS
from transformer_spec.properties.targets.protocols import Target
from transformer_spec.reference.config import DTYPES


class UsageError(Exception):
    """Bad input to the checker: exit 2 with this one-line message."""


def load_target(spec: str, installed: contextlib.ExitStack | None = None) -> Target:
    """A built-in name (reference-math, reference-fused), mutant:NAME, hf:CLASSNAME (a Hugging
    Face model class, built tiny; hf:CLASSNAME:eager or :sdpa names its attention
    implementation) or MODULE:FACTORY, where FACTORY() returns a Target. Loading a module runs
    its code; global torch state it leaves changed (other than the RNG, which modules often
    seed) is put back, with a warning.

    A mutant swaps reference modules for mutated ones: that lasts until `installed` closes, so
    a mutant is loaded with `opened` (one cell's span), never for the rest of the process."""
    snapshot = Snapshot.take(torch.device("cpu"))
    try:
        return _load_target(spec, installed)
    finally:
        changes = [c for c in snapshot.restore() if "RNG state" not in c]
        if changes:
            print(
                f"warning: loading target {spec!r} changed {'; '.join(changes)}; "
                "the harness restored it",
                file=sys.stderr,
            )


@contextlib.contextmanager
def opened(spec: str) -> Iterator[Target]:
    """The target for one cell: what loading it installed (a mutant's modules) is gone after
    the block, so the next target sees none of it."""
    with contextlib.ExitStack() as installed:
        yield load_target(spec, installed)


def peek(spec: str) -> Target:
    """The target as loaded, to validate its name and read what it declares before the run;
    a mutant is undone at once (its cells open it again with `for_cell`)."""
    with opened(spec) as target:
        return target


def for_cell(spec: str, loaded: Target) -> contextlib.AbstractContextManager[Target]:
    """`loaded` again for a cell; a mutant is applied afresh for the cell's span only."""
    return opened(spec) if spec.startswith("mutant:") else contextlib.nullcontext(loaded)


def _mutant_target(name: str, installed: contextlib.ExitStack | None) -> Target:
    """The reference (math path) with one seeded bug of the mutant catalogue."""
    from transformer_spec.properties.harness.registry import load_all
    from transformer_spec.properties.targets import mutants

    chosen = [m for m in mutants.CATALOGUE if m.name == name]
    if not chosen:
        raise UsageError(
            f"target 'mutant:{name}': no such mutant; see `transformer-spec mutants --list`"
        )
    if installed is None:
        raise UsageError(
            f"target 'mutant:{name}': a mutant is loaded with loading.opened(), which puts the "
            "unmutated reference back when the cell ends"
        )
    load_all()  # the properties keep the modules they were imported with
    builtin = installed.enter_context(mutants.applied(chosen[0]))
    target: Target = builtin.reference_target("math")
    return replace(
        target, name=f"mutant:{name}", description=f"the reference with a bug: {chosen[0].bug}"
    )


def _load_target(spec: str, installed: contextlib.ExitStack | None) -> Target:
    if spec in BUILTIN_TARGETS:
        return BUILTIN_TARGETS[spec]()
    if spec.startswith("mutant:"):
        return _mutant_target(spec.removeprefix("mutant:"), installed)
    if spec in THIRD_PARTY or spec.startswith("hf:"):
        try:
            return THIRD_PARTY[spec]() if spec in THIRD_PARTY else hf.parse(spec)
        except (MissingExtra, ValueError) as err:
            raise UsageError(f"target {spec!r}: {err}") from err
    if ":" not in spec:
        raise UsageError(
            f"target {spec!r}: expected MODULE:FACTORY, mutant:NAME or a built-in target, one "
            f"of {sorted(BUILTIN_TARGETS) + sorted(THIRD_PARTY)}, or hf:CLASSNAME (a Hugging "
            "Face model class)"
        )
    module_name, _, attr = spec.partition(":")
    if os.getcwd() not in sys.path:  # MODULE is looked up from the current folder too
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except (Exception, SystemExit) as err:  # ImportError, or the module's own code failing
        raise UsageError(
            f"target {spec!r}: cannot import module {module_name!r}: {type(err).__name__}: {err}"
        ) from err
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise UsageError(f"target {spec!r}: module {module_name!r} has no callable {attr!r}")
    try:
        target = factory()
    except (Exception, SystemExit) as err:
        raise UsageError(
            f"target {spec!r}: the factory raised {type(err).__name__}: {err}"
        ) from err
    if not isinstance(target, Target):
        raise UsageError(
            f"target {spec!r}: the factory returned {type(target).__name__}, "
            "expected transformer_spec.properties.Target"
        )
    return target


@dataclass(frozen=True)
class KnownFailure:
    pattern: str  # PROPERTY or TARGET/PROPERTY, globs allowed
    reason: str
    line: int
    where: tuple[str, ...] = ()  # dtypes and device types it is limited to (from @...)

    def written(self) -> str:
        """The pattern as the file gives it, with its @ limits."""
        return f"{self.pattern}@{','.join(self.where)}" if self.where else self.pattern

    def matches(self, property_id: str, target: str, dtype: str, device: str) -> bool:
        name = f"{target}/{property_id}" if "/" in self.pattern else property_id
        return fnmatch.fnmatchcase(name, self.pattern) and self.covers(target, dtype, device)

    def covers(self, target: str, dtype: str, device: str) -> bool:
        """Whether the entry is about this cell at all (its target part and @ limits)."""
        dtypes = [w for w in self.where if w in _DTYPE_WORDS]
        devices = [w for w in self.where if w not in _DTYPE_WORDS]
        named = "/" not in self.pattern or fnmatch.fnmatchcase(target, self.pattern.split("/")[0])
        return (
            named
            and (not dtypes or dtype in dtypes)
            and (not devices or device.split(":")[0] in devices)
        )


_LINE = re.compile(r"^(?P<pattern>[^\s@]+)(@(?P<where>\S+))?\s+(?P<reason>\S.*)$")
_DTYPE_WORDS = tuple(DTYPES)
_DEVICE_WORDS = ("cpu", "cuda")


def load_known_failures(path: str) -> list[KnownFailure]:
    """One property id or glob pattern per line (TARGET/PROPERTY for one target's property),
    optionally limited to dtypes or devices (`@bfloat16`, `@cuda,float16`), then its reason;
    '#' starts a comment."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise UsageError(f"known-failures file {path!r}: cannot read it: {err}") from err
    entries = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            raise UsageError(
                f"known-failures file {path!r} line {number}: expected "
                f"'PROPERTY-ID-OR-PATTERN[@DTYPE-OR-DEVICE,...] reason', got {line!r}"
            )
        where = tuple(match["where"].split(",")) if match["where"] else ()
        unknown = [w for w in where if w not in (*_DTYPE_WORDS, *_DEVICE_WORDS)]
        if unknown:
            raise UsageError(
                f"known-failures file {path!r} line {number}: @{match['where']}: "
                f"{unknown[0]!r} is neither a dtype {list(_DTYPE_WORDS)} nor a device type "
                f"{list(_DEVICE_WORDS)}"
            )
        entries.append(KnownFailure(match["pattern"], match["reason"].strip(), number, where))
    return entries


def matching_entry(
    entries: Sequence[KnownFailure],
    property_id: str,
    target: str = "",
    *,
    dtype: str = "",
    device: str = "",
) -> KnownFailure | None:
    """A pattern matches a property id, or, written TARGET/PROPERTY, one target's property;
    an entry limited to some dtypes or devices (@...) matches only their cells."""
    for entry in entries:
        if entry.matches(property_id, target, dtype, device):
            return entry
    return None


def known_reason(
    entries: Sequence[KnownFailure],
    property_id: str,
    target: str = "",
    *,
    dtype: str = "",
    device: str = "",
) -> str | None:
    entry = matching_entry(entries, property_id, target, dtype=dtype, device=device)
    return None if entry is None else entry.reason


def stale_entries(
    entries: Sequence[KnownFailure], cells: Sequence[CellReport]
) -> list[KnownFailure]:
    """The entries that turned no failure of this run into a known failure, among those
    this run could judge: an entry for another target, dtype or device (one file shared by
    several runs) is not stale for that."""
    used = {
        matching_entry(entries, r.property, c.target, dtype=c.dtype, device=c.device)
        for c in cells
        for r in c.results
        if r.outcome == "known_failure"
    }

    def judged(e: KnownFailure) -> bool:
        return any(e.covers(c.target, c.dtype, c.device) for c in cells)

    return [e for e in entries if e not in used and judged(e)]


def apply_known(cell: CellReport, known: Sequence[KnownFailure]) -> None:
    """Failures that a known-failures entry names become known failures, with its reason."""
    for r in cell.results:
        if r.outcome != "fail":
            continue
        reason = known_reason(known, r.property, cell.target, dtype=cell.dtype, device=cell.device)
        if reason is not None:
            r.outcome, r.reason = "known_failure", reason
