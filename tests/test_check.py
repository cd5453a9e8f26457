"""`transformer-spec check`: exit codes, one-line usage errors, reports, known failures."""

import json
import re
import sys
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
    assert re.search(rf"FAIL +{re.escape(property_id)} ", out)
    assert "Failing test case" in out  # Hypothesis's shrunk example
    assert f"reproduce: transformer-spec check {BROKEN}:{factory}" in out
    summary = out[out.index("\nFailures (") :]  # the failures again, at the end
    assert f"FAIL  {property_id} in " in summary and summary.rstrip().endswith(
        "applicable results passed)"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no_such_module:make"], "cannot import module 'no_such_module'"),
        ([f"{BROKEN}:raises"], "the factory raised RuntimeError: cannot build the model"),
        ([f"{BROKEN}:not_a_target"], "the factory returned float, expected"),
        ([f"{BROKEN}:missing"], f"module '{BROKEN}' has no callable 'missing'"),
        (["just-a-name"], "expected MODULE:FACTORY, mutant:NAME or a built-in target, one of"),
        (["--dtype", "float8"], "--dtype 'float8': expected one of"),
        (["--device", "tpu"], "--device: 'tpu' is not a device; expected 'cpu' or 'cuda[:N]'"),
        (["--property", "nothing.*"], "matches no property"),
        (["--json", "/no/such/folder/report.json"], "does not exist or is not writable"),
        (["--junit-xml", "tests"], "report path 'tests': is a folder; expected a file path"),
        (["--known-failures", "/no/such/file"], "cannot read it"),
        (["--known-failures", "tests"], "known-failures file 'tests': cannot read it"),
        (["--profile", "fast"], "invalid choice: 'fast' (choose from 'quick', 'ci', 'thorough')"),
        (["--seed", "one"], "argument --seed: invalid int value: 'one'"),
        (["--call-timeout", "-1"], "--call-timeout -1: expected seconds >= 0 (0: no limit)"),
        (["--dtype", "all", "--dtype", "int8"], "--dtype 'all': expected one of"),
        (["--no-such-option"], "unrecognized arguments: --no-such-option"),
        ([f"{BROKEN}:_reference"], "the factory raised TypeError"),
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


def test_known_failures_file_that_is_not_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    binary = tmp_path / "known.bin"
    binary.write_bytes(b"\xff\xfe\x00 not utf-8")
    assert main(["check", "--known-failures", str(binary)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot read it: 'utf-8' codec" in err, err


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("import sys\nsys.exit(4)\n", "cannot import module 'bad_target_module': SystemExit: 4"),
        ("def f(:\n", "cannot import module 'bad_target_module': SyntaxError"),
        ("import no_such_dependency\n", "ModuleNotFoundError: No module named 'no_such_dep"),
        ("def make():\n    raise SystemExit(5)\n", "the factory raised SystemExit: 5"),
        ("def make():\n    return None\n", "the factory returned NoneType, expected"),
        ("make = 3\n", "module 'bad_target_module' has no callable 'make'"),
    ],
)
def test_target_modules_that_cannot_be_loaded(
    source: str,
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "bad_target_module.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "bad_target_module", raising=False)
    assert main(["check", "bad_target_module:make"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err


def test_a_report_that_cannot_be_written_after_the_run_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from transformer_spec import _options

    monkeypatch.setattr(_options, "writable", lambda path: None)  # the folder vanishes mid-run
    args = ["check", "--property", "attention.matches_float64_formula"]
    assert main([*args, "--json", str(tmp_path / "gone" / "r.json")]) == 2
    captured = capsys.readouterr()
    assert "OK: 0 failing properties" in captured.out  # the run itself was reported
    assert "cannot write it" in captured.err


def test_malformed_known_failures_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "known.txt"
    bad.write_text("# comment\nmasking.causal_no_future_leak\n")
    assert main(["check", "--known-failures", str(bad)]) == 2
    expected = "line 2: expected 'PROPERTY-ID-OR-PATTERN[@DTYPE-OR-DEVICE,...] reason'"
    assert expected in capsys.readouterr().err


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


def test_entries_for_other_targets_or_dtypes_are_not_called_stale(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One file shared by several runs: an entry this run cannot judge is not stale here."""
    known = tmp_path / "known.txt"
    known.write_text(
        "other-target/masking.causal_no_future_leak about another target\n"
        "masking.causal_no_future_leak@bfloat16 about bfloat16 only\n"
        "reference-math/masking.causal_no_future_leak@float32 about this cell, and stale\n"
    )
    argv = ["check", "reference-math", "--dtype", "float32", "--profile", "ci"]
    argv += ["--property", "masking.causal_no_future_leak", "--known-failures", str(known)]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "line 3 (reference-math/masking.causal_no_future_leak@float32) matched no" in err
    assert "line 1" not in err and "line 2" not in err


def test_table_warns_about_stale_known_failures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    known = tmp_path / "known.txt"
    known.write_text("reference-math/attention.nothing_like_this stale entry\n")
    args = ["table", "reference-math", "--jobs", "1", "--known-failures", str(known)]
    assert main(args) == 0
    assert "line 1 (reference-math/attention.nothing_like_this) matched no failure" in (
        capsys.readouterr().err
    )


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


def test_results_stream_aligned_and_not_applicable_ones_are_counted_not_listed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A single-kernel target in every dtype: a line per applicable property, each cell's
    not-applicable properties in one line; `--verbose` lists them."""
    argv = ["check", f"{BROKEN}:no_scale", "--dtype", "all", "--property", "*e*"]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "N/A" not in out and "not applicable" not in out
    assert out.count("do not apply to this target (") == 4 and "--verbose lists them" in out
    streamed = out[: out.index("\nFailures (")].splitlines()
    lines = [line for line in streamed if re.match(r"  (PASS|FAIL|CONV|KNOWN) ", line)]
    assert lines and len(lines) % 4 == 0, lines  # the same applicable properties per cell
    columns = {re.search(r"\d+\.\d\ds  ", line).start() for line in lines}  # type: ignore[union-attr]
    assert len(columns) == 1, lines  # the seconds column is aligned, long ids or not
    assert main([*argv, "--verbose"]) == 1
    verbose = capsys.readouterr().out
    assert "  N/A   model." in verbose and "(target offers no model)" in verbose


def test_wording_is_singular_for_one(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["check", f"{BROKEN}:no_scale", "--property", "scaling.score_variance_is_one"]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "FAILED: 1 failing property in 1 cell (0 of 1 applicable results passed)" in out
