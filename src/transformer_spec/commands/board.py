"""`transformer-spec board`: every Hugging Face architecture of the installed transformers
checked through hf:CLASSNAME, a row each, as one pytest session (docs/hf-board.md)."""

import argparse
import time
from typing import TYPE_CHECKING, Any

from .. import _options
from .._options import UsageError

if TYPE_CHECKING:
    from transformer_spec.properties.harness.plan import Plan
    from transformer_spec.properties.reports.board import Row
from ._shared import _usage, _write


def run(args: argparse.Namespace) -> int:
    """Exit 0 when no row has an unexplained failure, 1 when one has, 2 for bad input."""
    try:
        plan = _board_plan(args)
    except UsageError as err:
        return _usage("board", err)
    chosen = [tuple(t.split(":")) for t, _ in plan.cells()]
    if args.list:
        print("\n".join(" ".join(a) for a in chosen))
        return 0
    # As the plan chose them, for the header, the command and the JSON (merge reads them).
    args.dtype, args.profile, args.seed, args.jobs = (
        list(plan.dtypes),
        plan.profile,
        plan.seed,
        plan.jobs,
    )
    rows, wall = _run(plan)
    from transformer_spec.properties.reports import board as B

    B.judge(rows, list(plan.known), plan.dtypes[0])
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


def _board_plan(args: argparse.Namespace) -> "Plan":
    """The board as a Plan (an item per architecture); UsageError for a bad option."""
    from transformer_spec.properties.harness.plan import make_plan

    _options.reports(args.markdown, args.json)
    plan = make_plan(
        # A generator: transformers is imported for it once the options have passed.
        (":".join(a) for a in _architectures(args.names)),
        command="board",
        dtype=args.dtype,
        profile=args.profile,
        seed=args.seed,
        property=args.property,
        known_failures=args.known_failures,
        jobs=args.jobs,
        shard=args.shard,  # every N-th from the I-th: the shares stay alike in cost
        caps=(args.memory_cap, args.time_cap),
    )
    return plan


def _architectures(names: list[str]) -> list[tuple[str, str, str]]:
    """transformers' architectures, or those `names` names (model types or classes)."""
    from transformer_spec.properties.targets.adapters import hf

    try:
        every: list[tuple[str, str, str]] = list(hf.architectures())
    except ImportError as err:
        raise UsageError(f"the board needs the 'hf' extra ({err}); {hf.EXTRA_HINT}") from None
    if not names:
        return every
    wanted = set(names)
    chosen = [a for a in every if a[0] in wanted or a[1] in wanted]
    unknown = wanted - {a[0] for a in chosen} - {a[1] for a in chosen}
    if unknown:
        raise UsageError(
            f"{sorted(unknown)[0]!r} is not a model type or class of transformers' "
            "language-model tables; see `transformer-spec board --list`"
        )
    return chosen


def _run(plan: "Plan") -> "tuple[list[Row], float]":
    from transformer_spec.properties.harness import session
    from transformer_spec.properties.harness.progress import Progress

    chosen = [t for t, _ in plan.cells()]
    index = {a.split(":")[0]: i for i, a in enumerate(chosen)}
    print(
        f"{len(chosen)} architectures; {plan.workers()[1]}; {plan.dtypes[0]}, profile "
        f"{plan.profile}, seed {plan.seed}: a line per architecture as it is done",
        flush=True,
    )
    start = time.perf_counter()
    with Progress(total=len(chosen)) as progress:

        def on_start(name: str) -> None:
            progress.note(index[name.split(":")[0]], f"{name.split(':')[1]}")

        def on_row(data: dict[str, Any]) -> None:
            row = _row(data)
            progress.finished(index[row.architecture])
            progress.line(_row_line(row, progress.done, progress.total))

        done = session.run(plan, session.Hooks(row=on_row, start=on_start))
    return [_row(data) for data in done.rows], time.perf_counter() - start


def _row(data: dict[str, Any]) -> "Row":
    from transformer_spec.properties.reports.board import Row

    return Row(**{k: v for k, v in data.items() if k != "name"})


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
