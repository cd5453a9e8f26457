"""`transformer-spec check`: targets against the properties, one process or, with --jobs,
one pytest session spread over workers by pytest-xdist."""

import argparse
import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .. import _options
from .._options import UsageError
from .._version import __version__

if TYPE_CHECKING:
    from transformer_spec.properties.harness.plan import Plan
    from transformer_spec.properties.harness.progress import Progress
    from transformer_spec.properties.harness.registry import Property
    from transformer_spec.properties.harness.runner import CellReport, Result
    from transformer_spec.properties.targets.loading import KnownFailure
    from transformer_spec.properties.targets.protocols import Target
from ._shared import _load_targets, _loading_error, _plan, _usage, _warn_stale, _write


def run(args: argparse.Namespace) -> int:
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
        targets, unloaded = _load_what_loads(plan.targets)
    except UsageError as err:
        return _usage("check", err)
    except _loading_error() as err:
        return _usage("check", err)
    if unloaded:  # run the others; say what was not run
        for problem in unloaded:
            print(f"transformer-spec check: {problem} (not run)", file=sys.stderr)
        plan = dataclasses.replace(plan, targets=tuple(targets))
    missing: list[str] = []  # why there are no pictures, if there are none
    cells = _run_session(args, plan, targets, _pictures_possible(pictures, missing))
    code = _finish_check(args, cells, targets, list(plan.known), missing)
    if unloaded:
        print(f"{len(unloaded)} target(s) could not be loaded and were not run (exit 2)")
        return 2
    return code


def _load_what_loads(names: "tuple[str, ...]") -> "tuple[dict[str, Target], list[Exception]]":
    """The targets that load, and why each other one does not; the first error when none
    loads (one bad name alone stays a plain usage error)."""
    targets: dict[str, Target] = {}
    unloaded: list[Exception] = []
    for name in names:
        try:
            targets.update(_load_targets([name]))
        except _loading_error() as err:
            unloaded.append(err)
    if unloaded and not targets:
        raise unloaded[0]
    return targets, unloaded


def _pictures_possible(folder: Path | None, missing: list[str]) -> Path | None:
    """The pictures folder for worker processes, None (saying why) without matplotlib."""
    if folder is None:
        return None
    from transformer_spec.properties.reports import pictures

    try:
        pictures.pyplot()
    except pictures.MissingMatplotlib as err:
        missing.append(str(err))
        return None
    return folder


def _run_session(
    args: argparse.Namespace, plan: "Plan", targets: "dict[str, Target]", pictures: Path | None
) -> "list[CellReport]":
    """The plan as one pytest session: in this process with --jobs 1, else over --jobs
    workers (pytest-xdist). The results are printed cell by cell in the plan's order, each
    as soon as it and those before it are done."""
    from transformer_spec.properties.harness import session
    from transformer_spec.properties.harness.progress import Progress

    names = {spec: target.name for spec, target in targets.items()}
    with Progress() as progress:
        printer = _InOrder(args, plan, targets, progress)
        if args.jobs > 1:
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

        from transformer_spec.properties.reports import report

        name, dtype = cell
        target, plan, arrived = self.targets[name], self.plan, self.arrived[cell]
        if self.printed[cell] == 0 and self.props[0] in arrived:
            if dtype == plan.dtypes[0]:
                self.progress.line("\n".join(report.header(target)))
                self.progress.line(
                    f"transformer-spec {__version__}, torch {torch.__version__}, device "
                    f"{plan.device}, profile {plan.profile}"
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
        from transformer_spec.properties.harness.runner import CellReport
        from transformer_spec.properties.reports import report

        partial = CellReport(cell[0], str(self.plan.device), cell[1], "", 0)
        partial.results = list(self.arrived[cell].values())
        lines = report.cell_summary(partial, self.args.verbose)
        for line in lines[: 1 if self.args.quiet else None]:
            self.progress.line(line)


def _list_properties(args: argparse.Namespace) -> int:
    import json

    from transformer_spec.properties.harness import registry
    from transformer_spec.properties.reports import report

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


def _show_result(
    args: argparse.Namespace,
    progress: "Progress",
    cell: tuple[str, str, str],
    known: "list[KnownFailure]",
    props: "list[Property]",
) -> "Callable[[Result], None]":
    """Prints a result of the cell (target name, device, dtype) as it finishes; a known
    failure is marked before it is printed."""
    from transformer_spec.properties.reports import report
    from transformer_spec.properties.targets import loading

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
    from transformer_spec.properties.harness import registry
    from transformer_spec.properties.reports import report
    from transformer_spec.spec import load_spec

    _warn_stale(known, cells)
    for line in missing[:1]:
        print(f"warning: no pictures: {line}", file=sys.stderr)
    notes = [f"No pictures: {line}" for line in missing[:1]]
    by_name = {t.name: t for t in targets.values()}
    written = True
    if args.html or args.markdown:
        from transformer_spec.properties.reports import pages

        spec = load_spec(registry.checked_by())
        env = report.environment()
        written &= _write(args.html, lambda: pages.render_html(cells, by_name, spec, env, notes))
        written &= _write(args.markdown, lambda: pages.render_summary(cells, notes))
    written &= _write(args.json, lambda: report.to_json(cells, by_name, load_spec().version))
    written &= _write(args.junit_xml, lambda: report.to_junit(cells))
    print("\n".join(report.run_summary(cells)))
    failed = sum(c.count("fail") for c in cells)
    return 1 if failed else (0 if written else 2)
