"""Which tests check the `structure` clauses. A test cites the clauses it checks in a comment
in its body, `# spec: EMB-SHAPE, EMB-INIT`; the index of those citations is generated from
tests/ (`python tools/cite_index.py`) and shipped beside the clauses, since tests/ is not
installed. tests/test_cli.py keeps it current."""

import ast
import json
import re
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

INDEX = "structure_tests.json"
_ID = re.compile(r"\b[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+\b")
_CITE = re.compile(r"^\s*# spec: (.*)$", re.M)


def cited_by_tests() -> dict[str, tuple[str, ...]]:
    """Clause id -> the tests (`tests/FILE::FUNCTION`) that cite it, from the shipped index."""
    text = resources.files("transformer_spec.spec").joinpath(INDEX).read_text(encoding="utf-8")
    return {clause: tuple(tests) for clause, tests in json.loads(text).items()}


def scan(folder: Path, ids: Iterable[str]) -> dict[str, list[str]]:
    """Clause id -> the test functions in folder/test_*.py with a `# spec:` comment that
    names it; only the ids in `ids`."""
    wanted = set(ids)
    found: dict[str, list[str]] = {}
    for path in sorted(folder.glob("test_*.py")):
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        for node in ast.walk(ast.parse(text)):
            if not isinstance(node, ast.FunctionDef) or not node.name.startswith("test_"):
                continue
            source = "\n".join(lines[node.lineno - 1 : node.end_lineno])
            cited = {c for line in _CITE.findall(source) for c in _ID.findall(line)}
            for clause in sorted(cited & wanted):
                found.setdefault(clause, []).append(f"{folder.name}/{path.name}::{node.name}")
    return dict(sorted(found.items()))


def render(index: dict[str, list[str]]) -> str:
    return json.dumps(index, indent=2, ensure_ascii=False) + "\n"
