"""`transformer-spec spec`: the clauses, each with what checks it and the notes it comes from,
named by their titles."""

import json
import re
import textwrap
from collections.abc import Mapping, Sequence

from transformer_spec.spec import Clause, Spec

Tests = Mapping[str, tuple[str, ...]]  # clause id -> the tests that cite it


def short_title(title: str) -> str:
    """A note's title up to its first comma or colon: `Transformer notes in Chinese`."""
    return re.split(r"[,:]", title, maxsplit=1)[0].strip()


def _checked_by(c: Clause, tests: Tests) -> list[str]:
    """What checks a clause: its properties; for a structure clause, the tests citing it."""
    if c.kind == "informative":
        return [f"(not checked: {c.reason})"]
    lines = [f"checked by: {', '.join(c.properties)}"] if c.properties else []
    if c.kind == "structure":
        cited = tests.get(c.id, ())
        lines += [f"tested by: {test}" for test in cited] or ["tested by: no test cites it yet"]
    return lines or ["checked by: no property yet"]


def clause_lines(c: Clause, titles: Mapping[str, str], tests: Tests) -> list[str]:
    lines = [f"{c.id}  ({c.kind})"]
    lines += [f"    {line}" for line in textwrap.wrap(c.statement, 92)]
    for text in _checked_by(c, tests):
        lines += textwrap.wrap(text, 96, initial_indent="    ", subsequent_indent="        ")
    for i, s in enumerate(c.sources):
        label = "from: " if i == 0 else "      "
        lines.append(f"    {label}{short_title(titles[s.file])} > {s.section}")
    return lines


def spec_text(spec: Spec, clauses: Sequence[Clause], tests: Tests) -> list[str]:
    lines = []
    for c in clauses:
        lines += [*clause_lines(c, spec.titles, tests), ""]
    counts = {
        k: sum(c.kind == k for c in clauses) for k in ("property", "structure", "informative")
    }
    lines += ["Sources (the notes the clauses are written from):"]
    lines += [f"  {title}" for title in spec.sources.values()]
    if spec.published:
        lines += ["Published sources (of the clauses beyond the notes):"]
        lines += [f"  {title}" for title in spec.published.values()]
    lines.append(
        f"\n{len(clauses)} clauses ({counts['property']} property, {counts['structure']} "
        f"structure, {counts['informative']} informative); spec version {spec.version}"
    )
    return lines


def spec_json(spec: Spec, clauses: Sequence[Clause], tests: Tests) -> str:
    rows = [
        {
            "id": c.id,
            "section": c.section,
            "kind": c.kind,
            "statement": c.statement,
            "reason": c.reason,
            "beyond_notes": c.beyond_notes,
            "properties": list(c.properties),
            "tests": list(tests.get(c.id, ())),
            "sources": [
                {"title": spec.titles[s.file], "file": s.file, "section": s.section}
                for s in c.sources
            ],
        }
        for c in clauses
    ]
    return json.dumps({"spec_version": spec.version, "clauses": rows}, indent=2, ensure_ascii=False)
