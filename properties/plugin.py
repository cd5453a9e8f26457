"""pytest plugin (entry point `pytest11`): the properties as pytest items, one per (target,
dtype, property) of a Plan (harness/plan.py).

    pytest --pyargs transformer_spec.properties --ts-target MODULE:FACTORY \
        --ts-device cpu --ts-dtype bfloat16 --ts-profile ci [-n 2]

The --ts-* options are the CLI's run options (plan.OPTIONS, declared once) plus --ts-target
(repeatable; the CLI takes targets as arguments). `transformer-spec` runs this session with
--ts-plan instead: the whole Plan as JSON, which the items (and pytest-xdist's workers) only
read. Each item's result travels to the controller in its report's user_properties
(session.RESULT); a mutant's or an architecture's row as session.ROW.

Light at import: nothing but pytest and the Plan (no torch) until the items run.
"""

from typing import Any

import pytest

PLAN = pytest.StashKey[Any]()  # the Plan, or the UsageError making it raised


def pytest_addoption(parser: pytest.Parser) -> None:
    from transformer_spec.properties.harness.plan import add_options

    group = parser.getgroup("transformer-spec", "transformer-spec conformance properties")
    group.addoption(
        "--ts-target",
        action="append",
        help="MODULE:FACTORY, mutant:NAME or a built-in target (repeatable; default: "
        "check's, reference-math and reference-fused)",
    )
    add_options(group.addoption, "--ts-")
    group.addoption("--ts-plan", default=None, help="the whole run as JSON (transformer-spec's)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "transformer_spec: a conformance property of transformer-spec"
    )
    # One seed for the whole run: xdist hands the controller's options to its workers, so a
    # random default must be drawn here, once, not by each worker.
    opt = config.option
    if opt.ts_plan is None and opt.ts_seed is None and not hasattr(config, "workerinput"):
        from transformer_spec.properties.harness.profiles import default_profile, default_seed

        opt.ts_seed = default_seed(opt.ts_profile or default_profile())


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    if PLAN not in config.stash:
        return
    from transformer_spec.properties.harness.loading import forget

    forget()  # the run ends: an open mutant closes
    if config.option.ts_plan is not None and hasattr(config, "workerinput"):
        _leave_now()


def _leave_now() -> None:
    """A worker of transformer-spec's own session has sent its last report: it leaves
    without the interpreter's teardown, which takes about 0.5 s with torch loaded, and which
    the controller would wait for."""
    import os
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def plan(config: pytest.Config) -> Any:
    """The Plan of this run, made (or read) once per process; a UsageError to report."""
    if PLAN not in config.stash:
        config.stash[PLAN] = _plan(config.option)
    return config.stash[PLAN]


def _plan(opt: Any) -> Any:
    from transformer_spec.properties.harness.errors import UsageError
    from transformer_spec.properties.harness.plan import Plan, make_plan

    if opt.ts_plan is not None:
        return Plan.from_json(opt.ts_plan)
    try:
        return make_plan(
            opt.ts_target,
            device=opt.ts_device,
            dtype=opt.ts_dtype,
            profile=opt.ts_profile,
            seed=opt.ts_seed,
            call_timeout=opt.ts_call_timeout,
            property=opt.ts_property,
            known_failures=opt.ts_known_failures,
            pictures=opt.ts_pictures,
            option="--ts-",
        )
    except UsageError as err:
        return err


# Which test function of test_properties.py runs a plan of each kind, with its parameter.
_ITEMS = {"properties": "ts_item", "mutants": "ts_mutant", "board": "ts_board"}
_TESTS = {"properties": "test_property", "mutants": "test_mutant", "board": "test_board"}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One item per (target, dtype, property) of the plan, target-major (a worker opens a
    target once for a run of its items); per mutant or architecture for those plans."""
    wanted = [name for name in _ITEMS.values() if name in metafunc.fixturenames]
    if not wanted:
        return
    chosen = plan(metafunc.config)
    if isinstance(chosen, Exception) or _ITEMS[chosen.kind] != wanted[0]:
        metafunc.parametrize(wanted[0], [], ids=[])  # reported by the hook below
        return
    if chosen.kind != "properties":
        rows = [t for t, _ in chosen.cells()]
        metafunc.parametrize(wanted[0], rows, ids=rows)
        return
    items = chosen.items(spread=hasattr(metafunc.config, "workerinput"))
    metafunc.parametrize("ts_item", items, ids=["|".join(i) for i in items])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A bad --ts-* option stops the session with one line (pytest's usage error, exit 4),
    not an error per test; the items of the other kinds go."""
    ours = [item for item in items if item.get_closest_marker("transformer_spec")]
    if not ours:
        return
    chosen = plan(config)
    if isinstance(chosen, Exception):
        raise pytest.UsageError(str(chosen))
    if config.option.ts_plan is None and chosen.kind == "properties":
        _load_targets(chosen.targets)  # made by hand: a bad target is a usage error here
    dropped = [item for item in ours if getattr(item, "originalname", "") != _TESTS[chosen.kind]]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item not in dropped]


def _load_targets(names: Any) -> None:
    """Load each target of a plan made from --ts-* options (once: the items reuse it); with
    --ts-plan, `transformer-spec` has loaded them and reports the ones that fail."""
    from transformer_spec.properties.harness import loading
    from transformer_spec.properties.harness.errors import UsageError

    for name in names:
        try:
            loading.loaded(name)
        except UsageError as err:
            raise pytest.UsageError(str(err)) from None
