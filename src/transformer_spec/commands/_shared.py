"""What the commands share: usage errors, the Plan from the options, loading targets,
writing reports, stale known failures."""

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformer_spec.properties.harness.plan import Plan
    from transformer_spec.properties.harness.runner import CellReport
    from transformer_spec.properties.targets.loading import KnownFailure
    from transformer_spec.properties.targets.protocols import Target


def _usage(command: str, err: Exception) -> int:
    print(f"transformer-spec {command}: {err}", file=sys.stderr)
    return 2


def _loading_error() -> type[Exception]:
    """The library's usage error (a bad target, a bad known-failures file). Named in an
    `except` clause after `UsageError`, so that a bad option imports nothing."""
    from transformer_spec.properties.targets.loading import UsageError as LoadingError

    return LoadingError


def _plan(args: argparse.Namespace, default_targets: Sequence[str]) -> "Plan":
    """The run the options describe, checked (transformer_spec.properties.harness.plan)."""
    from transformer_spec.properties.harness.plan import make_plan

    return make_plan(
        args.targets or default_targets,
        device=args.device,
        dtypes=args.dtype,
        profile=args.profile,
        seed=args.seed,
        call_timeout=args.call_timeout,
        properties=args.property or (),
        known_failures=args.known_failures,
        default="ci" if args.command == "table" else None,
    )


def _load_targets(names: Sequence[str]) -> "dict[str, Target]":
    from transformer_spec.properties.targets import loading

    return {name: loading.peek(name) for name in names}


def _write(path: str | None, text: "Callable[[], str]") -> bool:
    """Write a report; False (with one line) when it cannot be written after the run."""
    if not path:
        return True
    try:
        Path(path).write_text(text(), encoding="utf-8")
    except OSError as err:
        print(f"transformer-spec: report path {path!r}: cannot write it: {err}", file=sys.stderr)
        return False
    return True


def _warn_stale(known: "Sequence[KnownFailure]", cells: "Sequence[CellReport]") -> None:
    from transformer_spec.properties.targets.loading import stale_entries

    for entry in stale_entries(known, cells):
        print(
            f"warning: known-failures line {entry.line} ({entry.written()}) matched no failure "
            "in this run: the entry may be stale",
            file=sys.stderr,
        )
