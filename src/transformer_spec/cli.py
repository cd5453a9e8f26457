"""The `transformer-spec` command: parses the options, checks what it can before anything
heavy is imported (a bad option is answered at once, before torch or a target is loaded),
and hands each command to the library, printing results as they finish.

Exit codes: 0 success, 1 a check failed, 2 bad usage (argparse's convention).
"""

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from . import _options
from ._options import DEFAULT_CALL_TIMEOUT as DEFAULT_CALL_TIMEOUT
from ._options import UsageError
from ._parser import build_parser

if TYPE_CHECKING:
    from transformer_spec.properties.loading import KnownFailure
    from transformer_spec.properties.mutants import Mutant
    from transformer_spec.properties.plan import Plan
    from transformer_spec.properties.progress import Progress
    from transformer_spec.properties.registry import Property
    from transformer_spec.properties.runner import CellReport, OnFailure, Result
    from transformer_spec.properties.targets import Target


def _usage(command: str, err: Exception) -> int:
    print(f"transformer-spec {command}: {err}", file=sys.stderr)
    return 2


def _loading_error() -> type[Exception]:
    """The library's usage error (a bad target, a bad known-failures file). Named in an
    `except` clause after `UsageError`, so that a bad option imports nothing."""
    from transformer_spec.properties.loading import UsageError as LoadingError

    return LoadingError


# --- spec ---------------------------------------------------------------------------------


def _spec(args: argparse.Namespace) -> int:
    from transformer_spec.properties.registry import checked_by
    from transformer_spec.spec import load_spec
    from transformer_spec.spec._cited import cited_by_tests

    from . import _listing

    spec = load_spec(checked_by())
    known = [s.name for s in spec.sections]
    if args.section is not None and args.section not in known:
        return _usage("spec", UsageError(f"unknown section {args.section!r}; known: {known}"))
    clauses = [
        c for c in spec.clauses if args.kind in (None, c.kind) and args.section in (None, c.section)
    ]
    tests = cited_by_tests()
    if args.json:
        print(_listing.spec_json(spec, clauses, tests))
    else:
        print("\n".join(_listing.spec_text(spec, clauses, tests)))
    return 0


# --- copy-task ----------------------------------------------------------------------------


def _copy_task(args: argparse.Namespace) -> int:
    if args.steps < 1:
        return _usage("copy-task", UsageError(f"--steps {args.steps}: expected >= 1"))
    import torch

    from transformer_spec.properties.progress import Progress
    from transformer_spec.reference.copy_task import train_copy_task

    threads = torch.get_num_threads()
    print(
        f"copy task: training the reference encoder-decoder for {args.steps} steps "
        f"(seed {args.seed}, {threads} CPU threads); a line every 50 steps",
        flush=True,
    )
    with Progress() as progress:
        result = train_copy_task(
            steps=args.steps, seed=args.seed, on_step=_copy_step(args.steps, progress), every=1
        )
    print(
        f"copy task: accuracy {result.accuracy:.4f} after {result.steps} steps, "
        f"final loss {result.final_loss:.2e}, {result.seconds:.1f} s on {threads} CPU threads"
    )
    return 0 if result.accuracy >= 0.99 else 1


def _copy_step(steps: int, progress: "Progress") -> "Callable[[int, float], None]":
    """A line every 50 steps and after the last; the heartbeat shows the step in between."""
    import time

    start = time.perf_counter()

    def step(n: int, loss: float) -> None:
        progress.note(0, f"copy task step {n}/{steps}, loss {loss:.2e}")
        if n % 50 == 0 or n == steps:
            seconds = time.perf_counter() - start
            progress.line(f"  step {n:>5}/{steps}  loss {loss:.2e}  {seconds:5.1f} s")
        if n == steps:
            progress.line("  greedy-decoding 1000 held-out sequences")
            progress.note(0, "copy task: greedy-decoding 1000 held-out sequences")

    return step


# --- check --------------------------------------------------------------------------------


def _check(args: argparse.Namespace) -> int:
    """Exit 0 when every applicable property passes, 1 when any fails, 2 for bad input."""
    json_path = None if args.json == "-" else args.json
    try:  # first what needs no imports, then what needs torch, the targets last
        _options.common(args, json_path, args.junit_xml, args.html, args.markdown)
        pictures = _options.pictures_folder(args.pictures, args.html)
        if args.list:
            return _list_properties(args)
        if args.json == "-":
            raise UsageError("--json: expected a PATH (a bare --json goes with --list)")
        plan = _plan(args, ["reference-math", "reference-fused"])
        targets = _load_targets(plan.targets)
    except UsageError as err:
        return _usage("check", err)
    except _loading_error() as err:
        return _usage("check", err)
    missing: list[str] = []  # why there are no pictures, if there are none
    if args.jobs > 1:
        cells = _run_in_parallel(args, plan, targets, _pictures_possible(pictures, missing))
    else:
        cells = _run_cells(args, plan, targets, _picture_drawer(pictures, missing))
    return _finish_check(args, cells, targets, list(plan.known), missing)


def _pictures_possible(folder: Path | None, missing: list[str]) -> Path | None:
    """The pictures folder for worker processes, None (saying why) without matplotlib."""
    if folder is None:
        return None
    from transformer_spec.properties import pictures

    try:
        pictures.pyplot()
    except pictures.MissingMatplotlib as err:
        missing.append(str(err))
        return None
    return folder


def _run_in_parallel(
    args: argparse.Namespace, plan: "Plan", targets: "dict[str, Target]", pictures: Path | None
) -> "list[CellReport]":
    """The plan as one pytest session over --jobs workers (pytest-xdist); the results are
    printed as for one process, cell by cell in the plan's order, as soon as they can be."""
    from transformer_spec.properties import session
    from transformer_spec.properties.progress import Progress

    names = {spec: target.name for spec, target in targets.items()}
    with Progress() as progress:
        printer = _InOrder(args, plan, targets, progress)
        progress.line(f"{len(plan.cells())} cells, {args.jobs} worker processes (pytest-xdist)")
        return session.run_plan(plan, names, jobs=args.jobs, on_item=printer.add, pictures=pictures)


class _InOrder:
    """Prints results as they arrive from the workers, in the order one process prints them:
    property by property in the first unfinished cell, a later cell when every cell before it
    is done (what arrives early waits)."""

    def __init__(
        self,
        args: argparse.Namespace,
        plan: "Plan",
        targets: "dict[str, Target]",
        progress: "Progress",
    ) -> None:
        self.args, self.plan, self.targets, self.progress = args, plan, targets, progress
        self.cells, self.selected = plan.cells(), plan.selected()
        self.props = [p.id for p in self.selected]
        self.arrived: dict[tuple[str, str], dict[str, Result]] = {c: {} for c in self.cells}
        self.printed: dict[tuple[str, str], int] = dict.fromkeys(self.cells, 0)
        self.at = 0

    def add(self, target: str, dtype: str, result: "Result") -> None:
        self.arrived[(target, dtype)][result.property] = result
        while self.at < len(self.cells):
            cell = self.cells[self.at]
            self._show(cell)
            if self.printed[cell] < len(self.props):
                return
            self._summary(cell)
            self.at += 1

    def _show(self, cell: tuple[str, str]) -> None:
        import torch

        from transformer_spec.properties import report

        name, dtype = cell
        target, plan, arrived = self.targets[name], self.plan, self.arrived[cell]
        if self.printed[cell] == 0 and self.props[0] in arrived:
            if dtype == plan.dtypes[0]:
                self.progress.line("\n".join(report.header(target)))
                self.progress.line(
                    f"torch {torch.__version__}, device {plan.device}, profile {plan.profile}"
                )
            self.progress.line(
                report.cell_heading(target.name, str(plan.device), dtype, plan.profile, plan.seed)
            )
        known = list(plan.known)
        where = (target.name, str(plan.device), dtype)
        show = _show_result(self.args, self.progress, where, known, self.selected)
        while self.printed[cell] < len(self.props) and self.props[self.printed[cell]] in arrived:
            show(arrived[self.props[self.printed[cell]]])
            self.printed[cell] += 1

    def _summary(self, cell: tuple[str, str]) -> None:
        from transformer_spec.properties import report
        from transformer_spec.properties.runner import CellReport

        partial = CellReport(cell[0], str(self.plan.device), cell[1], "", 0)
        partial.results = list(self.arrived[cell].values())
        lines = report.cell_summary(partial, self.args.verbose)
        for line in lines[: 1 if self.args.quiet else None]:
            self.progress.line(line)


def _plan(args: argparse.Namespace, default_targets: Sequence[str]) -> "Plan":
    """The run the options describe, checked (transformer_spec.properties.plan)."""
    from transformer_spec.properties.plan import make_plan

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
    from transformer_spec.properties import loading

    return {name: loading.peek(name) for name in names}


def _list_properties(args: argparse.Namespace) -> int:
    import json

    from transformer_spec.properties import registry, report

    props = registry.select(args.property)
    if not props:
        raise UsageError(f"--property {args.property}: matches no property")
    if args.json == "-":
        print(json.dumps(report.property_rows(props), indent=2))
    elif args.json:
        Path(args.json).write_text(json.dumps(report.property_rows(props), indent=2) + "\n")
    else:
        print("\n".join(report.property_listing(props)))
    return 0


def _run_cells(
    args: argparse.Namespace,
    plan: "Plan",
    targets: "dict[str, Target]",
    draw: "OnFailure | None",
) -> "list[CellReport]":
    """Each (target, dtype) cell, each result printed as it finishes. A target is opened for
    its own cells only: a mutant's modules are gone before the next target runs."""
    import torch

    from transformer_spec.properties import loading, report, runner
    from transformer_spec.properties.progress import Progress
    from transformer_spec.reference.config import DTYPES

    props, known = plan.selected(), list(plan.known)
    cells = []
    with Progress() as progress:
        for name, loaded in targets.items():
            with loading.for_cell(name, loaded) as target:
                progress.line("\n".join(report.header(target)))
                progress.line(
                    f"torch {torch.__version__}, device {plan.device}, profile {plan.profile}"
                )
                for dtype_name in plan.dtypes:
                    where = (target.name, str(plan.device), dtype_name)
                    progress.line(
                        report.cell_heading(
                            target.name, str(plan.device), dtype_name, plan.profile, plan.seed
                        )
                    )
                    cell = runner.run_cell(
                        target,
                        props,
                        device=plan.device,
                        dtype=DTYPES[dtype_name],
                        profile=plan.profile,
                        seed=plan.seed,
                        reproduce_prefix=plan.reproduce(name, dtype_name),
                        call_timeout=plan.call_timeout,
                        on_failure=draw,
                        on_result=_show_result(args, progress, where, known, props),
                    )
                    cells.append(cell)
                    summary = report.cell_summary(cell, args.verbose)
                    for line in summary[: 1 if args.quiet else None]:
                        progress.line(line)
    return cells


def _show_result(
    args: argparse.Namespace,
    progress: "Progress",
    cell: tuple[str, str, str],
    known: "list[KnownFailure]",
    props: "list[Property]",
) -> "Callable[[Result], None]":
    """Prints a result of the cell (target name, device, dtype) as it finishes; a known
    failure is marked before it is printed."""
    from transformer_spec.properties import loading, report

    width = max(len(p.id) for p in props)
    target, device, dtype = cell

    def show(r: "Result") -> None:
        reason = (
            loading.known_reason(known, r.property, target, dtype=dtype, device=device)
            if r.outcome == "fail"
            else None
        )
        if reason is not None:
            r.outcome, r.reason = "known_failure", reason
        if args.quiet and r.outcome not in ("fail", "known_failure"):
            return
        for line in report.result_lines(r, width, args.verbose):
            progress.line(line)

    return show


def _finish_check(
    args: argparse.Namespace,
    cells: "list[CellReport]",
    targets: "dict[str, Target]",
    known: "list[KnownFailure]",
    missing: list[str],
) -> int:
    """The reports, the failures again in one line each, and the verdict."""
    from transformer_spec.properties import registry, report
    from transformer_spec.spec import load_spec

    _warn_stale(known, cells)
    for line in missing[:1]:
        print(f"warning: no pictures: {line}", file=sys.stderr)
    notes = [f"No pictures: {line}" for line in missing[:1]]
    by_name = {t.name: t for t in targets.values()}
    written = True
    if args.html or args.markdown:
        from transformer_spec.properties import pages

        spec = load_spec(registry.checked_by())
        env = report.environment()
        written &= _write(args.html, lambda: pages.render_html(cells, by_name, spec, env, notes))
        written &= _write(args.markdown, lambda: pages.render_summary(cells, notes))
    written &= _write(args.json, lambda: report.to_json(cells, by_name, load_spec().version))
    written &= _write(args.junit_xml, lambda: report.to_junit(cells))
    print("\n".join(report.run_summary(cells)))
    failed = sum(c.count("fail") for c in cells)
    return 1 if failed else (0 if written else 2)


def _picture_drawer(folder: Path | None, missing: list[str]) -> "OnFailure | None":
    if folder is None:
        return None
    from transformer_spec.properties import pictures

    return pictures.drawer(folder, missing)


def _warn_stale(known: "Sequence[KnownFailure]", cells: "Sequence[CellReport]") -> None:
    from transformer_spec.properties.loading import stale_entries

    for entry in stale_entries(known, cells):
        print(
            f"warning: known-failures line {entry.line} ({entry.written()}) matched no failure "
            "in this run: the entry may be stale",
            file=sys.stderr,
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


# --- mutants ------------------------------------------------------------------------------


def _mutants(args: argparse.Namespace) -> int:
    """Exit 0 when every mutant is caught in float32 (and in bfloat16 unless declared
    invisible there) and every property catches a mutant or has a written reason; else 1."""
    try:
        if args.jobs < 1:
            raise UsageError(f"--jobs {args.jobs}: expected >= 1")
        if args.markdown:
            _options.writable(args.markdown)
        from transformer_spec.properties import mutants as M

        chosen = M.select(args.names)
        if not chosen:
            raise UsageError(
                f"no mutant matches {args.names}; see `transformer-spec mutants --list`"
            )
    except UsageError as err:
        return _usage("mutants", err)
    if args.list:
        print("\n".join(f"{m.name}: {m.bug}" for m in chosen))
        return 0
    return _run_mutants(args, chosen)


def _run_mutants(args: argparse.Namespace, chosen: "list[Mutant]") -> int:
    import time

    import torch

    from transformer_spec.properties import killmatrix as K
    from transformer_spec.properties.progress import Progress
    from transformer_spec.properties.registry import load_all

    properties = sorted(load_all())
    print(
        f"{len(chosen)} mutants x {len(properties)} properties, {args.jobs} worker(s): "
        "a block per mutant as it is done",
        flush=True,
    )
    start = time.perf_counter()
    with Progress(total=len(chosen)) as progress:
        rows = K.run_all(chosen, properties, args.jobs, progress=progress)
    wall = time.perf_counter() - start
    print("\n".join(K.summary_lines(rows, properties)))
    survivors = [r.mutant for r in rows if r.survived or r.bf16_survived]
    uncaught = K.uncaught_properties(rows, properties) if not args.names else []
    header = (
        f"{len(rows)} mutants x {len(properties)} properties, cpu, torch {torch.__version__}, "
        f"{args.jobs} worker(s): {wall:.0f} s wall"
    )
    print(f"\n{header}")
    if args.markdown:
        Path(args.markdown).write_text(K.render_markdown(rows, properties, header))
    if survivors:
        print(f"SURVIVED: {', '.join(survivors)}")
    if uncaught:
        print(f"properties that catch no mutant (and have no written reason): {uncaught}")
    if not survivors and not uncaught:
        print(f"OK: every mutant caught ({len(rows)})")
    return 1 if survivors or uncaught else 0


# --- table --------------------------------------------------------------------------------


def _table(args: argparse.Namespace) -> int:
    """Exit 0 when every target passes every applicable property or fails it with a written
    reason, 1 when a failure has none, 2 for bad input."""
    try:
        _options.common(args, args.markdown, args.json)
        shard = _options.shard(args.shard)
        if args.budget is not None and not args.budget > 0:
            raise UsageError(f"--budget {args.budget:g}: expected seconds > 0")
        from transformer_spec.properties import conformance as C
        from transformer_spec.properties.runner import PROFILES

        plan = _plan(args, C.all_targets())
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

    from transformer_spec.properties import report, session
    from transformer_spec.properties.progress import Progress
    from transformer_spec.properties.runner import CellReport

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
    from transformer_spec.properties import report

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

    from transformer_spec.properties import conformance as C

    versions = f"torch {torch.__version__}" + C.transformers_version()
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
    from transformer_spec.properties import report
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


# --- merge --------------------------------------------------------------------------------


def _merge(args: argparse.Namespace) -> int:
    """Exit 0 when no merged cell has an unexplained failure, 1 when one has, 2 for bad
    input (a report that cannot be read, or two reports that disagree on a cell)."""
    try:
        _options.common_reports(args.markdown, args.json)
        from transformer_spec.properties import conformance as C

        merged = C.merge_reports([Path(r) for r in args.reports])
    except (UsageError, ValueError) as err:
        return _usage("merge", err)
    header = f"Merged by `transformer-spec merge` from: {'; '.join(merged.sources)}."
    text = C.render_markdown(merged.cells, header, merged.run, merged.descriptions)
    written = _write(args.markdown, lambda: text)
    written &= _write(args.json, merged.to_json)
    print(text)
    failed = sum(c.count("fail") for c in merged.cells)
    return 1 if failed else (0 if written else 2)


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "merge": _merge,
    "spec": _spec,
    "check": _check,
    "mutants": _mutants,
    "table": _table,
    "copy-task": _copy_task,
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
