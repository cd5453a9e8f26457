"""What a run says about a target that raises, prints, refuses everything, or fails for one
model kind only: enough to tell an adapter bug from a library bug without a debugger."""

import json
from pathlib import Path

import pytest
import torch
from transformer_spec.properties.checks import load_all
from transformer_spec.properties.harness.registry import Context
from transformer_spec.properties.harness.results import Result
from transformer_spec.properties.harness.runner import run_property
from transformer_spec.properties.harness.tolerance import tolerance_for
from transformer_spec.properties.targets.protocols import Target

from transformer_spec.cli import main

from . import diagnosed_targets as D

CPU = torch.device("cpu")
LEAK = "masking.causal_no_future_leak"


def _run(target_factory: str, prop: str, tmp_path: Path, *extra: str) -> dict[str, object]:
    doc = tmp_path / "run.json"
    name = f"tests.diagnosed_targets:{target_factory}"
    main(["check", name, "--profile", "ci", "--dtype", "float32", "--property", prop, *extra,
          "--json", str(doc)])  # fmt: skip
    result: dict[str, object] = json.loads(doc.read_text())["cells"][0]["results"][0]
    return result


def test_a_raised_exception_shows_the_targets_frames(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = _run("raises_deep", LEAK, tmp_path)
    assert result["outcome"] == "fail" and result["fault"] == "raised"
    trace = str(result["traceback"])
    assert "_softmax_kernel" in trace and "diagnosed_targets.py" in trace
    assert trace.splitlines()[-1].strip().startswith("raise RuntimeError")
    out = capsys.readouterr().out
    assert "where the target raised it (innermost frames):" in out
    assert "in _softmax_kernel" in out


def test_the_targets_prints_go_into_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = _run("chatty", LEAK, tmp_path)
    assert result["outcome"] == "fail"
    assert "kernel called with q (" in str(result["output"])
    out = capsys.readouterr().out
    printed = [line for line in out.splitlines() if line.startswith("kernel called")]
    assert printed == [], "the target's prints reached the run's own output"
    assert "the target printed (" in out and "| kernel called with q (" in out


def _refusals(target: Target) -> Result:
    p = load_all()["attention.permutation_equivariant"]
    ctx = Context(target, CPU, torch.float32, tolerance_for(torch.float32, CPU))
    return run_property(p, ctx, profile="ci", seed=0, count=True)


def test_a_refusal_declared_for_every_example_stops_at_once() -> None:
    result = _refusals(D.refuses_everything(always=True))
    assert result.outcome == "not_applicable" and result.refused == 1
    why = "this kernel is not built for this machine"
    assert result.reason == f"the target refuses every example: {why}"
    other = _refusals(D.refuses_everything(always=False))  # Hypothesis gives up on its own
    assert other.outcome == "not_applicable" and other.refused > 100
    assert other.reason.startswith("the library refused every example: this kernel")


def test_repeated_refusals_do_not_hide_the_examples_accepted() -> None:
    result = _refusals(D.refuses_odd_widths())
    assert result.outcome == "pass" and result.refused > 0 and result.examples > result.refused


def test_a_failure_reports_each_model_kind(capsys: pytest.CaptureFixture[str]) -> None:
    p = load_all()["model.output_shape"]
    target = D.encoder_decoder_crashes()
    ctx = Context(target, CPU, torch.float32, tolerance_for(torch.float32, CPU))
    result = run_property(p, ctx, profile="ci", seed=0)
    assert result.outcome == "fail"
    assert result.model_kinds == {"decoder_only": "pass", "encoder_decoder": "fail"}


def test_quiet_prints_only_failures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["check", "tests.diagnosed_targets:chatty", "--profile", "ci", "--dtype", "float32",
          "--property", "masking.*", "--property", "attention.perm*", "--quiet"])  # fmt: skip
    out = capsys.readouterr().out
    assert "FAIL  masking.causal_no_future_leak" in out
    assert "PASS" not in out and "do not apply" not in out
    assert "passed," in out  # each cell's counts stay


def test_quiet_and_verbose_together_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--quiet", "--verbose"]) == 2
    assert "not allowed with argument" in capsys.readouterr().err
