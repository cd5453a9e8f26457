"""The `transformer-spec` command.

Exit codes: 0 success, 1 a check failed, 2 bad usage (argparse's convention).
"""

import argparse
import json
import sys
import textwrap
from collections.abc import Sequence

from ._version import __version__


def _clause_table(kind: str | None, section: str | None, as_json: bool) -> int:
    from transformer_spec.spec import load_spec

    spec = load_spec()
    known_sections = [s.name for s in spec.sections]
    if section is not None and section not in known_sections:
        print(
            f"transformer-spec spec: unknown section {section!r}; known: {known_sections}",
            file=sys.stderr,
        )
        return 2
    clauses = [
        c
        for c in spec.clauses
        if (kind is None or c.kind == kind) and (section is None or c.section == section)
    ]
    if as_json:
        rows = [
            {
                "id": c.id,
                "section": c.section,
                "kind": c.kind,
                "statement": c.statement,
                "reason": c.reason,
                "properties": list(c.properties),
                "sources": [{"file": s.file, "section": s.section} for s in c.sources],
            }
            for c in clauses
        ]
        print(
            json.dumps(
                {"spec_version": spec.version, "clauses": rows}, indent=2, ensure_ascii=False
            )
        )
        return 0
    for c in clauses:
        sources = "; ".join(f"{s.file[:3]} {s.section}" for s in c.sources)
        print(f"{c.id:<28} {c.kind:<12} {sources}")
        for line in textwrap.wrap(c.statement, 92):
            print(f"    {line}")
        if c.kind == "informative":
            print(f"    (not checked: {c.reason})")
        else:
            print(f"    checked by: {', '.join(c.properties) or 'no property yet'}")
    counts = {
        k: sum(c.kind == k for c in clauses) for k in ("property", "structure", "informative")
    }
    print(
        f"\n{len(clauses)} clauses ({counts['property']} property, {counts['structure']} "
        f"structure, {counts['informative']} informative); spec version {spec.version}; "
        f"sources: {', '.join(spec.sources)}"
    )
    return 0


def _copy_task(steps: int, seed: int) -> int:
    import torch

    from transformer_spec.reference.copy_task import train_copy_task

    result = train_copy_task(steps=steps, seed=seed)
    print(
        f"copy task: accuracy {result.accuracy:.4f} after {result.steps} steps, "
        f"final loss {result.final_loss:.2e}, {result.seconds:.1f} s on "
        f"{torch.get_num_threads()} CPU threads"
    )
    return 0 if result.accuracy >= 0.99 else 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="transformer-spec",
        description="Spec-driven conformance checks for Transformer implementations.",
    )
    parser.add_argument("--version", action="version", version=f"transformer-spec {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    spec = sub.add_parser("spec", help="print the clauses of spec/ with their sources")
    spec.add_argument("--kind", choices=["property", "structure", "informative"])
    spec.add_argument("--section", help="only this section (e.g. attention)")
    spec.add_argument("--json", action="store_true", help="machine-readable output")
    copy = sub.add_parser(
        "copy-task", help="train the reference on the copy task (exit 1 below 99%%)"
    )
    copy.add_argument("--steps", type=int, default=500)
    copy.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "spec":
        return _clause_table(args.kind, args.section, args.json)
    return _copy_task(args.steps, args.seed)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
