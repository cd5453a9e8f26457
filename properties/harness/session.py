"""A Plan run as one pytest session of the plugin's items, in this process or over
pytest-xdist workers (Plan.workers decides): `check`, `table`, the false-alarm study (kind
"properties"), the kill matrix (kind "mutants", an item per mutant) and the Hugging Face board
(kind "board", an item per architecture). The session owns everything after a property
runs: its items mark known failures (test_properties.py, the one place), and the controller
finishes each cell's CellReport with its tolerance; the commands only present.

The Plan goes to the items whole (--ts-plan JSON). The workers start first; this process
then loads the targets for the reports while they import (`_Controller.pytest_runtestloop`).
pytest's own output is off (`-p no:terminal`): the caller prints. Nothing is written into
the current folder (no cache, no conftest or ini file of the user's project is read).
"""

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from transformer_spec.properties.harness.errors import UsageError
from transformer_spec.properties.harness.plan import Plan
from transformer_spec.properties.harness.results import CellReport, Result

if TYPE_CHECKING:
    from transformer_spec.properties.targets.protocols import Target

RESULT = "transformer_spec.result"  # user_properties key: the Result as JSON
ROW = "transformer_spec.row"  # user_properties key: a mutant's or an architecture's row

OnItem = Callable[[str, str, Result], None]  # (target, dtype, result)


@dataclass
class Run:
    """What a session gives back: the cells of the plan that ran whole, in the plan's
    order (kind "properties"), or the rows (the other kinds)."""

    plan: Plan
    workers: int
    why: str  # why that many workers (Plan.workers)
    targets: "dict[str, Target]" = field(default_factory=dict)  # loaded, by plan name
    unloaded: dict[str, str] = field(default_factory=dict)  # plan name -> why not
    cells: list[CellReport] = field(default_factory=list)
    not_run: list[tuple[str, str]] = field(default_factory=list)  # the budget left them out
    rows: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Hooks:
    """What the caller is told as the run goes: the targets once loaded, each result, each
    finished cell, each row, and which row a worker started."""

    loaded: "Callable[[Run], None]" = lambda run: None
    item: OnItem = lambda target, dtype, result: None
    cell: Callable[[str, CellReport], None] = lambda target, cell: None  # (plan name, cell)
    row: Callable[[dict[str, Any]], None] = lambda row: None
    start: Callable[[str], None] = lambda name: None


class _Controller:
    """The session's plugin in this process: loads the targets while the workers start,
    receives each item's result or row, finishes cells."""

    def __init__(self, run: Run, hooks: Hooks) -> None:
        self.run, self.hooks, self.plan = run, hooks, run.plan
        self.props = self.plan.selected()
        self.results: dict[tuple[str, str], dict[str, Result]] = {}
        self.rows: dict[str, dict[str, Any]] = {}
        self.errors: list[str] = []
        self.usage: str | None = None

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Any:
        if self.plan.kind == "properties":
            self._load()
            if self.usage is not None:
                pytest.exit(self.usage, returncode=pytest.ExitCode.USAGE_ERROR)
            self.hooks.loaded(self.run)
        return (yield)

    def _load(self) -> None:
        from transformer_spec.properties.harness import loading

        for name in self.plan.runnable():
            try:
                self.run.targets[name] = loading.described(name)
            except UsageError as err:
                self.run.unloaded[name] = str(err)
        if not self.run.targets and self.run.unloaded:
            self.usage = next(iter(self.run.unloaded.values()))

    def pytest_runtest_logstart(self, nodeid: str) -> None:  # a worker started an item
        self.hooks.start(nodeid.rsplit("[", 1)[-1][:-1])

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for key, value in report.user_properties:
            if key == RESULT and report.when == "call":
                target, dtype, _ = report.nodeid.rsplit("[", 1)[1][:-1].split("|")
                self._result(target, dtype, Result(**json.loads(str(value))))
            if key == ROW and report.when == "call":
                row = json.loads(str(value))
                self.rows[row["name"]] = row
                self.hooks.row(row)
        wanted = report.failed and (report.when != "call" or self.plan.kind != "properties")
        if wanted:
            self.errors.append(f"{report.nodeid} ({report.when}): {report.longreprtext[-2000:]}")

    def _result(self, target: str, dtype: str, result: Result) -> None:
        cell = self.results.setdefault((target, dtype), {})
        cell[result.property] = result
        self.hooks.item(target, dtype, result)
        if len(cell) == len(self.props):
            self.hooks.cell(target, self.cell(target, dtype))

    def cell(self, target: str, dtype: str) -> CellReport:
        import torch
        from transformer_spec.properties.harness.tolerance import tolerance_for

        plan, results = self.plan, self.results[(target, dtype)]
        tolerance = tolerance_for(getattr(torch, dtype), torch.device(plan.device))
        return CellReport(
            target=self.run.targets[target].name,
            device=plan.device,
            dtype=dtype,
            profile=plan.profile,
            seed=plan.seed,
            tolerance=asdict(tolerance),
            results=[results[p] for p in self.props],
        )

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.errors.append(f"collecting {report.nodeid}: {report.longreprtext[-2000:]}")

    def pytest_internalerror(self, excrepr: Any) -> None:
        self.errors.append(str(excrepr)[-2000:])


def pytest_arguments(plan: Plan, workers: int) -> list[str]:
    """The pytest command line of a plan's session."""
    # --assert=plain: the items fail with their own messages, and pytest would otherwise
    # rewrite every module of each pytest-plugin distribution (ours, Hypothesis) in every
    # worker, about 1 s of each process's start.
    words = ["--pyargs", "transformer_spec.properties", "-p", "no:cacheprovider", "--noconftest"]
    words += ["--assert=plain", "-c", os.devnull, "--rootdir", str(Path.cwd())]
    return [*words, "-n", str(workers), "--ts-plan", plan.to_json()]


def run(plan: Plan, hooks: Hooks | None = None) -> Run:
    """Run the plan. UsageError when what the Plan could not check fails here (no CUDA, no
    target loads); RuntimeError when the session itself broke (not when a property failed:
    that is a result)."""
    if plan.device != "cpu":  # whether it exists takes torch: asked before the workers start
        from transformer_spec.reference.config import parse_device

        try:
            parse_device(plan.device, argument="--device")
        except ValueError as err:
            raise UsageError(str(err)) from None
    workers, why = plan.workers()
    done = Run(plan, workers, why)
    controller = _Controller(done, hooks or Hooks())
    try:
        code = pytest.main(["-p", "no:terminal", *pytest_arguments(plan, workers)], [controller])
    finally:
        from transformer_spec.properties.harness import loading

        loading.forget()
    if controller.usage is not None:
        raise UsageError(controller.usage)
    if plan.kind != "properties":
        return _rows(done, controller, code)
    broken = code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED)
    cells = [c for c in plan.cells() if c[0] in done.targets]
    whole = [c for c in cells if len(controller.results.get(c, {})) == len(controller.props)]
    if broken or (len(whole) < len(cells) and plan.deadline is None):
        why = "; ".join(controller.errors) or f"pytest exit code {int(code)}"
        missing = len(cells) - len(whole)
        raise RuntimeError(f"the pytest session broke ({missing} cells not whole): {why}")
    done.cells = [controller.cell(t, d) for t, d in whole]
    done.not_run = [c for c in cells if c not in whole]
    return done


def _rows(done: Run, controller: _Controller, code: int) -> Run:
    names = [t for t, _ in done.plan.cells()]
    missing = [n for n in names if n.split(":")[0] not in controller.rows]
    if code != pytest.ExitCode.OK or missing:
        why = "; ".join(controller.errors) or f"pytest exit code {int(code)}"
        raise RuntimeError(f"the pytest session broke ({len(missing)} rows missing): {why}")
    done.rows = [controller.rows[n.split(":")[0]] for n in names]
    return done
