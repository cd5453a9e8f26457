"""`transformer-spec table`: the conformance table (targets x properties), as one pytest
session; --shard for a share of its cells."""

import argparse
import sys
from typing import TYPE_CHECKING

from transformer_spec.properties.harness.profiles import DEFAULT_CALL_TIMEOUT, PROFILES

from .. import _options
from .._options import UsageError
from .._version import __version__

if TYPE_CHECKING:
    from transformer_spec.properties.harness.plan import Plan
    from transformer_spec.properties.harness.progress import Progress
    from transformer_spec.properties.harness.results import CellReport
    from transformer_spec.properties.harness.session import Run
from ._shared import _plan, _usage, _warn_stale, _write


def run(args: argparse.Namespace) -> int:
    """Exit 0 when every target passes every applicable property or fails it with a written
    reason, 1 when a failure has none, 2 for bad input."""
    from transformer_spec.properties.harness.names import BUILTIN

    try:
        _options.reports(args.markdown, args.json)
        defaults, skipped = _options.missing_extra(list(BUILTIN))
        if skipped and not args.targets:
            print(f"warning: {_options.skipped_line(skipped)}", file=sys.stderr)
        plan = _plan(
            args,
            default_targets=defaults,
            command="table",
            shard=args.shard,
            budget=args.budget,
            on_device_only=not args.targets,  # by default, the targets the device runs
        )
        done = _run_table(args, plan)
    except UsageError as err:
        return _usage("table", err)
    from transformer_spec.properties.reports import table as C

    cells, left_out = done.cells, plan.left_out()
    names = [n for n in plan.runnable() if n in done.targets]
    not_run = [f"{n} ({d})" for n, d in done.not_run]
    if not_run:
        print(f"warning: {len(not_run)} cells not run: the budget was spent", file=sys.stderr)
    text = C.render_markdown(
        cells,
        _table_header(args, names, cells, left_out, plan.device, not_run),
        f"Profile `{plan.profile}` ({PROFILES[plan.profile]['max_examples']} examples per "
        f"property, seed {plan.seed}).",
        {t.name: t.description for t in done.targets.values()},
    )
    written = _write(args.markdown, lambda: text)
    command = " ".join(["transformer-spec table", *_table_words(args)])
    extra: dict[str, object] = {"command": command, "not_run": not_run, "left_out": left_out}
    written &= _write(args.json, lambda: _table_json(cells, done, names, extra))
    print(text)
    _warn_stale(plan.known, cells)
    if done.unloaded:
        for problem in done.unloaded.values():
            print(f"transformer-spec table: {problem} (not run)", file=sys.stderr)
        return 2
    failed = sum(c.count("fail") for c in cells)
    return 1 if failed else (0 if written else 2)


def _run_table(args: argparse.Namespace, plan: "Plan") -> "Run":
    """The cells, as one pytest session; a line on stderr as each cell is done (the table
    itself goes to stdout)."""
    import time

    from transformer_spec.properties.harness import session
    from transformer_spec.properties.harness.progress import Progress
    from transformer_spec.properties.reports import report

    chosen = plan.cells()
    workers, why = plan.workers()
    start = time.perf_counter()
    with Progress(total=len(chosen)) as progress:

        def loaded(run: "Run") -> None:
            progress.line(f"{len(chosen)} cells; {why}: a line per cell as it is done", sys.stderr)

        def on_cell(target: str, cell: "CellReport") -> None:
            progress.finished(chosen.index((target, cell.dtype)))
            progress.line(_cell_line(cell, progress), sys.stderr)

        done = session.run(plan, session.Hooks(loaded=loaded, cell=on_cell))
    wall = time.perf_counter() - start
    for line in report.run_summary(done.cells)[1:]:
        print(line, file=sys.stderr)
    print(
        f"{len(done.cells)} cells, {workers or 1} process(es): {wall:.0f} s wall", file=sys.stderr
    )
    return done


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
    cells: "list[CellReport]", done: "Run", names: list[str], extra: dict[str, object]
) -> str:
    from transformer_spec.properties.reports import report
    from transformer_spec.spec import load_spec

    ran = {n: done.targets[n] for n in names}
    return report.to_json(cells, ran, load_spec().version, extra)


def _table_words(args: argparse.Namespace) -> list[str]:
    """The options that shape the table, as a command that regenerates it."""
    words = [f"--device {args.device or 'cpu'}"]
    words += [f"--dtype {d}" for d in args.dtype or ["float32"]]
    if args.call_timeout not in (None, DEFAULT_CALL_TIMEOUT):
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
