"""The console script: --version, spec, copy-task; exit codes."""

import json
import re
import subprocess
import sys

import pytest

from transformer_spec import __version__
from transformer_spec.cli import main


def test_version() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "transformer_spec", "--version"], capture_output=True, text=True
    )
    assert run.returncode == 0 and run.stdout.strip() == f"transformer-spec {__version__}"


def test_spec_table_lists_clauses_with_sources(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["spec"]) == 0
    out = capsys.readouterr().out
    assert "ATTN-ROWSUM" in out and "004 Architecture" in out
    assert "informative" in out and out.rstrip().splitlines()[-1].startswith("1")


def test_spec_json_and_filters(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["spec", "--json", "--kind", "informative", "--section", "scaling"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["clauses"] and all(
        c["kind"] == "informative" and c["section"] == "scaling" for c in data["clauses"]
    )


def test_unknown_section_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["spec", "--section", "nope"]) == 2
    assert "unknown section 'nope'" in capsys.readouterr().err


def test_unknown_command_exits_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["frobnicate"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "invalid choice: 'frobnicate' (choose from" in err


def test_mutants_list_names_each_mutant_and_its_bug(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mutants", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) >= 30 and "causal-off-by-one: " in "\n".join(lines)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["mutants", "no-such-mutant"], "no mutant matches ['no-such-mutant']"),
        (["mutants", "--jobs", "0"], "--jobs 0: expected >= 1"),
        (["mutants", "--markdown", "/no/such/folder/m.md"], "does not exist or is not writable"),
        (["copy-task", "--steps", "0"], "--steps 0: expected >= 1"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_mutants_run_on_one_mutant_reports_its_killers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A chosen subset skips the every-property-catches-a-mutant check: exit 0 when killed.
    assert main(["mutants", "padding-on-the-left", "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    assert "killed   padding-on-the-left" in out
    assert re.search(r"vocabulary\.pad_batch_keeps_tokens \(\d+\)", out), out
