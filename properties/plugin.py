"""pytest plugin (entry point `pytest11`): the properties as pytest items, one per (target,
dtype, property), for the run the --ts-* options describe (a Plan, as `check` builds it).

    pytest --pyargs transformer_spec.properties --ts-target MODULE:FACTORY \
        --ts-device cpu --ts-dtype bfloat16 --ts-profile ci [-n 2]

--ts-target, --ts-dtype and --ts-property repeat. With pytest-xdist (`-n N`, or `--tx` for
other machines) the items spread over workers; `transformer-spec check` runs this
session. Each item's result travels to the controller in its report's user_properties
(RESULT), which is how `check` prints and writes its reports. With --ts-mutant NAME
(repeatable) the items are the kill matrix's instead, one per catalogue mutant, each row
travelling back as ROW (`transformer-spec mutants`).

Light at import: nothing but pytest is imported until the property tests are collected.
"""

import contextlib
from typing import Any

import pytest

RESULT = "transformer_spec.result"  # user_properties key: the Result as JSON
ROW = "transformer_spec.kill_row"  # user_properties key: a mutant's kill_matrix.Row as JSON
BOARD = "transformer_spec.board_row"  # user_properties key: an architecture's board.Row
# The run the options describe (a Plan), or a reason to skip every item (CUDA without CUDA).
PLAN = pytest.StashKey[Any]()
# The target the items now run on: (name, what loading it installed, Target). A worker runs
# many items; a mutant's modules end when the next target is opened, or with the session.
OPEN = pytest.StashKey[tuple[str, contextlib.ExitStack, Any]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("transformer-spec", "transformer-spec conformance properties")
    group.addoption(
        "--ts-target",
        action="append",
        help="MODULE:FACTORY, mutant:NAME or a built-in target (repeatable; default "
        "reference-math)",
    )
    group.addoption("--ts-device", default="cpu", help="cpu, cuda or cuda:N")
    group.addoption(
        "--ts-dtype", action="append", help="float64, float32, bfloat16 or float16 (repeatable)"
    )
    group.addoption(
        "--ts-profile",
        default=None,
        choices=["quick", "ci", "thorough"],
        help="Hypothesis profile (default: ci when $CI is set, else quick)",
    )
    group.addoption("--ts-seed", default=None, type=int, help="Hypothesis seed")
    group.addoption(
        "--ts-property", action="append", help="only properties matching this id or glob"
    )
    group.addoption(
        "--ts-call-timeout", default=None, type=float, help="per-call time limit (seconds)"
    )
    group.addoption("--ts-pictures", default=None, help="draw failing examples here")
    group.addoption(
        "--ts-cell",
        action="append",
        metavar="TARGET|DTYPE",
        help="only these cells of the targets and dtypes given, in this order (repeatable)",
    )
    group.addoption(
        "--ts-mutant",
        action="append",
        metavar="NAME",
        help="run the kill matrix of these catalogue mutants instead (exact names, "
        "repeatable): one item per mutant, every property in float32, the killers in bfloat16",
    )
    group.addoption(
        "--ts-board",
        action="append",
        metavar="MODEL_TYPE:CLASS",
        help="check these Hugging Face architectures instead, one item each, in a process "
        "of its own under --ts-board-caps (the board: transformer-spec board)",
    )
    group.addoption(
        "--ts-board-caps",
        default="4,600",
        metavar="GB,SECONDS",
        help="the board's memory and time caps per architecture (default 4,600)",
    )
    group.addoption(
        "--ts-deadline",
        default=None,
        type=float,
        help="a time (seconds since the epoch) after which no item starts (a table's budget)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "transformer_spec: a conformance property of transformer-spec"
    )
    # One seed for the whole run: xdist hands the controller's options to its workers, so a
    # random default must be drawn here, once, not by each worker.
    if config.option.ts_seed is None and not hasattr(config, "workerinput"):
        from transformer_spec.properties.harness.profiles import default_profile, default_seed

        config.option.ts_seed = default_seed(config.option.ts_profile or default_profile())


def pytest_unconfigure(config: pytest.Config) -> None:
    opened = config.stash.get(OPEN, None)
    if opened is not None:
        opened[1].close()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One item per (target, dtype, property) of the plan, target-major (a worker opens a
    target once for a run of its items)."""
    if "ts_mutant" in metafunc.fixturenames:
        names = metafunc.config.option.ts_mutant or []
        metafunc.parametrize("ts_mutant", names, ids=names)
        return
    if "ts_board" in metafunc.fixturenames:
        names = metafunc.config.option.ts_board or []
        metafunc.parametrize("ts_board", names, ids=names)
        return
    if "ts_item" not in metafunc.fixturenames:
        return
    plan = _plan(metafunc.config)
    if isinstance(plan, Exception):  # reported once, as a usage error, by the hook below
        metafunc.parametrize("ts_item", [("", "", "")], ids=["transformer-spec"])
        return
    if isinstance(plan, str):  # every item is there, and skips saying why
        from transformer_spec.properties.harness.registry import select

        opt = metafunc.config.option
        cells = [
            (t, d) for t in opt.ts_target or ["reference-math"] for d in opt.ts_dtype or ["float32"]
        ]
        props = select(opt.ts_property)
    else:
        cells, props = cells_of(plan, metafunc.config), plan.selected()
    items = [(t, d, p.id) for t, d in cells for p in props]
    metafunc.parametrize("ts_item", items, ids=["|".join(i) for i in items])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A bad --ts-* option stops the session with one line (pytest's usage error, exit 4),
    not an error per test."""
    ours = [item for item in items if item.get_closest_marker("transformer_spec")]
    if not ours:
        return
    mutants, board = config.option.ts_mutant, config.option.ts_board
    if mutants:
        _check_mutants(mutants)
    elif not board:
        plan = _plan(config)
        if isinstance(plan, Exception):
            raise pytest.UsageError(str(plan))
    # One kind of item a run: the kill matrix (--ts-mutant), the board or the properties.
    kept = "test_mutant" if mutants else ("test_board" if board else "test_property")
    dropped = [item for item in ours if getattr(item, "originalname", "") != kept]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item not in dropped]


def _check_mutants(names: list[str]) -> None:
    from transformer_spec.properties.targets.mutants import CATALOGUE

    known = {m.name for m in CATALOGUE}
    wrong = [n for n in names if n not in known]
    if wrong:
        raise pytest.UsageError(
            f"--ts-mutant {wrong[0]!r}: not a mutant of the catalogue; see "
            "`transformer-spec mutants --list`"
        )


def cells_of(plan: Any, config: pytest.Config) -> list[tuple[str, str]]:
    """The plan's cells, or those --ts-cell names (each one of the plan's)."""
    chosen = [tuple(word.split("|")) for word in config.option.ts_cell or ()]
    return [(t, d) for t, d in chosen] if chosen else list(plan.cells())


def _plan(config: pytest.Config) -> Any:
    """The Plan, a UsageError to report, or a reason to skip (no CUDA here); made once."""
    if PLAN not in config.stash:
        config.stash[PLAN] = _make_plan(config)
    return config.stash[PLAN]


def _make_plan(config: pytest.Config) -> Any:
    import torch
    from transformer_spec.properties.harness.plan import make_plan
    from transformer_spec.properties.targets.loading import UsageError, peek

    opt = config.option
    if str(opt.ts_device).startswith("cuda") and not torch.cuda.is_available():
        return f"--ts-device {opt.ts_device}: this machine has no CUDA device"
    try:
        plan = make_plan(
            opt.ts_target or ["reference-math"],
            device=opt.ts_device,
            dtypes=opt.ts_dtype or ["float32"],
            profile=opt.ts_profile,
            seed=opt.ts_seed,
            properties=opt.ts_property or (),
            **({} if opt.ts_call_timeout is None else {"call_timeout": opt.ts_call_timeout}),
            option="--ts-",
        )
        for name in plan.targets:  # a bad name is a usage error before any item runs
            peek(name)
        wrong = [c for c in opt.ts_cell or () if tuple(c.split("|")) not in plan.cells()]
        if wrong:
            raise UsageError(f"--ts-cell {wrong[0]!r}: not a TARGET|DTYPE of the plan")
    except UsageError as err:
        return err
    return plan


def open_target(config: pytest.Config, name: str) -> Any:
    """The target `name`, opened once for a run of items; the one before is closed."""
    from transformer_spec.properties.targets.loading import load_target

    current = config.stash.get(OPEN, None)
    if current is not None and current[0] == name:
        return current[2]
    if current is not None:
        current[1].close()
    installed = contextlib.ExitStack()
    target = load_target(name, installed)
    config.stash[OPEN] = (name, installed, target)
    return target


def picture_drawer(config: pytest.Config) -> Any:
    """The runner's on_failure hook for --ts-pictures DIR, or None."""
    if not config.option.ts_pictures:
        return None
    from pathlib import Path

    from transformer_spec.properties.reports.pictures import drawer

    return drawer(Path(config.option.ts_pictures), [])
