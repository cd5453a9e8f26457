"""`transformer-spec check`: targets against the properties, as one pytest session (in this
process, or spread over workers by pytest-xdist: the Plan says which)."""

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .. import _options
from .._options import UsageError
from .._version import __version__

if TYPE_CHECKING:
    from transformer_spec.properties.harness.plan import Plan
    from transformer_spec.properties.harness.progress import Progress
    from transformer_spec.properties.harness.results import CellReport, Result
    from transformer_spec.properties.harness.session import Run
from ._shared import _plan, _usage, _warn_stale, _write


def run(args: argparse.Namespace) -> int:
    """Exit 0 when every applicable property passes, 1 when any fails, 2 for bad input."""
    json_path = None if args.json == "-" else args.json
    missing: list[str] = []  # why there are no pictures, if there are none
    try:  # first what needs no imports: the options and the Plan; the targets in the run
        _options.reports(json_path, args.junit_xml, args.html, args.markdown)
        pictures = _options.pictures_folder(args.pictures, args.html)
        if args.list:
            return _list_properties(args)
        if args.json == "-":
            raise UsageError("--json: expected a PATH (a bare --json goes with --list)")
        plan = _plan(args, pictures=_pictures_possible(pictures, missing))
        done = _run_session(args, plan)
    except UsageError as err:
        return _usage("check", err)
    code = _finish_check(args, done, missing)
    if done.unloaded:
        print(f"{len(done.unloaded)} target(s) could not be loaded and were not run (exit 2)")
        return 2
    return code


def _pictures_possible(folder: Path | None, missing: list[str]) -> str | None:
    """The pictures folder for the items, None (saying why) without matplotlib."""
    if folder is None:
        return None
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        missing.append("matplotlib is not installed (pip install 'transformer-spec[pictures]')")
        return None
    return str(folder)


def _run_session(args: argparse.Namespace, plan: "Plan") -> "Run":
    """The plan as one pytest session (harness.session). The results are printed cell by
    cell in the plan's order, each as soon as it and those before it are done."""
    from transformer_spec.properties.harness import session
    from transformer_spec.properties.harness.progress import Progress

    with Progress() as progress:
        printer = _InOrder(args, progress)
        hooks = session.Hooks(loaded=printer.start, item=printer.add, cell=printer.finished)
        if args.verbose:
            progress.line(f"{len(plan.cells())} cells; {plan.workers()[1]}")
        elif plan.workers()[0]:
            progress.line(f"{len(plan.cells())} cells, {plan.workers()[0]} worker processes")
        return session.run(plan, hooks)


class _InOrder:
    """Prints results as they arrive from the workers, in the order one process prints them:
    property by property in the first unfinished cell, a later cell when every cell before it
    is done (what arrives early waits)."""

    def __init__(self, args: argparse.Namespace, progress: "Progress") -> None:
        self.args, self.progress = args, progress

    def start(self, run: "Run") -> None:
        """The targets are loaded: the cells to print are known."""
        for problem in run.unloaded.values():
            print(f"transformer-spec check: {problem} (not run)", file=sys.stderr)
        self.run, plan = run, run.plan
        self.cells = [c for c in plan.cells() if c[0] in run.targets]
        self.props = plan.selected()
        self.width = max(len(p) for p in self.props)
        self.arrived: dict[tuple[str, str], dict[str, Result]] = {c: {} for c in self.cells}
        self.done: dict[tuple[str, str], CellReport] = {}
        self.printed: dict[tuple[str, str], int] = dict.fromkeys(self.cells, 0)
        self.at = 0

    def add(self, target: str, dtype: str, result: "Result") -> None:
        self.arrived[(target, dtype)][result.property] = result
        self._flush()

    def finished(self, target: str, cell: "CellReport") -> None:
        self.done[(target, cell.dtype)] = cell
        self._flush()

    def _flush(self) -> None:
        from transformer_spec.properties.reports import report

        while self.at < len(self.cells):
            cell = self.cells[self.at]
            self._show(cell)
            if cell not in self.done:
                return
            lines = report.cell_summary(self.done[cell], self.args.verbose)
            for line in lines[: 1 if self.args.quiet else None]:
                self.progress.line(line)
            self.at += 1

    def _show(self, cell: tuple[str, str]) -> None:
        from transformer_spec.properties.reports import report

        name, dtype = cell
        target, plan, arrived = self.run.targets[name], self.run.plan, self.arrived[cell]
        if self.printed[cell] == 0 and self.props[0] in arrived:
            if dtype == plan.dtypes[0]:
                self.progress.line("\n".join(report.header(target)))
                self.progress.line(
                    f"transformer-spec {__version__}, torch {_torch_version()}, device "
                    f"{plan.device}, profile {plan.profile}"
                )
            self.progress.line(
                report.cell_heading(target.name, plan.device, dtype, plan.profile, plan.seed)
            )
        while self.printed[cell] < len(self.props) and self.props[self.printed[cell]] in arrived:
            r = arrived[self.props[self.printed[cell]]]
            if not self.args.quiet or r.outcome in ("fail", "known_failure"):
                for line in report.result_lines(r, self.width, self.args.verbose):
                    self.progress.line(line)
            self.printed[cell] += 1


def _torch_version() -> str:
    import torch

    return str(torch.__version__)


def _list_properties(args: argparse.Namespace) -> int:
    import json

    from transformer_spec.properties import checks
    from transformer_spec.properties.reports import report

    props = checks.select(args.property)
    if not props:
        raise UsageError(f"--property {args.property}: matches no property")
    if args.json == "-":
        print(json.dumps(report.property_rows(props), indent=2))
    elif args.json:
        Path(args.json).write_text(json.dumps(report.property_rows(props), indent=2) + "\n")
    else:
        print("\n".join(report.property_listing(props)))
    return 0


def _finish_check(args: argparse.Namespace, done: "Run", missing: list[str]) -> int:
    """The reports, the failures again in one line each, and the verdict."""
    from transformer_spec.properties import checks
    from transformer_spec.properties.reports import report
    from transformer_spec.spec import load_spec

    cells = done.cells
    _warn_stale(done.plan.known, cells)
    for line in missing[:1]:
        print(f"warning: no pictures: {line}", file=sys.stderr)
    notes = [f"No pictures: {line}" for line in missing[:1]]
    by_name = {t.name: t for t in done.targets.values()}
    written = True
    if args.html or args.markdown:
        from transformer_spec.properties.reports import pages

        spec = load_spec(checks.checked_by())
        env = report.environment()
        written &= _write(args.html, lambda: pages.render_html(cells, by_name, spec, env, notes))
        written &= _write(args.markdown, lambda: pages.render_summary(cells, notes))
    written &= _write(args.json, lambda: report.to_json(cells, by_name, load_spec().version))
    written &= _write(args.junit_xml, lambda: report.to_junit(cells))
    print("\n".join(report.run_summary(cells)))
    failed = sum(c.count("fail") for c in cells)
    return 1 if failed else (0 if written else 2)
