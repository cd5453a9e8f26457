"""The pytest plugin: properties run as pytest tests for the chosen target and cell, and bad
options stop the session once with a usage error."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def _pytest(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    cmd += ["--pyargs", "transformer_spec.properties", "--ts-profile", "quick", *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300)


def test_reference_attention_properties_pass() -> None:
    run = _pytest("-k", "weights_are_distributions", "--ts-dtype", "bfloat16")
    assert run.returncode == 0, run.stdout + run.stderr
    assert " passed" in run.stdout


def test_a_broken_target_fails_with_its_counterexample() -> None:
    run = _pytest(
        "-k", "causal_no_future_leak", "--ts-target", "tests.broken_targets:no_causal_mask"
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "MASK-CAUSAL-NO-LEAK" in run.stdout and "Failing test case" in run.stdout
    assert "reproduce: transformer-spec check tests.broken_targets:no_causal_mask" in run.stdout
    # The failure names a pytest command that runs that item alone (a node id printed by
    # pytest cannot be given back to `pytest --pyargs`); run it.
    line = next(x for x in run.stdout.splitlines() if "this item alone under pytest: " in x)
    words = line.split("this item alone under pytest: ", 1)[1].split()
    assert words[:3] == ["pytest", "--pyargs", "transformer_spec.properties"]
    again = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *words[1:]],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert again.returncode == 1 and "1 failed" in again.stdout, again.stdout + again.stderr


def test_a_bad_target_stops_the_session_once() -> None:
    run = _pytest("--ts-target", "no_such_module_here:factory")
    assert run.returncode == 4, run.stdout + run.stderr
    out = run.stdout + run.stderr
    assert len([line for line in out.splitlines() if "no_such_module_here" in line]) == 1, out
    assert "passed" not in out and "failed" not in out


def test_a_bad_dtype_stops_the_session_once() -> None:
    run = _pytest("--ts-dtype", "float8")
    assert run.returncode == 4
    out = run.stdout + run.stderr
    assert len([line for line in out.splitlines() if "--ts-dtype 'float8'" in line]) == 1, out


def test_a_bad_mutant_name_stops_the_session_once() -> None:
    run = _pytest("--ts-target", "mutant:no-such-bug")
    assert run.returncode == 4
    out = run.stdout + run.stderr
    assert len([line for line in out.splitlines() if "'mutant:no-such-bug'" in line]) == 1, out


def test_cuda_without_a_gpu_skips_every_property_with_the_reason() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device: the skip without one cannot be seen here")
    run = _pytest("-k", "weights_are_distributions", "-rs", "--ts-device", "cuda")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "no CUDA device" in run.stdout and "skipped" in run.stdout
