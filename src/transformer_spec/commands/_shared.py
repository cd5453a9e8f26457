"""What the commands share: usage errors, the Plan from the options, writing reports, stale
known failures."""

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformer_spec.properties.harness.known import KnownFailure
    from transformer_spec.properties.harness.plan import Plan
    from transformer_spec.properties.harness.results import CellReport


def _usage(command: str, err: Exception) -> int:
    print(f"transformer-spec {command}: {err}", file=sys.stderr)
    return 2


def _plan(args: argparse.Namespace, **more: Any) -> "Plan":
    """The run the options describe, checked (transformer_spec.properties.harness.plan)."""
    from transformer_spec.properties.harness.plan import make_plan

    return make_plan(
        args.targets,
        device=args.device,
        dtype=args.dtype,
        profile=args.profile,
        seed=args.seed,
        call_timeout=args.call_timeout,
        property=args.property,
        known_failures=args.known_failures,
        jobs=args.jobs,
        **more,
    )


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
    from transformer_spec.properties.harness.known import stale_entries

    for entry in stale_entries(known, cells):
        print(
            f"warning: known-failures line {entry.line} ({entry.written()}) matched no failure "
            "in this run: the entry may be stale",
            file=sys.stderr,
        )
