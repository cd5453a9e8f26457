"""`python -m benchmarks.gpu`: its smoke run (every part, tiny, on the CPU) writes the report
and the JSON files, and bad options are one line and exit 2. The GPU run itself needs a GPU
and is not a test; this checks the command that makes it."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = (
    "## 1. Property suite on the reference",
    "## 2. Conformance table",
    "## 3. False-alarm study",
    "## 4. The test suite's CUDA tests",
    "## 5. Training throughput",
    "## 6. Environment",
)


def _gpu(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )


def test_the_smoke_run_writes_every_section_and_its_json(tmp_path: Path) -> None:
    run = _gpu("--smoke", "--out", str(tmp_path))
    assert run.returncode == 0, run.stderr[-3000:]
    report = (tmp_path / "report.md").read_text()
    assert "SMOKE RUN" in report and "**PASSED**" in report
    for heading in SECTIONS:
        assert f"\n{heading}\n" in report, heading
    for name in ("summary", "properties", "table", "false-alarms", "throughput"):
        assert json.loads((tmp_path / f"{name}.json").read_text()), name
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert {p["status"] for p in summary["parts"].values()} == {"passed"}, summary["parts"]
    figures = json.loads((tmp_path / "throughput.json").read_text())["results"]
    assert "error" not in str(figures)
    assert figures["reference (fused), compiled"]["note"] == ""  # one graph, no graph break
    assert (tmp_path / "tests.xml").exists() and (tmp_path / "log.txt").exists()


def test_a_spent_budget_skips_parts_and_still_reports(tmp_path: Path) -> None:
    run = _gpu("--smoke", "--budget", "5", "--out", str(tmp_path))
    assert run.returncode == 0, run.stderr  # nothing ran, so nothing failed
    report = (tmp_path / "report.md").read_text()
    assert "no time left in the budget" in report and report.count("Status: **skipped**") == 6
    for heading in SECTIONS:
        assert f"\n{heading}\n" in report, heading


_PARTS = """
import sys
from pathlib import Path
import benchmarks.gpu as g

folder = Path(sys.argv[1])
plan = g.Plan(folder, folder, True, 1, 60.0)
for code in ("import time; time.sleep(120)", "raise SystemExit(3)"):
    part = g.Part("p", "p", 1.0, lambda p, s: [sys.executable, "-c", code], lambda p: [])
    o = g.run_part(part, plan, 3.0, folder / "log")
    print(f"{o.status} | {o.reason} | {o.seconds < 20}")
"""


def test_a_hanging_part_is_ended_at_its_slice_and_a_crash_is_recorded(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-c", _PARTS, str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert run.stdout.splitlines() == [
        "timed out | still running after 3 s | True",
        "failed | exit code 3 | True",
    ], run.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--budget", "0"), "--budget 0: expected seconds > 0"),
        (("--jobs", "0"), "--jobs 0: expected >= 1"),
        (("--no-such-option",), "unrecognized arguments: --no-such-option"),
        (("--out", "/proc/no/such"), "--out '/proc/no/such': cannot create the folder"),
    ],
)
def test_a_bad_option_is_one_line_and_exit_2(args: tuple[str, ...], message: str) -> None:
    run = _gpu(*args)
    assert run.returncode == 2 and message in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr


def test_without_a_gpu_the_report_says_nothing_ran_and_it_exits_2(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    run = _gpu("--out", str(tmp_path))
    assert run.returncode == 2 and "no CUDA device on this machine" in run.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    skipped = [k for k, p in summary["parts"].items() if p["status"] == "skipped"]
    assert len(skipped) == 5 and summary["environment"]["cuda_available"] is False
    assert "no CUDA device on this machine" in (tmp_path / "report.md").read_text()
