"""Every chosen property on a Target object in one cell, in this process: what the tests and
benchmarks that build a target in code (not by name) need. The product runs cells only as
a Plan's session (harness/session.py)."""

from dataclasses import asdict

import torch
from transformer_spec.properties.harness.registry import Context, Property
from transformer_spec.properties.harness.results import CellReport
from transformer_spec.properties.harness.runner import run_property
from transformer_spec.properties.harness.tolerance import DTYPE_NAMES, tolerance_for
from transformer_spec.properties.targets.protocols import Target


def run_cell(
    target: Target,
    properties: list[Property],
    *,
    device: torch.device,
    dtype: torch.dtype,
    profile: str,
    seed: int,
) -> CellReport:
    ctx = Context(target, device, dtype, tolerance_for(dtype, device))
    results = [run_property(p, ctx, profile=profile, seed=seed) for p in properties]
    name = DTYPE_NAMES[dtype]
    return CellReport(target.name, str(device), name, profile, seed, asdict(ctx.tolerance), results)
