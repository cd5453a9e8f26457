"""Every property catches a real bug: each broken target fails the properties listed for it
in its module's MUTANTS, in float32 and bfloat16, and every registered property is listed
for some broken target."""

from types import ModuleType

import pytest
import torch
from transformer_spec.properties.checks import load_all
from transformer_spec.properties.harness.registry import Context
from transformer_spec.properties.harness.runner import run_property
from transformer_spec.properties.harness.tolerance import tolerance_for

from . import (
    broken_beyond,
    broken_components,
    broken_layers,
    broken_mha,
    broken_models,
    broken_targets,
    broken_training,
    silent_parameters,
)

CPU = torch.device("cpu")
MODULES: list[ModuleType] = [
    broken_targets,
    broken_beyond,
    broken_mha,
    broken_models,
    broken_components,
    broken_layers,
    broken_training,
    silent_parameters,
]
CASES = [(m, name) for m in MODULES for name in sorted(m.MUTANTS)]
IDS = [f"{m.__name__.rsplit('.', 1)[-1]}:{name}" for m, name in CASES]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize(("module", "factory"), CASES, ids=IDS)
def test_broken_target_is_caught(module: ModuleType, factory: str, dtype: torch.dtype) -> None:
    target = getattr(module, factory)()
    ctx = Context(target=target, device=CPU, dtype=dtype, tolerance=tolerance_for(dtype, CPU))
    props = load_all()
    survived = [
        pid
        for pid in module.MUTANTS[factory]
        if run_property(props[pid], ctx, profile="ci", seed=0).outcome != "fail"
    ]
    assert not survived, f"{factory} in {dtype} survives {survived}"


def test_every_property_catches_some_broken_target() -> None:
    caught = {pid for m in MODULES for pids in m.MUTANTS.values() for pid in pids}
    assert set(load_all()) - caught == set()
