"""The items of a Plan (see plugin.py): a property in one (target, dtype) cell, a mutant's row
of the kill matrix, or an architecture's row of the Hugging Face board.

Collected by `pytest --pyargs transformer_spec.properties`."""

import json
import time
from dataclasses import asdict
from typing import Any

import pytest
from transformer_spec.properties import plugin
from transformer_spec.properties.checks import load_all
from transformer_spec.properties.harness.errors import UsageError
from transformer_spec.properties.harness.known import known_reason
from transformer_spec.properties.harness.registry import Context
from transformer_spec.properties.harness.runner import run_property
from transformer_spec.properties.harness.session import RESULT, ROW
from transformer_spec.properties.harness.tolerance import tolerance_for


@pytest.mark.transformer_spec
def test_property(ts_item: tuple[str, str, str], request: pytest.FixtureRequest) -> None:
    import torch
    from transformer_spec.properties.harness import loading

    plan = plugin.plan(request.config)
    target_name, dtype_name, property_id = ts_item
    device = _device(request.config, plan.device)
    if plan.deadline is not None and time.time() > plan.deadline:  # the cell is not run
        pytest.skip("not run: the budget was spent")
    try:
        target = loading.loaded(target_name)
    except UsageError as err:  # the controller reports it (check: not run, exit 2)
        pytest.skip(f"not run: {err}")
    dtype = getattr(torch, dtype_name)
    ctx = Context(target=target, device=device, dtype=dtype, tolerance=tolerance_for(dtype, device))
    result = run_property(
        load_all()[property_id],
        ctx,
        profile=plan.profile,
        seed=plan.seed,
        reproduce=f"{plan.reproduce(target_name, dtype_name)} --property {property_id}",
        call_timeout=plan.call_timeout,
        on_failure=_drawer(request.config, plan.pictures),
    )
    reason = known_reason(
        plan.known, property_id, target.name, dtype=dtype_name, device=plan.device
    )
    if result.outcome == "fail" and reason is not None:  # the run's one place for it
        result.outcome, result.reason = "known_failure", reason
    request.node.user_properties.append((RESULT, json.dumps(asdict(result))))
    if result.outcome == "known_failure":
        pytest.xfail(f"known failure: {result.reason}")
    if result.outcome == "not_applicable":
        pytest.skip(f"not applicable: {result.reason}")
    if result.outcome == "fail":
        rerun = (
            f"pytest --pyargs transformer_spec.properties --ts-target {target_name} "
            f"--ts-device {plan.device} --ts-dtype {dtype_name} --ts-profile {plan.profile} "
            f"--ts-seed {plan.seed} --ts-property {property_id}"
        )
        pytest.fail(
            f"{property_id} ({', '.join(result.clauses)})\n{result.message}\n"
            f"{result.counterexample}\nseed {plan.seed}, profile {plan.profile}\n"
            f"reproduce: {result.reproduce}\nthis item alone under pytest: {rerun}",
            pytrace=False,
        )


_DEVICE = pytest.StashKey[Any]()


def _device(config: pytest.Config, name: str) -> Any:
    """The plan's torch.device; every item skips, saying why, where it does not exist (a
    plan made by hand for CUDA on a machine without it; `check` says so before the run)."""
    if _DEVICE not in config.stash:
        from transformer_spec.reference.config import parse_device

        try:
            config.stash[_DEVICE] = parse_device(name, argument="--ts-device")
        except ValueError as err:
            config.stash[_DEVICE] = str(err)
    found = config.stash[_DEVICE]
    if isinstance(found, str):
        pytest.skip(found)
    return found


_DRAWER = pytest.StashKey[Any]()


def _drawer(config: pytest.Config, folder: str | None) -> Any:
    """The runner's on_failure hook that draws into `folder`, made once per process (it says
    once why it cannot draw); None without a folder."""
    if folder is None:
        return None
    if _DRAWER not in config.stash:
        from pathlib import Path

        from transformer_spec.properties.reports.pictures import drawer

        config.stash[_DRAWER] = drawer(Path(folder), [])
    return config.stash[_DRAWER]


@pytest.mark.transformer_spec
def test_mutant(ts_mutant: str, request: pytest.FixtureRequest) -> None:
    """One row of the kill matrix (kill_matrix.run_mutant) under the plan's profile, seed,
    device and dtypes (the killers are tried again in the second)."""
    from transformer_spec.properties.reports import kill_matrix
    from transformer_spec.properties.targets import mutants

    plan = plugin.plan(request.config)
    (mutant,) = [m for m in mutants.CATALOGUE if m.name == ts_mutant]
    job = plan.targets.index(ts_mutant)  # the heartbeat's job number, in one process
    row = kill_matrix.run_mutant(mutant, sorted(plan.selected()), plan, job=job)
    data = {"name": ts_mutant, **asdict(row)}
    request.node.user_properties.append((ROW, json.dumps(data)))


@pytest.mark.transformer_spec
def test_board(ts_board: str, request: pytest.FixtureRequest) -> None:
    """One row of the Hugging Face board (board.check_architecture), in a process of its
    own under the plan's caps, in its first dtype on the CPU."""
    from transformer_spec.properties.reports import board

    plan = plugin.plan(request.config)
    model_type, class_name, kind = ts_board.split(":")
    row = board.Row(model_type, class_name, kind)
    properties = sorted(plan.selected())

    def work() -> board.Row:
        return board.check_architecture(
            row, properties, profile=plan.profile, dtype=plan.dtypes[0], seed=plan.seed
        )

    done = board.isolated(work, row, board.Caps(*plan.caps))
    data = {"name": model_type, **asdict(done)}
    request.node.user_properties.append((ROW, json.dumps(data)))
