"""Run every property against every mutant of the catalogue and collect the kill matrix.

Per mutant, in float32: every property, under the `ci` profile, without shrinking (a kill is
what counts here), with the number of examples Hypothesis ran up to the kill. In bfloat16:
the float32 killers again, in order, until one kills (the question there is only whether the
bug is still visible). Each mutant is one item of a pytest session (`run_all`), spread over
pytest-xdist workers; a worker applies one mutant at a time.
"""

import time
from dataclasses import dataclass, field
from typing import Any

import torch
from transformer_spec.properties.checks import load_all
from transformer_spec.properties.harness import progress as P
from transformer_spec.properties.harness import session
from transformer_spec.properties.harness.plan import Plan
from transformer_spec.properties.harness.registry import Context
from transformer_spec.properties.harness.runner import run_property
from transformer_spec.properties.harness.tolerance import tolerance_for
from transformer_spec.properties.targets.mutants import Mutant, StaleMutant, applied
from transformer_spec.properties.targets.protocols import Target

# Which adapter levels run each reference module (builtin.py wraps the reference). A property
# whose level never runs the mutated module executes identical code and cannot fail, so the
# run skips it; the matrix shows such cells as unreachable.
REACHES: dict[str, set[str]] = {
    "attention": {"attention", "mha", "layers", "model"},
    "masks": {"attention", "mha", "layers", "model"},
    "multihead": {"mha", "layers", "model"},
    "norm": {"layers", "components", "model"},
    "feedforward": {"layers", "components", "model"},
    "layers": {"layers", "model"},
    "positional": {"components", "model"},
    "rotary": {"components", "model"},
    "alibi": {"components"},  # the models the harness builds take rotary positions
    "embedding": {"components", "model"},
    "model": {"components", "model"},  # UnEmbedding lives in model.py
    "generation": {"model"},
    "vocabulary": {"vocabulary"},
}


def level(pid: str) -> str:
    """The adapter level a property runs at: the first part of its first need."""
    return load_all()[pid].needs[0].split(".")[0]


def reachable(mutant: Mutant, pid: str) -> bool:
    return level(pid) in REACHES[mutant.module]


# Properties that no mutant of the reference can reach, and why; each is still shown to
# catch the broken targets in tests/ (tests/test_mutants.py).
NO_MUTANT_REASONS: dict[str, str] = {
    "vocabulary.encoding_is_fixed": "the reference vocabulary keeps no state that a small "
    "edit could make adaptive; tests/broken_layers.py:ids_by_frequency (ids re-ranked by "
    "frequency while encoding) is caught",
}


@dataclass
class Row:
    mutant: str
    bug: str
    kills: dict[str, int] = field(default_factory=dict)  # float32: property -> examples
    bf16_killer: str = ""
    bf16_examples: int = 0
    bf16_invisible: str = ""
    error: str = ""  # a stale mutant, or a property that could not be built
    seconds: float = 0.0

    @property
    def survived(self) -> bool:
        return bool(self.error) or not self.kills

    @property
    def bf16_survived(self) -> bool:
        return not self.survived and not self.bf16_killer and not self.bf16_invisible


def _kill(ctx: Context, pid: str, plan: Plan) -> int:
    """Examples Hypothesis needed to fail property `pid` (0: it passed or was n/a)."""
    prop = load_all()[pid]
    result = run_property(prop, ctx, profile=plan.profile, seed=plan.seed, shrink=False, count=True)
    return max(result.examples, 1) if result.outcome == "fail" else 0


def _context(target: Target, plan: Plan, dtype: str) -> Context:
    device, torch_dtype = torch.device(plan.device), getattr(torch, dtype)
    return Context(target, device, torch_dtype, tolerance_for(torch_dtype, device))


def run_mutant(mutant: Mutant, properties: list[str], plan: Plan, job: int = 0) -> Row:
    """One row, in the plan's device, profile and seed: every property that can reach the
    mutant in the plan's first dtype, then its killers in the second until one kills. What
    it runs is noted for the heartbeat as job `job`."""
    row = Row(mutant.name, mutant.bug, bf16_invisible=mutant.bf16_invisible)
    t0 = time.perf_counter()
    first, *second = plan.dtypes
    try:
        with applied(mutant) as builtin:
            target = builtin.reference_target("math")
            ctx = _context(target, plan, first)
            reached = [p for p in properties if reachable(mutant, p)]
            for i, pid in enumerate(reached, start=1):
                P.note(job, f"{mutant.name}: {pid} ({i}/{len(reached)})")
                n = _kill(ctx, pid, plan)
                if n:
                    row.kills[pid] = n
            if row.kills and second and not mutant.bf16_invisible:
                ctx = _context(target, plan, second[0])
                for pid in row.kills:
                    P.note(job, f"{mutant.name}: {pid} in {second[0]}")
                    n = _kill(ctx, pid, plan)
                    if n:
                        row.bf16_killer, row.bf16_examples = pid, n
                        break
    except StaleMutant as err:
        row.error = str(err)
    row.seconds = time.perf_counter() - t0
    return row


def run_all(mutants: list[Mutant], plan: Plan, progress: P.Progress | None = None) -> list[Row]:
    """Rows in catalogue order, as one session of the mutants plan (an item per mutant).
    With `progress`, each row is printed as soon as it is done."""
    index = {m.name: i for i, m in enumerate(mutants)}

    def on_start(name: str) -> None:
        if progress is not None:
            progress.note(index[name], f"{name} (every property in {plan.dtypes[0]})")

    def on_row(data: dict[str, Any]) -> None:
        if progress is not None:
            progress.finished(index[data["name"]])
            progress.line("\n".join(row_lines(_row(data))))

    done = session.run(plan, session.Hooks(row=on_row, start=on_start))
    return [_row(data) for data in done.rows]


def _row(data: dict[str, Any]) -> Row:
    return Row(**{k: v for k, v in data.items() if k != "name"})


def uncaught_properties(rows: list[Row], properties: list[str]) -> list[str]:
    caught = {pid for row in rows for pid in row.kills}
    return [p for p in properties if p not in caught and p not in NO_MUTANT_REASONS]


def _killers(row: Row) -> str:
    return ", ".join(f"{pid} ({n})" for pid, n in row.kills.items())


def _bf16(row: Row) -> str:
    if row.survived:
        return "-"
    if row.bf16_invisible:
        return f"not visible: {row.bf16_invisible}"
    return f"{row.bf16_killer} ({row.bf16_examples})" if row.bf16_killer else "SURVIVED"


def row_lines(row: Row) -> list[str]:
    """One mutant: the properties that kill it, each with the examples it took."""
    status = "ERROR" if row.error else ("SURVIVED" if row.survived else "killed")
    out = [f"{status:8s} {row.mutant} ({row.seconds:.1f}s): {row.bug}"]
    if row.error:
        out.append(f"         {row.error}")
    elif row.kills:
        out.append(f"         float32: {len(row.kills)} properties: {_killers(row)}")
        out.append(f"         bfloat16: {_bf16(row)}")
    return out


def summary_lines(rows: list[Row], properties: list[str]) -> list[str]:
    """How many mutants each property catches, most first."""
    caught = {pid: sum(pid in r.kills for r in rows) for pid in properties}
    out = ["", "mutants caught per property:"]
    out += [f"  {n:3d}  {pid}" for pid, n in sorted(caught.items(), key=lambda kv: -kv[1])]
    for pid, reason in NO_MUTANT_REASONS.items():
        out.append(f"  no mutant reaches {pid}: {reason}")
    return out


def render_markdown(rows: list[Row], properties: list[str], header: str) -> str:
    lines = [
        "# Kill matrix",
        "",
        header,
        "",
        "Each mutant is one textual change to the reference (`properties/targets/"
        "mutants_notes.py` and `mutants_beyond.py`). A "
        "cell lists the properties that fail on it under the `ci` profile (seed 0) and, in "
        "brackets, how many examples Hypothesis ran up to the failing one. Properties at "
        "an adapter level that never runs the mutated module are not run (they would run "
        "identical code). bfloat16: the float32 killers are run again until one fails. Which "
        "properties catch a mutant is reproducible; a count above ten or so can move a little "
        "between runs.",
        "",
        "| mutant | bug | float32: properties that catch it (examples) | bfloat16 |",
        "| --- | --- | --- | --- |",
    ]
    for row in rows:
        killers = row.error or _killers(row) or "**SURVIVED**"
        lines.append(f"| `{row.mutant}` | {row.bug} | {killers} | {_bf16(row)} |")
    caught = {pid: [r.mutant for r in rows if pid in r.kills] for pid in properties}
    lines += ["", "## Mutants caught per property", "", "| property | mutants |", "| --- | --- |"]
    for pid, names in caught.items():
        cell = str(len(names)) if names else NO_MUTANT_REASONS.get(pid, "**none**")
        lines.append(f"| `{pid}` | {cell} |")
    return "\n".join(lines) + "\n"
