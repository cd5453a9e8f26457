"""`check --jobs N`: the plan as one pytest session spread over worker processes by
pytest-xdist gives the results one process gives, in the same order and reports."""

import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from transformer_spec.properties.harness import plan as plan_module

from transformer_spec.cli import main

ROOT = Path(__file__).parents[1]


@pytest.fixture
def workers_always(monkeypatch: pytest.MonkeyPatch) -> None:
    """--jobs 2 starts workers even for these small plans (the rule would keep them in this
    process: see test_a_small_plan_runs_in_this_process)."""
    monkeypatch.setattr(plan_module, "SMALL_RUN", 0)


def _results(doc: Path) -> list[tuple[str, str, str, str, str]]:
    """Each result without its timing: (target, dtype, property, outcome, message)."""
    cells = json.loads(doc.read_text())["cells"]
    return [
        (c["target"], c["dtype"], r["property"], r["outcome"], r["message"])
        for c in cells
        for r in c["results"]
    ]


def test_jobs_give_the_results_of_one_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], workers_always: None
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


def test_a_hang_is_diagnosed_in_a_worker(tmp_path: Path, workers_always: None) -> None:
    """The per-call time limit (SIGALRM) works in pytest-xdist's workers too."""
    doc = tmp_path / "run.json"
    argv = ["check", "tests.faulty_targets:hangs", "--dtype", "float32", "--profile", "ci"]
    argv += ["--property", "masking.causal_no_future_leak", "--call-timeout", "1"]
    assert main([*argv, "--jobs", "2", "--json", str(doc)]) == 1
    result = json.loads(doc.read_text())["cells"][0]["results"][0]
    assert result["fault"] == "hang", result


def test_one_plan_and_one_load_of_each_target_per_process(tmp_path: Path) -> None:
    """`check --jobs 2`: the controller makes the Plan, each worker reads it (none makes
    another), and no process loads a target twice ($TRANSFORMER_SPEC_TRACE lists
    them)."""
    trace = tmp_path / "trace.txt"
    env = {**os.environ, "TRANSFORMER_SPEC_TRACE": str(trace)}
    argv = ["check", "reference-math", "torch-sdpa-math", "--jobs", "2", "--profile", "quick"]
    run = subprocess.run(
        [sys.executable, "-m", "transformer_spec", *argv, "--seed", "0", "-v"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "2 worker processes" in run.stdout
    lines = [line.split() for line in trace.read_text().splitlines()]
    plans = Counter(pid for pid, what, _ in lines if what == "plan")
    loads = Counter((pid, name) for pid, what, name in lines if what == "load")
    made = [pid for pid, what, how in lines if what == "plan" and how == "made"]
    assert len(plans) == 3 and max(plans.values()) == 1, lines  # the controller, 2 workers
    assert len(made) == 1, lines  # the workers only read the controller's
    assert max(loads.values()) == 1, lines
    both = {"reference-math", "torch-sdpa-math"}
    assert {name for p, name in loads if p == made[0]} == both  # the controller's reports
    for pid in plans:  # a worker loads what its items need
        assert {name for p, name in loads if p == pid} <= both


def test_a_small_plan_runs_in_this_process(capsys: pytest.CaptureFixture[str]) -> None:
    """--jobs 2 on a plan with few property runs that can apply: no worker starts, and
    --verbose says why."""
    argv = ["check", "torch-sdpa-math", "--jobs", "2", "--profile", "quick", "-v"]
    assert main([*argv, "--property", "attention.*"]) == 0
    out = capsys.readouterr().out
    assert "7 property runs can apply (fewer than 60): one process" in out
