"""A declaration whose meaning changed keeps its old meaning for one minor version, with a
warning that names what to declare (issue 34): a pad_id alone meant right padding only in
0.1; since the left-padding properties it promises hidden <PAD> keys, from 0.3 on."""

import json
from pathlib import Path

import pytest

from transformer_spec.cli import main

PROPERTY = ("--property", "model.decoder_only.padding_has_no_effect", "--dtype", "float32")


def test_a_pad_id_alone_keeps_its_old_meaning_with_a_warning_naming_the_new_declarations(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    code = main(["check", "tests.old_declarations:pad_id_only", *PROPERTY, "--json", str(report)])
    out = capsys.readouterr().out
    assert code == 0, out  # checked with right padding only, as in 0.1: it passes
    assert "warning: PadIdOnly declares pad_id=0 but not masks_padding" in out
    for named in ("masks_padding = True", "masks_padding = False", "pad_id = None"):
        assert named in out
    assert "Declarations to renew (1):" in out
    results = json.loads(report.read_text())["cells"][0]["results"]
    assert any("masks_padding" in w for r in results for w in r["warnings"])


def test_the_new_declarations_say_what_they_mean_and_warn_of_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["check", "tests.old_declarations:declares_ordinary_pad", *PROPERTY]) == 0
    assert "warning:" not in capsys.readouterr().out
    # The same model declaring that it hides <PAD> keys is padded on the left, and fails.
    assert main(["check", "tests.old_declarations:declares_masking", *PROPERTY]) == 1
    out = capsys.readouterr().out
    assert "warning:" not in out and "FAIL  model.decoder_only.padding_has_no_effect" in out
