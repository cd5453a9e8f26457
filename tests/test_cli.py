"""The console script: --version, spec, copy-task; exit codes."""

import json
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


def test_unknown_command_exits_2() -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["frobnicate"])
    assert exit_info.value.code == 2
