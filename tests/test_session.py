"""`check --jobs N`: the plan as one pytest session spread over worker processes by
pytest-xdist gives the results one process gives, in the same order and reports."""

import json
import re
from pathlib import Path

import pytest

from transformer_spec.cli import main


def _results(doc: Path) -> list[tuple[str, str, str, str, str]]:
    """Each result without its timing: (target, dtype, property, outcome, message)."""
    cells = json.loads(doc.read_text())["cells"]
    return [
        (c["target"], c["dtype"], r["property"], r["outcome"], r["message"])
        for c in cells
        for r in c["results"]
    ]


def test_jobs_give_the_results_of_one_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["check", "mutant:causal-off-by-one", "reference-math", "mutant:scale-missing"]
    argv += ["--dtype", "float32", "--dtype", "bfloat16", "--profile", "ci"]
    argv += ["--property", "attention.*", "--property", "masking.causal*"]
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    assert main([*argv, "--json", str(one)]) == 1
    serial = capsys.readouterr().out
    assert main([*argv, "--jobs", "2", "--json", str(two)]) == 1
    parallel = capsys.readouterr().out
    assert _results(two) == _results(one)
    verdicts = {
        (t, d): o for t, d, p, o, _ in _results(two) if p == "masking.causal_no_future_leak"
    }
    assert verdicts[("mutant:scale-missing", "float32")] == "pass"  # each mutant on its own
    assert verdicts[("mutant:causal-off-by-one", "float32")] == "fail"

    def shape(out: str) -> list[str]:  # the lines without their timings
        lines = [line for line in out.splitlines() if "worker processes" not in line]
        return [re.sub(r"\d+\.\d\ds  ", "", line) for line in lines]

    assert shape(parallel) == shape(serial)


def test_a_hang_is_diagnosed_in_a_worker(tmp_path: Path) -> None:
    """The per-call time limit (SIGALRM) works in pytest-xdist's workers too."""
    doc = tmp_path / "run.json"
    argv = ["check", "tests.faulty_targets:hangs", "--dtype", "float32", "--profile", "ci"]
    argv += ["--property", "masking.causal_no_future_leak", "--call-timeout", "1"]
    assert main([*argv, "--jobs", "2", "--json", str(doc)]) == 1
    result = json.loads(doc.read_text())["cells"][0]["results"][0]
    assert result["fault"] == "hang", result
