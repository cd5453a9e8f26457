"""Every property catches a real bug: each broken target fails the properties listed for it
in broken_targets.MUTANTS, and every registered property is listed for some broken target."""

import pytest
import torch
from transformer_spec.properties.registry import Context, load_all
from transformer_spec.properties.runner import run_property
from transformer_spec.properties.tolerance import tolerance_for

from . import broken_targets

CPU = torch.device("cpu")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("factory", sorted(broken_targets.MUTANTS))
def test_broken_target_is_caught(factory: str, dtype: torch.dtype) -> None:
    target = getattr(broken_targets, factory)()
    ctx = Context(target=target, device=CPU, dtype=dtype, tolerance=tolerance_for(dtype, CPU))
    props = load_all()
    outcomes = {
        pid: run_property(props[pid], ctx, profile="ci", seed=0)
        for pid in broken_targets.MUTANTS[factory]
    }
    survived = [pid for pid, r in outcomes.items() if r.outcome != "fail"]
    assert not survived, f"{factory} in {dtype} survives {survived}"


def test_every_property_catches_some_broken_target() -> None:
    caught = {pid for pids in broken_targets.MUTANTS.values() for pid in pids}
    assert set(load_all()) - caught == set()
