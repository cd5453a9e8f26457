"""The README's examples run as written."""

import re
from pathlib import Path

import pytest

from transformer_spec.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def _python_block(marker: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    found = [b for b in blocks if marker in b]
    assert found, f"README has no python example containing {marker!r}"
    return str(found[0])


def test_readme_reference_example_runs() -> None:
    namespace: dict[str, object] = {}
    exec(compile(_python_block("build_model"), str(README), "exec"), namespace)
    logits, same = namespace["logits"], namespace["same"]
    assert getattr(logits, "shape", None) == (2, 10, 100)
    assert (logits - same).abs().max().item() <= 1e-5  # type: ignore[operator]


def test_readme_plug_in_example_passes_the_checker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "my_kernels.py").write_text(_python_block("# examples/my_kernels.py"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["check", "my_kernels:my_target", "--profile", "ci", "--dtype", "all"]) == 0


def test_readme_plug_in_example_is_the_file_in_examples() -> None:
    """The README shows examples/my_kernels.py (its docstring aside), which is linted and
    type-checked with the rest, and runs from the repository root as the README says."""
    shown = _python_block("# examples/my_kernels.py").removeprefix("# examples/my_kernels.py\n")
    source = (ROOT / "examples" / "my_kernels.py").read_text(encoding="utf-8")
    body = source[source.index('"""', 3) + 4 :].lstrip("\n")
    assert shown == body
    for command in re.findall(r"transformer-spec check (\S*my_kernels\S*)", README.read_text()):
        assert command == "examples.my_kernels:my_target", command
    assert "nox -s conformance -- examples.my_kernels:my_target" in README.read_text()


def test_readme_figures_are_current() -> None:
    from transformer_spec.properties.checks import load_all
    from transformer_spec.properties.targets import mutants
    from transformer_spec.spec import load_spec

    text = " ".join(README.read_text(encoding="utf-8").split())
    clauses = load_spec().clauses
    kinds = {k: sum(c.kind == k for c in clauses) for k in ("property", "structure", "informative")}
    assert (
        f"({len(clauses)} clauses: {kinds['property']} `property`, {kinds['structure']} "
        f"`structure`, {kinds['informative']} `informative`)" in text
    )
    assert f"It has {len(load_all())} properties" in text
    assert f"Every one of the {kinds['property']} `property` clauses" in text
    assert f"holds {len(mutants.CATALOGUE)} seeded bugs" in text
