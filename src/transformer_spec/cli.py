"""The `transformer-spec` command: parses the options and hands each command to its module
in transformer_spec.commands (one module per command, named after it). A bad option is
answered at once, before torch or a target is loaded.

Exit codes: 0 success, 1 a check failed, 2 bad usage (argparse's convention).
"""

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from transformer_spec.properties.harness.profiles import (
    DEFAULT_CALL_TIMEOUT as DEFAULT_CALL_TIMEOUT,
)

from ._parser import build_parser
from .commands import board, check, copy_task, merge, mutants, spec, table

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "spec": spec.run,
    "check": check.run,
    "mutants": mutants.run,
    "table": table.run,
    "board": board.run,
    "merge": merge.run,
    "copy-task": copy_task.run,
}


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:  # output piped into `head` and cut short: not an error
        sys.stderr.close()
        return 0


def _main(argv: Sequence[str] | None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as done:  # --help, --version (0) or a usage mistake (2)
        return done.code if isinstance(done.code, int) else 2
    _hypothesis_storage_outside_the_project()
    return COMMANDS[args.command](args)


def _hypothesis_storage_outside_the_project() -> None:
    """Hypothesis keeps a cache (the constants it finds in the code) under ./.hypothesis: a
    run of ours would leave that folder in the user's project. It goes to the user's cache
    folder instead (worker processes inherit the variable), unless
    HYPOTHESIS_STORAGE_DIRECTORY already says where."""
    import os

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    os.environ.setdefault(
        "HYPOTHESIS_STORAGE_DIRECTORY", str(cache / "transformer-spec" / "hypothesis")
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
