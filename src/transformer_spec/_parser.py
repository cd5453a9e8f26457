"""The options of every `transformer-spec` command, each with its help text; descriptions
say what a command prints as it runs and how long it takes on a 2-core machine."""

import argparse
import os
import sys
from typing import NoReturn

from transformer_spec.properties.harness.plan import add_options

from . import _options
from ._figures import about
from ._version import __version__


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line (what is wrong, what is accepted), exit 2."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: {message}; see `{self.prog} --help`", file=sys.stderr)
        raise SystemExit(2)


class _Help(argparse.HelpFormatter):
    """A text with line breaks (the list of targets) is kept as written; others are filled."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "\n".join(indent + line for line in text.splitlines())
        return super()._fill_text(text, width, indent)


_CORES = os.cpu_count() or 1


def _cell_options(parser: argparse.ArgumentParser, command: str) -> None:
    """The options that describe a run, declared once for the CLI and the pytest plugin
    (transformer_spec.properties.harness.plan.OPTIONS)."""
    add_options(parser.add_argument, "--", command)


def _spec_parser(sub: "argparse._SubParsersAction[_Parser]") -> None:
    spec = sub.add_parser(
        "spec",
        formatter_class=_Help,
        help="print the clauses of spec/ with what checks them and their sources",
        description="Print the spec's clauses: each with its kind, its statement, the "
        "properties (or, for structure clauses, the tests) that check it and the notes it "
        "comes from. Instant.",
    )
    spec.add_argument(
        "--kind", choices=["property", "structure", "informative"], help="only clauses of this kind"
    )
    spec.add_argument("--section", help="only this section (e.g. attention)")
    spec.add_argument("--json", action="store_true", help="machine-readable output")


CHECK = "transformer-spec check reference-math --profile ci --dtype float32"


def _check_parser(sub: "argparse._SubParsersAction[_Parser]") -> None:
    check = sub.add_parser(
        "check",
        help="check targets against the spec's properties",
        description="Check targets against the spec's properties, one (target, dtype) cell "
        "at a time; each result is printed as it finishes, failures again at the end. About "
        f"{about(CHECK)} per cell of the reference (profile ci) on a 2-core machine.",
        epilog=_options.targets_epilog(_options.CHECK_DEFAULT),
        formatter_class=_Help,
    )
    check.add_argument(
        "targets",
        nargs="*",
        metavar="TARGET",
        help="MODULE:FACTORY (looked up from the current folder too), mutant:NAME or a "
        f"built-in target (listed below; default: {_options.CHECK_DEFAULT})",
    )
    _cell_options(check, "check")
    check.add_argument(
        "--list",
        action="store_true",
        help="list the properties (id, adapter level, clauses) and exit; with --json, as JSON",
    )
    shown = check.add_mutually_exclusive_group()
    shown.add_argument(
        "-v", "--verbose", action="store_true", help="also list the properties that do not apply"
    )
    shown.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="print only failures, known failures and each cell's counts (the reports keep all)",
    )
    check.add_argument(
        "--json",
        nargs="?",
        const="-",
        metavar="PATH",
        help="write the JSON report here (with --list: print the list as JSON)",
    )
    check.add_argument("--junit-xml", metavar="PATH", help="write JUnit XML here")
    check.add_argument(
        "--html", metavar="PATH", help="write one self-contained HTML page here (pictures inline)"
    )
    check.add_argument(
        "--markdown", metavar="PATH", help="write a short markdown summary here (CI job summary)"
    )


def _mutants_parser(sub: "argparse._SubParsersAction[_Parser]") -> None:
    mutants = sub.add_parser(
        "mutants",
        formatter_class=_Help,
        help="check every property against the catalogue of seeded bugs (exit 1 if one survives)",
        description="Check every property against every mutant of the reference (one seeded "
        "bug each); a block per mutant as it is done. About "
        f"{about('transformer-spec mutants --jobs 2')} with --jobs 2 on a 2-core machine.",
    )
    mutants.add_argument(
        "names", nargs="*", metavar="NAME", help="only mutants whose name has this"
    )
    _cell_options(mutants, "mutants")
    mutants.add_argument(
        "--markdown", metavar="PATH", help="also write the kill matrix as markdown here"
    )
    mutants.add_argument("--list", action="store_true", help="list the mutants and exit")


def _board_parser(sub: "argparse._SubParsersAction[_Parser]") -> None:
    board = sub.add_parser(
        "board",
        formatter_class=_Help,
        help="check every Hugging Face architecture of the installed transformers (hf:CLASS)",
        description="Check every architecture of transformers' causal-LM, masked-LM and "
        "sequence-to-sequence tables through hf:CLASSNAME, each in a process of its own under "
        "a memory and a time cap, and write the board: a verdict per architecture (pass, "
        "refused with the reason, real bug with its known-failures entry, or FAIL). A line "
        "per architecture as it is done. About "
        f"{about('transformer-spec board --jobs 2')} for the 238 architectures of "
        "transformers 5.23 with --jobs 2 on a 2-core machine. Exit 1 while a failure has no "
        "known-failures entry.",
    )
    board.add_argument("names", nargs="*", metavar="ARCH", help="only these model types or classes")
    _cell_options(board, "board")
    board.add_argument(
        "--memory-cap", type=float, default=4.0, metavar="GB", help="per architecture (default 4)"
    )
    board.add_argument(
        "--time-cap",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="per architecture (default 600)",
    )
    board.add_argument("--markdown", metavar="PATH", help="write the board as markdown here")
    board.add_argument("--json", metavar="PATH", help="write the rows as JSON here (for merge)")
    board.add_argument("--list", action="store_true", help="list the architectures and exit")


def _table_parser(sub: "argparse._SubParsersAction[_Parser]") -> None:
    table = sub.add_parser(
        "table",
        help="run every built-in target (or those named) and print the conformance table",
        description="Run every built-in target that runs on the device (or those named) "
        "against every property, a line on stderr per cell as it is done, then print the "
        "table (markdown). About "
        f"{about('transformer-spec table --dtype float32 --jobs 2')} for --dtype float32 "
        "with --jobs 2 on a 2-core machine.",
        epilog=_options.targets_epilog(_options.TABLE_DEFAULT),
        formatter_class=_Help,
    )
    table.add_argument(
        "targets", nargs="*", metavar="TARGET", help=f"default: {_options.TABLE_DEFAULT}"
    )
    _cell_options(table, "table")
    table.add_argument("--markdown", metavar="PATH", help="also write the table here")
    table.add_argument(
        "--json", metavar="PATH", help="also write every cell's results as JSON here"
    )


def _copy_parser(sub: "argparse._SubParsersAction[_Parser]") -> None:
    copy = sub.add_parser(
        "copy-task",
        formatter_class=_Help,
        help="train the reference on the copy task (exit 1 below 99%%)",
        description="Train the reference encoder-decoder (2 + 2 layers, d_model 64) to copy "
        "10 random symbols, printing the loss every 50 steps, then greedy-decode 1000 "
        "held-out sequences; exit 1 below 99%% token accuracy. About "
        f"{about('transformer-spec copy-task')} on a 2-core machine.",
    )
    copy.add_argument("--steps", type=int, default=500, help="training steps (default 500)")
    copy.add_argument("--seed", type=int, default=0, help="random seed (default 0)")


def _merge_parser(sub: "argparse._SubParsersAction[_Parser]") -> None:
    merge = sub.add_parser(
        "merge",
        formatter_class=_Help,
        help="join the JSON reports of table shards (or check runs, or board shards) into one",
        description="Join the --json reports of several `table` shards or `check` runs (for "
        "example one CI job per device or per shard) into one conformance table, or of "
        "`board` shards into one board. Exit 1 when a cell (a board row) has a failure with no "
        "written reason, 2 for a bad or conflicting report.",
    )
    merge.add_argument("reports", nargs="+", metavar="REPORT", help="JSON reports (--json)")
    merge.add_argument("--markdown", metavar="PATH", help="also write the table here")
    merge.add_argument("--json", metavar="PATH", help="also write the merged report here")
    _cell_options(merge, "merge")  # --known-failures: boards are judged again


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="transformer-spec",
        description="Spec-driven conformance checks for Transformer implementations.",
    )
    parser.add_argument("--version", action="version", version=f"transformer-spec {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parsers = (
        _spec_parser,
        _check_parser,
        _mutants_parser,
        _table_parser,
        _board_parser,
        _merge_parser,
    )
    for add in (*parsers, _copy_parser):
        add(sub)
    return parser
