"""`transformer-spec board`: every Hugging Face architecture of the installed transformers
checked through hf:CLASSNAME, a row each, as one pytest session (docs/hf-board.md)."""

import argparse
import time
from typing import TYPE_CHECKING

from .. import _options
from .._options import UsageError

if TYPE_CHECKING:
    from transformer_spec.properties.reports.board import Row
    from transformer_spec.properties.targets.loading import KnownFailure
from ._shared import _loading_error, _usage, _write


def run(args: argparse.Namespace) -> int:
    """Exit 0 when no row has an unexplained failure, 1 when one has, 2 for bad input."""
    try:
        chosen, known = _options_checked(args)
    except UsageError as err:
        return _usage("board", err)
    except _loading_error() as err:
        return _usage("board", err)
    if args.list:
        print("\n".join(f"{a} {c} {k}" for a, c, k in chosen))
        return 0
    rows, wall = _run(args, chosen)
    from transformer_spec.properties.reports import board as B

    B.judge(rows, known, args.dtype[0])
    header = _header(args, len(chosen), wall)
    extra = {
        "command": _command(args),
        "header": header,
        "dtype": args.dtype[0],
        "profile": args.profile,
        "seed": args.seed,
    }
    written = _write(args.markdown, lambda: B.render_markdown(rows, header))
    written &= _write(args.json, lambda: B.to_json(rows, extra))
    return _summary(rows, wall) or (0 if written else 2)


def _summary(rows: "list[Row]", wall: float) -> int:
    """Prints the counts per verdict and the unexplained failures; 1 when there is one."""
    from transformer_spec.properties.reports import board as B

    counts = ", ".join(f"{sum(r.verdict == v for r in rows)} {v}" for v in B.VERDICTS)
    print(f"{len(rows)} architectures: {counts}; {wall:.0f} s wall")
    failed = [r.architecture for r in rows if r.verdict == B.FAIL]
    if failed:
        print(f"FAIL: unexplained failures in {', '.join(failed)}")
    return 1 if failed else 0


def _options_checked(
    args: argparse.Namespace,
) -> "tuple[list[tuple[str, str, str]], list[KnownFailure]]":
    """The architectures to run and the known failures; UsageError for a bad option, before
    torch is imported."""
    args.dtype = _options.dtypes(args.dtype or ["float32"])
    if len(args.dtype) != 1:
        raise UsageError(f"--dtype: one dtype per board, got {args.dtype}")
    if args.jobs < 1:
        raise UsageError(f"--jobs {args.jobs}: expected >= 1")
    if not (args.memory_cap > 0 and args.time_cap > 0):
        raise UsageError(
            f"--memory-cap {args.memory_cap:g} / --time-cap {args.time_cap:g}: expected > 0"
        )
    shard = _options.shard(args.shard)
    _options.common_reports(args.markdown, args.json)
    from transformer_spec.properties.targets.adapters import hf
    from transformer_spec.properties.targets.loading import load_known_failures

    try:
        every: list[tuple[str, str, str]] = list(hf.architectures())
    except ImportError as err:
        raise UsageError(f"the board needs the 'hf' extra ({err}); {hf.EXTRA_HINT}") from None
    chosen = every
    if args.names:
        wanted = set(args.names)
        chosen = [a for a in every if a[0] in wanted or a[1] in wanted]
        unknown = wanted - {a[0] for a in chosen} - {a[1] for a in chosen}
        if unknown:
            raise UsageError(
                f"{sorted(unknown)[0]!r} is not a model type or class of transformers' "
                "language-model tables; see `transformer-spec board --list`"
            )
    if shard is not None:  # every N-th from the I-th: the shares stay alike in cost
        chosen = chosen[shard[0] - 1 :: shard[1]]
    known = load_known_failures(args.known_failures) if args.known_failures else []
    return chosen, known


def _run(args: argparse.Namespace, chosen: list[tuple[str, str, str]]) -> "tuple[list[Row], float]":
    from transformer_spec.properties.harness import session
    from transformer_spec.properties.harness.progress import Progress
    from transformer_spec.properties.harness.registry import select

    properties = sorted(p.id for p in select(args.property))
    index = {a: i for i, (a, _, _) in enumerate(chosen)}
    print(
        f"{len(chosen)} architectures, {args.jobs} worker(s), {args.dtype[0]}, profile "
        f"{args.profile}, seed {args.seed}: a line per architecture as it is done",
        flush=True,
    )
    start = time.perf_counter()
    with Progress(total=len(chosen)) as progress:

        def on_start(name: str) -> None:
            progress.note(index[name.split(":")[0]], f"{name.split(':')[1]}")

        def on_row(row: "Row") -> None:
            progress.finished(index[row.architecture])
            progress.line(_row_line(row, progress.done, progress.total))

        rows = session.run_board(
            chosen,
            properties,
            jobs=args.jobs,
            profile=args.profile,
            dtype=args.dtype[0],
            seed=args.seed,
            caps=(args.memory_cap, args.time_cap),
            on_row=on_row,
            on_start=on_start,
        )
    return rows, time.perf_counter() - start


def _row_line(row: "Row", done: int, total: int) -> str:
    failed = sum(r["outcome"] == "fail" for r in row.results)
    what = row.problem[:120] if row.problem else f"{row.applicable()} run, {failed} failed"
    return (
        f"[{done}/{total}] {row.architecture} ({row.class_name}): {what} "
        f"({row.seconds:.0f} s, {row.memory_mb:.0f} MB)"
    )


def _header(args: argparse.Namespace, n: int, wall: float) -> str:
    import platform

    import torch

    from transformer_spec.properties.reports.table import transformers_version

    return (
        f"`{_command(args)}`; torch {torch.__version__}{transformers_version()}, "
        f"{platform.machine()}, {args.jobs} worker(s); {n} architectures in {wall / 60:.0f} "
        f"minutes; caps {args.memory_cap:g} GB and {args.time_cap:g} s per architecture. "
        "Each architecture's first class of transformers' sequence-to-sequence, causal-LM "
        "and masked-LM tables, from a tiny random config (properties/targets/adapters/"
        "hf_config.py), on the CPU."
    )


def _command(args: argparse.Namespace) -> str:
    words = ["transformer-spec board", f"--dtype {args.dtype[0]}"]
    words += [f"--profile {args.profile}", f"--seed {args.seed}"]
    if args.known_failures:
        words.append(f"--known-failures {args.known_failures}")
    words += [f"--property {p}" for p in args.property or ()]
    if args.shard:
        words.append(f"--shard {args.shard}")
    return " ".join(words + list(args.names))
