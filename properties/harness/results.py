"""What a run produces: a Result per (target, dtype, property) and a CellReport per (target,
dtype). Plain data, no torch: the controller of a run holds them before it imports torch,
and they travel between processes as JSON."""

from dataclasses import dataclass, field
from typing import Literal

Outcome = Literal["pass", "fail", "not_applicable", "known_failure", "convention"]


@dataclass
class Result:
    property: str
    clauses: tuple[str, ...]
    outcome: Outcome
    seconds: float = 0.0
    reason: str = ""  # not applicable / known failure / convention difference
    message: str = ""  # the assertion that failed
    counterexample: str = ""  # Hypothesis's shrunk example
    reproduce: str = ""
    tolerance_note: str = ""  # set when the target loosened this property's tolerance
    examples: int = 0  # examples run, the failing one included (only when counted)
    fault: str = ""  # the guard's diagnosis of a faulty target: hang, state, mutation, ...
    refused: int = 0  # examples the library refused (Unsupported), drawn again
    pictures: list[str] = field(default_factory=list)  # PNG files of the failing example
    traceback: str = ""  # the innermost frames of what the target raised
    output: str = ""  # what the target printed (stdout and stderr), cut at OUTPUT_LIMIT
    model_kinds: dict[str, str] = field(default_factory=dict)  # a failure's outcome per kind
    warnings: list[str] = field(default_factory=list)  # DeclarationWarning: a meaning to renew


@dataclass
class CellReport:
    target: str
    device: str
    dtype: str
    profile: str
    seed: int
    tolerance: dict[str, float] = field(default_factory=dict)  # the bounds used in this cell
    results: list[Result] = field(default_factory=list)

    def count(self, outcome: Outcome) -> int:
        return sum(r.outcome == outcome for r in self.results)
