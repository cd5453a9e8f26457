"""The run's reports: the terminal text, a JSON document and JUnit XML."""

import json
import platform
import sys
import xml.etree.ElementTree as ET
from dataclasses import asdict
from typing import Any

import torch

from transformer_spec import __version__

from .runner import CellReport
from .targets import Target


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
    "not_applicable": "N/A ",
    "known_failure": "KNOWN",
    "convention": "CONV",
}


def cell_text(cell: CellReport) -> list[str]:
    where = f"{cell.target} | {cell.device} | {cell.dtype}"
    lines = [f"[{where} | profile {cell.profile} | seed {cell.seed}]"]
    for r in cell.results:
        tag = TAGS[r.outcome]
        extra = f"  ({r.reason})" if r.reason else ""
        extra += f"  [{r.tolerance_note}]" if r.tolerance_note else ""
        lines.append(f"  {tag} {r.property:<48} {r.seconds:6.2f}s  {', '.join(r.clauses)}{extra}")
        if r.outcome == "fail":
            lines += [f"       {line}" for line in r.message.splitlines()]
            lines += [f"       {line}" for line in r.counterexample.splitlines()]
            if r.reproduce:
                lines.append(f"       reproduce: {r.reproduce}")
    lines.append(
        f"  {cell.count('pass')} passed, {cell.count('fail')} failed, "
        f"{cell.count('not_applicable')} not applicable, "
        f"{cell.count('known_failure')} known failures, "
        f"{cell.count('convention')} convention differences"
    )
    return lines


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
