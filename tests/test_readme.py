"""The README's examples run as written."""

import re
from pathlib import Path

import pytest

from transformer_spec.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


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
    (tmp_path / "my_kernels.py").write_text(_python_block("# my_kernels.py"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["check", "my_kernels:my_target", "--profile", "ci", "--dtype", "all"]) == 0
