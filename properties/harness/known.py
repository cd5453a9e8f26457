"""Known failures: a file of written reasons for failures a project accepts (a library's
documented non-conformance). One entry per line: a property id or glob (TARGET/PROPERTY for
one target's property), optionally limited to dtypes or devices (`@bfloat16`,
`@cuda,float16`), then the reason. No torch: the Plan reads the file before the run."""

import fnmatch
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from transformer_spec.properties.harness.errors import UsageError
from transformer_spec.properties.harness.profiles import DEVICE_WORDS, DTYPE_WORDS
from transformer_spec.properties.harness.results import CellReport


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
        dtypes = [w for w in self.where if w in DTYPE_WORDS]
        devices = [w for w in self.where if w not in DTYPE_WORDS]
        named = "/" not in self.pattern or fnmatch.fnmatchcase(target, self.pattern.split("/")[0])
        return (
            named
            and (not dtypes or dtype in dtypes)
            and (not devices or device.split(":")[0] in devices)
        )


_LINE = re.compile(r"^(?P<pattern>[^\s@]+)(@(?P<where>\S+))?\s+(?P<reason>\S.*)$")


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
        unknown = [w for w in where if w not in (*DTYPE_WORDS, *DEVICE_WORDS)]
        if unknown:
            raise UsageError(
                f"known-failures file {path!r} line {number}: @{match['where']}: "
                f"{unknown[0]!r} is neither a dtype {list(DTYPE_WORDS)} nor a device type "
                f"{list(DEVICE_WORDS)}"
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
