"""Sweep every (broken target, property) pair of the test catalogue over several seeds.

tests/test_mutants.py checks each pair at seed 0 only; a kill that depends on the examples
drawn would make it flaky. Run from the repository root:
    TRANSFORMER_SPEC_TYPECHECK=1 PYTHONPATH=. python tools/mutant_sweep.py [SEED ...]
Prints every pair that survives some seed in float32 or bfloat16; exits 1 if any does.
"""

import sys

import torch
from transformer_spec.properties.checks import load_all
from transformer_spec.properties.harness.registry import Context
from transformer_spec.properties.harness.runner import run_property
from transformer_spec.properties.harness.tolerance import tolerance_for

from tests.test_mutants import MODULES

CPU = torch.device("cpu")


def main(seeds: list[int]) -> int:
    props, misses = load_all(), []
    for module in MODULES:
        for name, pids in module.MUTANTS.items():
            for dtype in (torch.float32, torch.bfloat16):
                ctx = Context(getattr(module, name)(), CPU, dtype, tolerance_for(dtype, CPU))
                for pid in pids:
                    for seed in seeds:
                        if run_property(props[pid], ctx, profile="ci", seed=seed).outcome != "fail":
                            misses.append(f"{name} survives {pid} in {dtype} at seed {seed}")
    print("\n".join(misses) or f"every listed pair caught at seeds {seeds}")
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main([int(s) for s in sys.argv[1:]] or [1, 2, 3]))
