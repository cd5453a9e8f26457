"""Regenerate spec/structure_tests.json: which tests cite each `structure` clause (the
`spec` command shows them). Run from the repository root after adding or renaming a test
that cites a clause id:
    python tools/cite_index.py
"""

from pathlib import Path

from transformer_spec.spec import load_spec
from transformer_spec.spec._cited import INDEX, render, scan


def main() -> int:
    ids = [c.id for c in load_spec().clauses if c.kind == "structure"]
    Path("spec", INDEX).write_text(render(scan(Path("tests"), ids)), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
