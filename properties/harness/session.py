"""A Plan run as one pytest session of the plugin's items, in this process (one job) or over
pytest-xdist workers: `check`, `table` and the false-alarm study (`run_plan`). Each item's
Result comes back in its report (plugin.RESULT) and is handed to `on_item` as it arrives; the
cells are put together in the plan's order at the end. The kill matrix is a session of
mutant items, a row each (`run_mutants`), and the Hugging Face board a session of
architecture items (`run_board`).

pytest's own output is off (`-p no:terminal`): the caller prints. Nothing is written into
the current folder (no cache, no conftest or ini file of the user's project is read).
"""

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from transformer_spec.properties.harness.plan import Plan
from transformer_spec.properties.harness.runner import CellReport, Result
from transformer_spec.properties.harness.tolerance import tolerance_for
from transformer_spec.properties.plugin import BOARD, RESULT, ROW
from transformer_spec.properties.targets.loading import known_reason

if TYPE_CHECKING:
    from transformer_spec.properties.reports.board import Row as BoardRow
    from transformer_spec.properties.reports.kill_matrix import Row

OnItem = Callable[[str, str, Result], None]  # (target, dtype, result)


class _Collector:
    """Receives each item's Result on the controller; remembers what went wrong otherwise."""

    def __init__(self, plan: Plan, names: dict[str, str], on_item: OnItem) -> None:
        self.plan, self.names, self.on_item = plan, names, on_item
        self.results: dict[tuple[str, str, str], Result] = {}
        self.errors: list[str] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for key, value in report.user_properties:
            if key == RESULT and report.when == "call":
                target, dtype, prop = report.nodeid.rsplit("[", 1)[1][:-1].split("|")
                result = Result(**json.loads(str(value)))
                where = {"dtype": dtype, "device": str(self.plan.device)}
                reason = known_reason(self.plan.known, prop, self.names[target], **where)
                if result.outcome == "fail" and reason is not None:
                    result.outcome, result.reason = "known_failure", reason
                self.results[(target, dtype, prop)] = result
                self.on_item(target, dtype, result)
        if report.failed and report.when != "call":
            self.errors.append(f"{report.nodeid} ({report.when}): {report.longreprtext[-2000:]}")

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.errors.append(f"collecting {report.nodeid}: {report.longreprtext[-2000:]}")

    def pytest_internalerror(self, excrepr: Any) -> None:
        self.errors.append(str(excrepr)[-2000:])


class _Rows:
    """Receives each item's row (the user property `key`: a kill-matrix or a board row) on the
    controller; `make` turns its JSON into the row and the row's name."""

    def __init__(
        self,
        key: str,
        make: Callable[[dict[str, Any]], tuple[str, Any]],
        on_row: Callable[[Any], None],
        on_start: Callable[[str], None],
    ) -> None:
        self.key, self.make, self.on_row, self.on_start = key, make, on_row, on_start
        self.rows: dict[str, Any] = {}
        self.errors: list[str] = []

    def pytest_runtest_logstart(self, nodeid: str) -> None:  # a worker started an item
        self.on_start(nodeid.rsplit("[", 1)[1][:-1])

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for key, value in report.user_properties:
            if key == self.key and report.when == "call":
                name, row = self.make(json.loads(str(value)))
                self.rows[name] = row
                self.on_row(row)
        if report.failed:
            self.errors.append(f"{report.nodeid} ({report.when}): {report.longreprtext[-2000:]}")

    def pytest_internalerror(self, excrepr: Any) -> None:
        self.errors.append(str(excrepr)[-2000:])

    def run(self, words: list[str], ids: Sequence[str]) -> list[Any]:
        """The rows of the session `words`, in the order of `ids`; RuntimeError when the
        session broke or a row is missing."""
        code = pytest.main(["-p", "no:terminal", *words], [self])
        missing = [i for i in ids if i not in self.rows]
        if code != pytest.ExitCode.OK or missing:
            why = "; ".join(self.errors) or f"pytest exit code {int(code)}"
            raise RuntimeError(f"the pytest session broke ({len(missing)} rows missing): {why}")
        return [self.rows[i] for i in ids]


def _base_words(jobs: int) -> list[str]:
    """pytest's options for a session of the plugin's items, over `jobs` workers."""
    # --assert=plain: the items fail with their own messages, and pytest would otherwise
    # rewrite every module of each pytest-plugin distribution (ours, Hypothesis) in every
    # worker, about 1 s of each process's start.
    words = ["--pyargs", "transformer_spec.properties", "-p", "no:cacheprovider", "--noconftest"]
    words += ["--assert=plain", "-c", os.devnull, "--rootdir", str(Path.cwd())]
    return [*words, "-n", str(jobs if jobs > 1 else 0)]


def run_mutants(
    names: Sequence[str],
    properties: Sequence[str],
    *,
    jobs: int,
    seed: int,
    on_row: Callable[["Row"], None],
    on_start: Callable[[str], None] = lambda name: None,
) -> list["Row"]:
    """The kill matrix of the catalogue mutants `names` (an item each, see
    test_properties.test_mutant) as one pytest session over `jobs` workers; rows in the order
    of `names`, each handed to `on_row` as it arrives. RuntimeError when the session broke."""
    from transformer_spec.properties.reports.kill_matrix import Row

    words = [*_base_words(jobs), "--ts-seed", str(seed)]
    words += [w for name in names for w in ("--ts-mutant", name)]
    words += [w for pid in properties for w in ("--ts-property", pid)]
    rows = _Rows(ROW, lambda data: (data["mutant"], Row(**data)), on_row, on_start)
    return rows.run(words, names)


def run_board(
    architectures: Sequence[tuple[str, str, str]],
    properties: Sequence[str],
    *,
    jobs: int,
    profile: str,
    dtype: str,
    seed: int,
    caps: tuple[float, float],
    on_row: Callable[["BoardRow"], None],
    on_start: Callable[[str], None] = lambda name: None,
) -> list["BoardRow"]:
    """The board's rows, one item per (model type, class, kind), as one pytest session over
    `jobs` workers; in the order given. RuntimeError when the session broke."""
    from transformer_spec.properties.reports.board import Row as BoardRow

    words = [*_base_words(jobs), "--ts-seed", str(seed), "--ts-profile", profile]
    words += ["--ts-dtype", dtype, "--ts-board-caps", f"{caps[0]:g},{caps[1]:g}"]
    words += [w for a in architectures for w in ("--ts-board", ":".join(a))]
    words += [w for pid in properties for w in ("--ts-property", pid)]
    rows = _Rows(BOARD, lambda data: (data["architecture"], BoardRow(**data)), on_row, on_start)
    return rows.run(words, [a for a, _, _ in architectures])


def pytest_arguments(
    plan: Plan,
    jobs: int,
    pictures: Path | None = None,
    cells: Sequence[tuple[str, str]] | None = None,
    deadline: float | None = None,
) -> list[str]:
    """The pytest command line of a plan (also what a user runs to spread it by hand)."""
    words = _base_words(jobs)
    for target, dtype in cells or ():
        words += ["--ts-cell", f"{target}|{dtype}"]
    if deadline is not None:
        words += ["--ts-deadline", repr(deadline)]
    for name in plan.targets:
        words += ["--ts-target", name]
    for dtype in plan.dtypes:
        words += ["--ts-dtype", dtype]
    for pattern in plan.properties:
        words += ["--ts-property", pattern]
    words += ["--ts-device", str(plan.device), "--ts-profile", plan.profile]
    words += ["--ts-seed", str(plan.seed), "--ts-call-timeout", str(plan.call_timeout)]
    return words + (["--ts-pictures", str(pictures)] if pictures is not None else [])


def run_plan(
    plan: Plan,
    names: dict[str, str],
    *,
    jobs: int,
    on_item: OnItem,
    pictures: Path | None = None,
    cells: Sequence[tuple[str, str]] | None = None,
    budget: float | None = None,
) -> list[CellReport]:
    """The plan's cells (or `cells`, in that order), each with its results in property order;
    `names` gives each target's own name (MODULE:FACTORY -> Target.name). A failure that a
    known-failures entry names is a known failure before `on_item` sees it. With a `budget`
    (seconds), no item starts once it is spent, and a cell not run whole is left out.
    RuntimeError when the session itself broke (not when a property failed: a result)."""
    collector = _Collector(plan, names, on_item)
    chosen = list(cells or plan.cells())
    deadline = None if budget is None else time.time() + budget
    words = pytest_arguments(plan, jobs, pictures, chosen, deadline)
    code = pytest.main(["-p", "no:terminal", *words], [collector])
    props = plan.selected()
    wanted = [(t, d, p.id) for t, d in chosen for p in props]
    missing = [w for w in wanted if w not in collector.results]
    broken = code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED)
    if broken or (missing and budget is None):
        why = "; ".join(collector.errors) or f"pytest exit code {int(code)}"
        raise RuntimeError(f"the pytest session broke ({len(missing)} results missing): {why}")
    whole = [c for c in chosen if all((*c, p.id) in collector.results for p in props)]
    return [_cell(plan, t, names[t], d, collector.results) for t, d in whole]


def _cell(
    plan: Plan, target: str, name: str, dtype: str, results: dict[tuple[str, str, str], Result]
) -> CellReport:
    import torch

    tolerance = tolerance_for(getattr(torch, dtype), plan.device)
    return CellReport(
        target=name,
        device=str(plan.device),
        dtype=dtype,
        profile=plan.profile,
        seed=plan.seed,
        tolerance=asdict(tolerance),
        results=[results[(target, dtype, p.id)] for p in plan.selected()],
    )
