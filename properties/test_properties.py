"""The properties as pytest items, one per (target, dtype, property) of the run the plugin's
--ts-* options describe (see plugin.py).

Collected by `pytest --pyargs transformer_spec.properties`."""

import json
import time
from dataclasses import asdict

import pytest
from transformer_spec.properties import plugin
from transformer_spec.properties.harness.registry import Context, load_all
from transformer_spec.properties.harness.runner import run_property
from transformer_spec.properties.harness.tolerance import tolerance_for


@pytest.mark.transformer_spec
def test_property(ts_item: tuple[str, str, str], request: pytest.FixtureRequest) -> None:
    import torch

    plan = plugin._plan(request.config)
    if isinstance(plan, str):
        pytest.skip(plan)
    target_name, dtype_name, property_id = ts_item
    deadline = request.config.option.ts_deadline
    if deadline is not None and time.time() > deadline:  # no result: the cell is not run
        pytest.skip("not run: the budget was spent")
    dtype = getattr(torch, dtype_name)
    target = plugin.open_target(request.config, target_name)
    tolerance = tolerance_for(dtype, plan.device)
    ctx = Context(target=target, device=plan.device, dtype=dtype, tolerance=tolerance)
    draw = plugin.picture_drawer(request.config)
    result = run_property(
        load_all()[property_id],
        ctx,
        profile=plan.profile,
        seed=plan.seed,
        reproduce=f"{plan.reproduce(target_name, dtype_name)} --property {property_id}",
        call_timeout=plan.call_timeout,
        on_failure=draw,
    )
    request.node.user_properties.append((plugin.RESULT, json.dumps(asdict(result))))
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


@pytest.mark.transformer_spec
def test_mutant(ts_mutant: str, request: pytest.FixtureRequest) -> None:
    """One row of the kill matrix (kill_matrix.run_mutant): the properties --ts-property
    names (every one by default), seed --ts-seed."""
    from transformer_spec.properties.harness.registry import select
    from transformer_spec.properties.reports import kill_matrix
    from transformer_spec.properties.targets import mutants

    opt = request.config.option
    (mutant,) = [m for m in mutants.CATALOGUE if m.name == ts_mutant]
    properties = sorted(p.id for p in select(opt.ts_property))
    job = opt.ts_mutant.index(ts_mutant)  # the heartbeat's job number, in one process
    row = kill_matrix.run_mutant(mutant, properties, seed=opt.ts_seed, job=job)
    request.node.user_properties.append((plugin.ROW, json.dumps(asdict(row))))


@pytest.mark.transformer_spec
def test_board(ts_board: str, request: pytest.FixtureRequest) -> None:
    """One row of the Hugging Face board (board.check_architecture), in a process of its
    own under the caps: the properties --ts-property names (every one by default) in the
    --ts-dtype cell (float32 by default) on the CPU."""
    from transformer_spec.properties.harness.registry import select
    from transformer_spec.properties.reports import board

    opt = request.config.option
    model_type, class_name, kind = ts_board.split(":")
    memory, seconds = (float(x) for x in opt.ts_board_caps.split(","))
    properties = sorted(p.id for p in select(opt.ts_property))
    dtype = (opt.ts_dtype or ["float32"])[0]
    row = board.Row(model_type, class_name, kind)
    profile = opt.ts_profile or "quick"

    def work() -> board.Row:
        return board.check_architecture(
            row, properties, profile=profile, dtype=dtype, seed=opt.ts_seed
        )

    done = board.isolated(work, row, board.Caps(memory, seconds))
    request.node.user_properties.append((plugin.BOARD, json.dumps(asdict(done))))
