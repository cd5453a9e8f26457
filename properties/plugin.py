"""pytest plugin (entry point `pytest11`): options to choose the target and the cell.

    pytest --pyargs transformer_spec.properties --ts-target MODULE:FACTORY \
        --ts-device cpu --ts-dtype bfloat16 --ts-profile ci

Light at import: nothing but pytest is imported until the property tests are collected.
"""

import contextlib
from typing import Any

import pytest

# What the options chose, set once per session when property tests are collected:
# (Context, profile, seed), or a reason to skip every property (a CUDA cell without CUDA).
CELL = pytest.StashKey[tuple[Any, str, int] | str]()
# What loading the target installed (a mutant's modules), undone when the session ends.
INSTALLED = pytest.StashKey[contextlib.ExitStack]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("transformer-spec", "transformer-spec conformance properties")
    group.addoption(
        "--ts-target",
        default="reference-math",
        help="MODULE:FACTORY or a built-in target (default reference-math)",
    )
    group.addoption("--ts-device", default="cpu", help="cpu, cuda or cuda:N")
    group.addoption("--ts-dtype", default="float32", help="float64, float32, bfloat16 or float16")
    group.addoption(
        "--ts-profile",
        default=None,
        choices=["quick", "ci", "thorough"],
        help="Hypothesis profile (default: ci when $CI is set, else quick)",
    )
    group.addoption("--ts-seed", default=None, type=int, help="Hypothesis seed")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "transformer_spec: a conformance property of transformer-spec"
    )


def pytest_unconfigure(config: pytest.Config) -> None:
    installed = config.stash.get(INSTALLED, None)
    if installed is not None:
        installed.close()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Check the --ts-* options once, before any property runs: a bad target, dtype or device
    stops the session with one line (pytest's usage error, exit 4), not an error per test."""
    if any(item.get_closest_marker("transformer_spec") for item in items):
        config.stash[CELL] = _cell(config)


def _cell(config: pytest.Config) -> tuple[Any, str, int] | str:
    import torch

    from .loading import UsageError, load_target
    from .plan import make_plan
    from .registry import Context
    from .tolerance import tolerance_for

    opt = config.getoption
    device = str(opt("--ts-device"))
    if device.startswith("cuda") and not torch.cuda.is_available():
        return f"--ts-device {device}: this machine has no CUDA device"
    try:
        plan = make_plan(
            [str(opt("--ts-target"))],
            device=device,
            dtypes=[str(opt("--ts-dtype"))],
            profile=opt("--ts-profile"),
            seed=opt("--ts-seed"),
            option="--ts-",
        )
        installed = config.stash.setdefault(INSTALLED, contextlib.ExitStack())
        target = load_target(plan.targets[0], installed)
    except UsageError as err:
        raise pytest.UsageError(str(err)) from err
    dtype = getattr(torch, plan.dtypes[0])
    tolerance = tolerance_for(dtype, plan.device)
    ctx = Context(target=target, device=plan.device, dtype=dtype, tolerance=tolerance)
    return ctx, plan.profile, plan.seed
