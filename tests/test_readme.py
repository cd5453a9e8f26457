"""The README's example runs as written."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert blocks, "README has no python example"
    namespace: dict[str, object] = {}
    exec(compile(blocks[0], str(README), "exec"), namespace)
    logits = namespace["logits"]
    same = namespace["same"]
    assert getattr(logits, "shape", None) == (2, 10, 100)
    assert (logits - same).abs().max().item() <= 1e-5  # type: ignore[operator]
