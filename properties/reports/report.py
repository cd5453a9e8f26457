"""The run's reports: the terminal text (streamed as each property finishes), a JSON
document and JUnit XML."""

import json
import platform
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import torch
from transformer_spec.properties.harness.registry import Property
from transformer_spec.properties.harness.results import CellReport, Result
from transformer_spec.properties.targets.protocols import Target

from transformer_spec import __version__


def environment() -> dict[str, Any]:
    return {
        "transformer_spec": __version__,
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cuda_available": torch.cuda.is_available(),
        "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def header(target: Target) -> list[str]:
    c = target.conventions
    lines = [
        f"target: {target.name} ({target.description})",
        f"conventions: mask polarity {c.mask_polarity}, causal alignment {c.causal_alignment}, "
        f"fully masked row {c.fully_masked_row}, weights {c.weights}, "
        f"deterministic {c.deterministic}",
    ]
    lines += [f"  {name}: {why}" for name, why in c.explanations.items()]
    lines += [
        f"  tolerance x{factor:g} for {pattern}: {why}"
        for pattern, (factor, why) in target.loosen.items()
    ]
    return lines


# A convention difference passed in the target's own declared convention; it is shown apart
# from a plain pass so a reader sees where the library differs from the reference.
TAGS = {
    "pass": "PASS",
    "fail": "FAIL",
    "not_applicable": "N/A",
    "known_failure": "KNOWN",
    "convention": "CONV",
}
_INDENT = " " * 8  # under a result line's property column


def count(n: int, one: str, many: str = "") -> str:
    """`1 cell`, `2 cells`; `many` where the plural is not `one` + s."""
    return f"{n} {one if n == 1 else (many or one + 's')}"


def cell_heading(target: str, device: str, dtype: str, profile: str, seed: int) -> str:
    return f"[{target} | {device} | {dtype} | profile {profile} | seed {seed}]"


OUTPUT_LINES = 10  # of a failing property's captured target output, in the terminal


def result_lines(r: Result, width: int, verbose: bool = False) -> list[str]:
    """One result as it finishes: a line (property column `width` wide), and under a failure
    its message, Hypothesis's counterexample and the command that reproduces it. A
    not-applicable result has no line unless `verbose` (the cell's summary counts it)."""
    if r.outcome == "not_applicable" and not verbose:
        return []
    extra = f"  ({r.reason})" if r.reason else ""
    extra += f"  [{r.tolerance_note}]" if r.tolerance_note else ""
    tag = TAGS[r.outcome]
    lines = [f"  {tag:<5} {r.property:<{width}}  {r.seconds:6.2f}s  {', '.join(r.clauses)}{extra}"]
    if r.outcome == "fail":
        lines += [_INDENT + line for line in r.message.splitlines()]
        if r.traceback:
            lines.append(f"{_INDENT}where the target raised it (innermost frames):")
            lines += [_INDENT + line for line in r.traceback.splitlines()]
        lines += [_INDENT + line for line in r.counterexample.splitlines()]
        if r.model_kinds:
            kinds = ", ".join(f"{k} {TAGS[o].lower()}" for k, o in r.model_kinds.items())
            lines.append(f"{_INDENT}per model kind: {kinds}")
        if r.output.strip():
            shown = r.output.strip().splitlines()
            lines.append(f"{_INDENT}the target printed ({len(shown)} lines; all in the reports):")
            lines += [f"{_INDENT}| {line}" for line in shown[:OUTPUT_LINES]]
        if r.reproduce:
            lines.append(f"{_INDENT}reproduce: {r.reproduce}")
    return lines


def counts_text(cell: CellReport) -> str:
    """`16 passed, 1 failed, 2 convention differences`: passed and failed always, the rest
    when there are any; not-applicable results are left to `not_applicable_text`."""
    parts = [f"{cell.count('pass')} passed", f"{cell.count('fail')} failed"]
    if cell.count("convention"):
        parts.append(count(cell.count("convention"), "convention difference"))
    if cell.count("known_failure"):
        parts.append(count(cell.count("known_failure"), "known failure"))
    return ", ".join(parts)


def not_applicable_text(cell: CellReport) -> str:
    """The results that do not apply, in one line grouped by why (the reason up to its first
    colon: a convention's explanation after it would make every reason distinct)."""
    reasons = Counter(
        r.reason.split(": ")[0].removeprefix("target offers ")
        for r in cell.results
        if r.outcome == "not_applicable"
    )
    if not reasons:
        return ""
    groups = "; ".join(f"{n} {why}" for why, n in reasons.most_common())
    return f"{sum(reasons.values())} do not apply to this target ({groups})"


def cell_summary(cell: CellReport, verbose: bool = False) -> list[str]:
    lines = [f"  {counts_text(cell)}"]
    if text := not_applicable_text(cell):
        lines.append(f"  {text}" + ("" if verbose else "; --verbose lists them"))
    return lines + [f"  warning: {w}" for w in declaration_warnings([cell])]


def declaration_warnings(cells: Sequence[CellReport]) -> list[str]:
    """Each DeclarationWarning of the results once, in the order first met: a declaration
    whose meaning changes in the next minor version, and what to declare instead."""
    return list(dict.fromkeys(w for c in cells for r in c.results for w in r.warnings))


def cell_name(cell: CellReport) -> str:
    return f"{cell.target} | {cell.device} | {cell.dtype}"


def run_summary(cells: Sequence[CellReport]) -> list[str]:
    """The end of a run: each failure in one line with the command that reproduces it, then
    the verdict."""
    failures = [(c, r) for c in cells for r in c.results if r.outcome == "fail"]
    lines = []
    if failures:
        lines += ["", f"Failures ({len(failures)}):"]
        for cell, r in failures:
            first = r.message.strip().splitlines()[0] if r.message.strip() else ""
            lines.append(f"  FAIL  {r.property} in {cell_name(cell)}: {first}")
            if r.reproduce:
                lines.append(f"{_INDENT}reproduce: {r.reproduce}")
    if said := declaration_warnings(cells):
        lines += ["", f"Declarations to renew ({len(said)}):", *(f"  warning: {w}" for w in said)]
    return [*lines, "", verdict(cells)]


def verdict(cells: Sequence[CellReport]) -> str:
    """`OK: 0 failing properties in 2 cells (146 passed)`, or FAILED with the count."""
    failed = sum(c.count("fail") for c in cells)
    passed = sum(c.count("pass") + c.count("convention") for c in cells)
    applicable = sum(len(c.results) - c.count("not_applicable") for c in cells)
    word = "FAILED" if failed else "OK"
    return (
        f"{word}: {count(failed, 'failing property', 'failing properties')} in "
        f"{count(len(cells), 'cell')} ({passed} of {applicable} applicable results passed)"
    )


def level(p: Property) -> str:
    """The adapter level a property needs: the first part of its first need."""
    return p.needs[0].split(".")[0]


def property_rows(props: Sequence[Property]) -> list[dict[str, Any]]:
    """`check --list --json`: each property with its clauses and what it needs."""
    return [
        {
            "id": p.id,
            "level": level(p),
            "needs": list(p.needs),
            "clauses": list(p.clauses),
            "description": p.doc,
        }
        for p in props
    ]


def property_listing(props: Sequence[Property]) -> list[str]:
    """`check --list`: aligned columns, id, adapter level, clauses."""
    width = max((len(p.id) for p in props), default=0)
    levels = max((len(level(p)) for p in props), default=0)
    lines = [f"{'property':<{width}}  {'level':<{levels}}  clauses"]
    lines += [f"{p.id:<{width}}  {level(p):<{levels}}  {', '.join(p.clauses)}" for p in props]
    return [*lines, "", f"{count(len(props), 'property', 'properties')}"]


def to_json(
    cells: list[CellReport],
    targets: dict[str, Target],
    spec_version: str,
    extra: dict[str, Any] | None = None,
) -> str:
    """The run as one JSON document; `extra` adds top-level keys (a table's cells not run)."""
    doc = {
        "spec_version": spec_version,
        "environment": environment(),
        "targets": {
            name: {
                "description": t.description,
                "conventions": {
                    **{k: v for k, v in asdict(t.conventions).items() if k != "explanations"},
                    "explanations": dict(t.conventions.explanations),
                },
                "loosen": {k: {"factor": f, "reason": r} for k, (f, r) in t.loosen.items()},
            }
            for name, t in targets.items()
        },
        "cells": [asdict(cell) for cell in cells],
        **(extra or {}),
    }
    return json.dumps(doc, indent=2)


def to_junit(cells: list[CellReport]) -> str:
    suites = ET.Element("testsuites")
    for cell in cells:
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=f"{cell.target}[{cell.device},{cell.dtype}]",
            tests=str(len(cell.results)),
            failures=str(cell.count("fail")),
            skipped=str(cell.count("not_applicable") + cell.count("known_failure")),
            time=f"{sum(r.seconds for r in cell.results):.3f}",
        )
        props = ET.SubElement(suite, "properties")  # which checker gave these verdicts
        ET.SubElement(props, "property", name="transformer_spec", value=__version__)
        ET.SubElement(props, "property", name="torch", value=str(torch.__version__))
        for r in cell.results:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=suite.get("name", ""),
                name=r.property,
                time=f"{r.seconds:.3f}",
            )
            if r.outcome == "fail":
                failure = ET.SubElement(
                    case, "failure", message=r.message.splitlines()[0] if r.message else ""
                )
                failure.text = "\n".join([r.message, r.counterexample, f"reproduce: {r.reproduce}"])
            elif r.outcome in ("not_applicable", "known_failure"):
                ET.SubElement(case, "skipped", message=f"{r.outcome}: {r.reason}")
            elif r.outcome == "convention":  # a pass, in the target's declared convention
                ET.SubElement(case, "system-out").text = f"convention difference: {r.reason}"
    return ET.tostring(suites, encoding="unicode")
