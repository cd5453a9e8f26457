"""The nox matrix lists one session per (device, dtype) cell, and the benchmarks run."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("nox") is None, reason="nox is not installed here")
def test_nox_lists_one_session_per_cell() -> None:
    run = subprocess.run(["nox", "-l"], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    for device in ("cpu", "cuda"):
        for dtype in ("float64", "float32", "bfloat16", "float16"):
            assert f"* properties(device='{device}', dtype='{dtype}')" in run.stdout
    assert "- conformance" in run.stdout  # run on request only: it needs a target


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=ROOT)


def test_throughput_benchmark_runs_its_smoke_size() -> None:
    run = _bench("benchmarks.throughput", "--smoke")
    assert run.returncode == 0, run.stderr
    assert "ratio reference / nn.TransformerEncoder:" in run.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("benchmarks.suite_speed", "--dtype", "float8"), "--dtype 'float8': expected one of"),
        (("benchmarks.suite_speed", "--repeats", "0"), "--repeats: expected >= 1"),
        (("benchmarks.scaling", "--factors", "0"), "expected integers >= 1"),
        (("benchmarks.false_alarms", "--seeds", "0"), "--seeds and --jobs: expected >= 1"),
        (("benchmarks.false_alarms", "--dtype", "int8"), "--dtype 'int8': expected one of"),
    ],
)
def test_benchmarks_refuse_bad_options(args: tuple[str, ...], message: str) -> None:
    run = _bench(*args)
    assert run.returncode == 2 and message in run.stderr
