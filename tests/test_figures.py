"""The commands' --help and the README's table of commands quote their figures from one
source, src/transformer_spec/_figures.py (issue 34: check's help said 25 s per cell where
the README said 13 s; table's help gave two defaults)."""

import argparse
import re
from pathlib import Path

import pytest

from transformer_spec import _figures, _options
from transformer_spec._parser import build_parser

ROOT = Path(__file__).resolve().parents[1]


def _help(command: str) -> str:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return " ".join(sub.choices[command].format_help().split())


@pytest.mark.parametrize("command", sorted(_figures.FIGURES))
def test_the_readme_row_of_each_command_says_its_figure(command: str) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = [line for line in readme.splitlines() if line.startswith(f"| `{command}`")]
    assert len(rows) == 1, f"README has {len(rows)} rows for {command}"
    assert f"| {_figures.FIGURES[command]}" in rows[0]


@pytest.mark.parametrize("name", ["check", "table", "mutants", "board", "copy-task"])
def test_every_figure_a_help_text_gives_comes_from_the_one_source(name: str) -> None:
    text = _help(name)
    said = re.findall(r"About (.+?) (?:per|for|with|on) ", text)
    assert said and all(figure in _figures.FIGURES.values() for figure in said), said


def test_each_command_names_one_default_for_its_targets() -> None:
    check, table = _help("check"), _help("table")
    assert f"default: {_options.CHECK_DEFAULT}" in check and _options.TABLE_DEFAULT not in check
    assert f"default: {_options.TABLE_DEFAULT}" in table and _options.CHECK_DEFAULT not in table
