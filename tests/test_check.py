"""`transformer-spec check`: exit codes, one-line usage errors, reports, known failures."""

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import torch
from transformer_spec.spec import load_spec

from transformer_spec.cli import main

BROKEN = "tests.broken_targets"


@pytest.fixture(autouse=True)
def _from_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(Path(__file__).resolve().parents[1])  # MODULE:FACTORY resolves from here


@pytest.mark.parametrize(
    ("factory", "property_id"),
    [
        ("no_causal_mask", "masking.causal_no_future_leak"),
        ("no_scale", "scaling.score_variance_is_one"),
        ("mixes_batch", "attention.batch_items_independent"),
    ],
)
def test_broken_targets_fail_with_a_counterexample(
    factory: str, property_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", f"{BROKEN}:{factory}", "--profile", "ci"]) == 1
    out = capsys.readouterr().out
    assert f"FAIL {property_id}" in out
    assert "Failing test case" in out  # Hypothesis's shrunk example
    assert f"reproduce: transformer-spec check {BROKEN}:{factory}" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no_such_module:make"], "cannot import module 'no_such_module'"),
        ([f"{BROKEN}:raises"], "the factory raised RuntimeError: cannot build the model"),
        ([f"{BROKEN}:not_a_target"], "the factory returned float, expected"),
        ([f"{BROKEN}:missing"], f"module '{BROKEN}' has no callable 'missing'"),
        (["just-a-name"], "expected MODULE:FACTORY or a built-in target, one of"),
        (["--dtype", "float8"], "--dtype 'float8': expected one of"),
        (["--device", "tpu"], "--device: 'tpu' is not a device; expected 'cpu' or 'cuda[:N]'"),
        (["--property", "nothing.*"], "matches no property"),
        (["--json", "/no/such/folder/report.json"], "does not exist or is not writable"),
        (["--known-failures", "/no/such/file"], "cannot read it"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_a_gpu_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--device", "cuda"]) == 2
    assert "this machine has no CUDA device" in capsys.readouterr().err


def test_malformed_known_failures_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "known.txt"
    bad.write_text("# comment\nmasking.causal_no_future_leak\n")
    assert main(["check", "--known-failures", str(bad)]) == 2
    assert "line 2: expected 'PROPERTY-ID-OR-PATTERN reason'" in capsys.readouterr().err


def test_known_failures_turn_failures_into_known_and_warn_when_stale(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    known = tmp_path / "known.txt"
    known.write_text(
        "masking.causal_* our kernel has no causal mode yet\n"
        "masking.padding_and_causal_combine same reason\n"
        "attention.nothing_like_this stale entry\n"
    )
    code = main(
        ["check", f"{BROKEN}:no_causal_mask", "--profile", "ci", "--known-failures", str(known)]
    )
    captured = capsys.readouterr()
    assert code == 0
    assert "KNOWN masking.causal_no_future_leak" in captured.out
    assert "line 3 (attention.nothing_like_this) matched no failure" in captured.err


def test_json_and_junit_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report, junit = tmp_path / "r.json", tmp_path / "r.xml"
    code = main(
        [
            "check",
            f"{BROKEN}:no_scale",
            "--profile",
            "ci",
            "--property",
            "scaling.*",
            "--json",
            str(report),
            "--junit-xml",
            str(junit),
        ]
    )
    assert code == 1
    doc = json.loads(report.read_text())
    assert doc["spec_version"] == load_spec().version and doc["environment"]["torch"]
    assert doc["targets"]["no-scale"]["conventions"]["mask_polarity"] == "true_attends"
    results = doc["cells"][0]["results"]
    assert {r["property"] for r in results} == {
        "scaling.score_variance_is_one",
        "scaling.softmax_does_not_saturate",
    }
    assert all(r["outcome"] == "fail" and r["clauses"] and r["counterexample"] for r in results)
    suite = ET.parse(junit).getroot()[0]
    assert suite.get("failures") == "2" and len(suite.findall("testcase/failure")) == 2


def test_a_loosened_tolerance_needs_a_reason_and_is_reported(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from transformer_spec.properties import Target

    from .broken_targets import scale_one_over_dk

    with pytest.raises(ValueError, match="needs a factor >= 1 and a written reason"):
        Target(
            name="t",
            description="d",
            attention=scale_one_over_dk().attention,
            loosen={"attention.*": (10.0, " ")},
        )
    assert (
        main(["check", f"{BROKEN}:loosened", "--profile", "ci", "--property", "attention.matches*"])
        == 0
    )
    out = capsys.readouterr().out
    assert (
        "tolerance x1e+06 for attention.matches_float64_formula: the kernel approximates exp" in out
    )
    assert "[tolerance x1e+06: the kernel approximates exp" in out
