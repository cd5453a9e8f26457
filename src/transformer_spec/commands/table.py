"""`transformer-spec table`: the conformance table (targets x properties), as one pytest
session; --shard for a share of its cells."""

import argparse
import sys
from typing import TYPE_CHECKING

from .. import _options
from .._options import DEFAULT_CALL_TIMEOUT, UsageError
from .._version import __version__

if TYPE_CHECKING:
    from transformer_spec.properties.harness.plan import Plan
    from transformer_spec.properties.harness.progress import Progress
    from transformer_spec.properties.harness.runner import CellReport, Result
    from transformer_spec.properties.targets.protocols import Target
from ._shared import _load_targets, _loading_error, _plan, _usage, _warn_stale, _write


def run(args: argparse.Namespace) -> int:
    """Exit 0 when every target passes every applicable property or fails it with a written
    reason, 1 when a failure has none, 2 for bad input."""
    try:
        _options.common(args, args.markdown, args.json)
        shard = _options.shard(args.shard)
        if args.budget is not None and not args.budget > 0:
            raise UsageError(f"--budget {args.budget:g}: expected seconds > 0")
        from transformer_spec.properties.harness.runner import PROFILES
        from transformer_spec.properties.reports import table as C

        defaults, skipped = _options.missing_extra(C.all_targets())
        if skipped and not args.targets:
            print(f"warning: {_options.skipped_line(skipped)}", file=sys.stderr)
        plan = _plan(args, defaults)
        targets = _load_targets(plan.targets)
    except UsageError as err:
        return _usage("table", err)
    except _loading_error() as err:
        return _usage("table", err)
    device, known = plan.device, list(plan.known)
    left_out = []
    if not args.targets:  # by default, only the targets that run on this device
        left_out = [n for n, t in targets.items() if device.type not in t.conventions.devices]
    names = [n for n in targets if n not in left_out]
    chosen = [(n, d) for d in plan.dtypes for n in names]
    if shard is not None:  # every N-th cell from the I-th: the shares stay alike in cost
        chosen = chosen[shard[0] - 1 :: shard[1]]
    cells = _run_table(args, plan, targets, chosen)
    ran = {(c.target, c.dtype) for c in cells}
    by_spec = {n: targets[n].name for n in names}
    not_run = [f"{n} ({d})" for n, d in chosen if (by_spec[n], d) not in ran]
    if not_run:
        print(f"warning: {len(not_run)} cells not run: the budget was spent", file=sys.stderr)
    text = C.render_markdown(
        cells,
        _table_header(args, names, cells, left_out, str(device), not_run),
        f"Profile `{plan.profile}` ({PROFILES[plan.profile]['max_examples']} examples per "
        f"property, seed {plan.seed}).",
        {n: t.description for n, t in targets.items()},
    )
    written = _write(args.markdown, lambda: text)
    command = " ".join(["transformer-spec table", *_table_words(args)])
    extra: dict[str, object] = {"command": command, "not_run": not_run, "left_out": left_out}
    written &= _write(args.json, lambda: _table_json(cells, targets, names, extra))
    print(text)
    _warn_stale(known, cells)
    failed = sum(c.count("fail") for c in cells)
    return 1 if failed else (0 if written else 2)


def _run_table(
    args: argparse.Namespace,
    plan: "Plan",
    targets: "dict[str, Target]",
    chosen: list[tuple[str, str]],
) -> "list[CellReport]":
    """The cells, as one pytest session over --jobs workers; a line on stderr as each cell
    is done (the table itself goes to stdout)."""
    import time

    from transformer_spec.properties.harness import session
    from transformer_spec.properties.harness.progress import Progress
    from transformer_spec.properties.harness.runner import CellReport
    from transformer_spec.properties.reports import report

    print(
        f"{len(chosen)} cells, {args.jobs} worker(s): a line per cell as it is done",
        file=sys.stderr,
    )
    names = {spec: target.name for spec, target in targets.items()}
    arrived: dict[tuple[str, str], list[Result]] = {cell: [] for cell in chosen}
    wanted = len(plan.selected())
    start = time.perf_counter()
    with Progress(total=len(chosen)) as progress:

        def on_item(target: str, dtype: str, result: "Result") -> None:
            arrived[(target, dtype)].append(result)
            if len(arrived[(target, dtype)]) == wanted:
                cell = CellReport(names[target], str(plan.device), dtype, plan.profile, plan.seed)
                cell.results = arrived[(target, dtype)]
                progress.finished(chosen.index((target, dtype)))
                progress.line(_cell_line(cell, progress), sys.stderr)

        cells = session.run_plan(
            plan, names, jobs=args.jobs, on_item=on_item, cells=chosen, budget=args.budget
        )
    wall = time.perf_counter() - start
    for line in report.run_summary(cells)[1:]:
        print(line, file=sys.stderr)
    print(f"{len(cells)} cells, {args.jobs} worker(s): {wall:.0f} s wall", file=sys.stderr)
    return cells


def _cell_line(cell: "CellReport", progress: "Progress") -> str:
    from transformer_spec.properties.reports import report

    seconds = sum(r.seconds for r in cell.results)
    na = cell.count("not_applicable")
    return (
        f"[{progress.done}/{progress.total}] {report.cell_name(cell)}: "
        f"{report.counts_text(cell)}{f', {na} do not apply' if na else ''} ({seconds:.0f} s)"
    )


def _table_header(
    args: argparse.Namespace,
    names: list[str],
    cells: "list[CellReport]",
    left_out: list[str],
    device: str,
    not_run: list[str],
) -> str:
    import torch

    from transformer_spec.properties.reports import table as C

    versions = f"transformer-spec {__version__}, torch {torch.__version__}"
    versions += C.transformers_version()
    command = " ".join(["transformer-spec table", *_table_words(args)])
    n_props = len(cells[0].results) if cells else 0
    header = f"`{command}`; {versions}; {len(names)} targets x {n_props} properties."
    if left_out:
        header += f" Left out (they do not run on {device.split(':')[0]}): {', '.join(left_out)}."
    if not_run:
        header += f" Not run, the {args.budget:g} s budget was spent: {', '.join(not_run)}."
    return header


def _table_json(
    cells: "list[CellReport]",
    targets: "dict[str, Target]",
    names: list[str],
    extra: dict[str, object],
) -> str:
    from transformer_spec.properties.reports import report
    from transformer_spec.spec import load_spec

    ran = {n: targets[n] for n in names}
    return report.to_json(cells, ran, load_spec().version, extra)


def _table_words(args: argparse.Namespace) -> list[str]:
    """The options that shape the table, as a command that regenerates it."""
    words = [f"--device {args.device}"] + [f"--dtype {d}" for d in args.dtype]
    if args.call_timeout != DEFAULT_CALL_TIMEOUT:
        words.append(f"--call-timeout {args.call_timeout:g}")
    if args.profile not in (None, "ci"):
        words.append(f"--profile {args.profile}")
    if args.seed is not None and not (args.seed == 0 and args.profile in (None, "ci")):
        words.append(f"--seed {args.seed}")
    if args.known_failures:
        words.append(f"--known-failures {args.known_failures}")
    words += [f"--property {p}" for p in args.property or ()]
    if args.budget is not None:
        words.append(f"--budget {args.budget:g}")
    if args.shard:
        words.append(f"--shard {args.shard}")
    if args.targets:
        words += args.targets
    return words
