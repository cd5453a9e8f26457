"""The conformance table: every built-in target x every property, per (device, dtype) cell,
with outcome pass / FAIL / n/a / conv (a pass in the target's declared convention, which
differs from the reference's) / known (a failure with a written reason).

The cells run as items of one Plan's pytest session (session.run, `transformer-spec table`);
this module renders and merges their reports.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from transformer_spec.properties.harness.profiles import PROFILES
from transformer_spec.properties.harness.results import CellReport, Result
from transformer_spec.properties.targets.adapters import THIRD_PARTY
from transformer_spec.properties.targets.builtin import BUILTIN_TARGETS

if TYPE_CHECKING:
    pass

SYMBOL = {
    "pass": "pass",
    "fail": "**FAIL**",
    "not_applicable": "n/a",
    "convention": "conv",
    "known_failure": "known",
}


def transformers_version() -> str:
    try:
        import transformers
    except ImportError:
        return ""
    return f", transformers {transformers.__version__}"


def all_targets() -> list[str]:
    return [*BUILTIN_TARGETS, *THIRD_PARTY]


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def render_markdown(
    cells: list[CellReport], header: str, run: str, descriptions: dict[str, str]
) -> str:
    """One table per (device, dtype): properties down, targets across; then what each
    convention difference, refusal, known failure and failure was."""
    lines = ["# Conformance table", "", header, ""]
    lines += [
        "Outcomes: `pass`; `conv`: passes in the target's own declared convention, which "
        "differs from the reference's (the explanation is below); `n/a`: the target lacks "
        "what the property needs; `known`: fails, with a written reason below; `FAIL`: fails. "
        f"{run} Regenerate with the command above.",
        "",
        "## Targets",
        "",
    ]
    names = list(dict.fromkeys(c.target for c in cells))
    lines += [f"- `{name}`: {descriptions[name]}" for name in names]
    for where in dict.fromkeys((c.device, c.dtype) for c in cells):
        row_cells = [c for c in cells if (c.device, c.dtype) == where]
        lines += ["", f"## {where[0]}, {where[1]}", ""]
        lines.append("| property | " + " | ".join(f"`{c.target}`" for c in row_cells) + " |")
        lines.append("| --- |" + " --- |" * len(row_cells))
        for i, first in enumerate(row_cells[0].results):
            outcomes = [SYMBOL[c.results[i].outcome] for c in row_cells]
            lines.append(f"| `{first.property}` | " + " | ".join(outcomes) + " |")
        totals = [
            f"{c.count('pass') + c.count('convention')}/"
            f"{len(c.results) - c.count('not_applicable')}"
            for c in row_cells
        ]
        lines.append("| passed / applicable | " + " | ".join(totals) + " |")
    lines += ["", "## Notes", ""]
    lines += _notes(cells)
    return "\n".join(lines) + "\n"


def _notes(cells: list[CellReport]) -> list[str]:
    """Each distinct explanation once, with where it applies."""
    seen: dict[tuple[str, str, str], list[str]] = {}
    for c in cells:
        for r in c.results:
            if r.outcome == "convention":
                key = ("convention difference", c.target, r.reason)
            elif r.outcome == "known_failure":
                key = (
                    "known failure",
                    c.target,
                    f"{r.reason} (the check said: {_first_line(r.message)})",
                )
            elif r.outcome == "fail":
                key = ("FAILURE", c.target, f"{_first_line(r.message)}")
            elif r.refused:
                key = ("refused inputs", c.target, r.reason.split(": ", 1)[1])
            else:
                continue
            where = f"`{r.property}` ({c.device}, {c.dtype})"
            seen.setdefault(key, []).append(where)
    return [
        f"- **{kind}**, `{target}`: {text}. In: {', '.join(wheres)}."
        for (kind, target, text), wheres in seen.items()
    ]


@dataclass
class Merged:
    """Reports of several runs (table shards, check runs) as one."""

    cells: list[CellReport]
    descriptions: dict[str, str]
    run: str  # the profile and seed, for the page
    sources: list[str]
    doc: dict[str, object]

    def to_json(self) -> str:
        return json.dumps(self.doc, indent=2)


def merge_reports(paths: Sequence[Path]) -> Merged:
    """One table from the --json reports of `table` or `check`; ValueError names the report
    that cannot be read, or the cell two reports disagree on."""
    docs = [(str(path), _read_report(path)) for path in paths]
    versions = {str(doc["spec_version"]) for _, doc in docs}
    if len(versions) > 1:
        raise ValueError(f"the reports check different spec versions: {sorted(versions)}")
    cells: dict[tuple[str, str, str], tuple[str, dict[str, Any]]] = {}
    targets: dict[str, Any] = {}
    for source, doc in docs:
        targets.update(doc["targets"])
        for cell in doc["cells"]:
            key = (cell["target"], cell["device"], cell["dtype"])
            if key in cells and cells[key][1] != cell:
                raise ValueError(
                    f"cell {' | '.join(key)} is in {cells[key][0]} and {source} with "
                    "different results"
                )
            cells[key] = (source, cell)
    # A run's own order: every shard of a table names all its targets, and lists its cells
    # device- and dtype-major.
    names = list(targets)
    places = list(dict.fromkeys((device, dtype) for _, device, dtype in cells))
    order = sorted(cells, key=lambda k: (places.index(k[1:]), names.index(k[0])))
    built = [_cell_from_json(*cells[key]) for key in order]
    runs = {(c.profile, c.seed) for c in built}
    run = (
        f"Profile `{built[0].profile}` ({PROFILES[built[0].profile]['max_examples']} examples "
        f"per property, seed {built[0].seed})."
        if len(runs) == 1
        else "Profiles and seeds: as each cell of the merged reports says."
    )
    doc = {
        "spec_version": versions.pop(),
        "merged_from": [s for s, _ in docs],
        "targets": {n: targets[n] for n in dict.fromkeys(c.target for c in built)},
        "cells": [cells[key][1] for key in order],
    }
    descriptions = {n: str(t.get("description", "")) for n, t in targets.items()}
    sources = [f"{s} (`{d['command']}`)" if "command" in d else s for s, d in docs]
    return Merged(built, descriptions, run, sources, doc)


def _read_report(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ValueError(f"report {str(path)!r}: cannot read it: {err}") from err
    keys = ("spec_version", "targets", "cells")
    missing = [k for k in keys if not isinstance(doc, dict) or k not in doc]
    if missing:
        raise ValueError(
            f"report {str(path)!r}: not a transformer-spec JSON report (no {missing[0]!r}); "
            "write one with `table --json` or `check --json`"
        )
    result: dict[str, Any] = doc
    return result


def _cell_from_json(source: str, cell: dict[str, Any]) -> CellReport:
    try:
        results = [Result(**r) for r in cell["results"]]
        fields = {k: v for k, v in cell.items() if k != "results"}
        return CellReport(**fields, results=results)
    except (TypeError, KeyError) as err:
        raise ValueError(
            f"report {source!r}: cell {cell.get('target')!r} is not in this version's form "
            f"({err}); merge reports written by the same transformer-spec version"
        ) from err
