"""The property suite as the mutation run's test command: one pytest item per
(cell, property), quick profile, seed 0. `tools/mutation_report.py stage` copies this file
into the staged tree as tests/test_suite.py; mutmut then runs, for each mutant, only the items
whose run reached the mutated function, and stops at the first failure.

The cells are what reaches every path of the reference: the math path in float32, the fused
path (torch SDPA) in float32, the math path in bfloat16 (the low-precision branches:
float32 statistics, softmax and sampling), and the math path declaring top-left causal
alignment (attention and multi-head levels). float64 takes no branch of its own.

The quick profile (10 examples per property, the local default) rather than ci (25): a mutant
that no property kills pays every property that reaches its function, on four cells, and
about 370 of them (the ones only a unit test kills, and the survivors) made a ci run take 83
minutes on two cores. A broken reference mostly fails in its first examples; a mutant that
10 examples miss and 25 would catch counts in the report as one the properties miss.
"""

import functools

import pytest
import torch
from transformer_spec.properties.checks import load_all
from transformer_spec.properties.harness.loading import load_target
from transformer_spec.properties.harness.registry import Context
from transformer_spec.properties.harness.runner import run_property
from transformer_spec.properties.harness.tolerance import tolerance_for
from transformer_spec.reference.config import DTYPES

CELLS = [
    ("reference-math", "float32"),
    ("reference-fused", "float32"),
    ("reference-math", "bfloat16"),
    # the causal mask's top-left branch, which the two above (bottom-right) never run
    ("transformer_spec.properties.targets.builtin:reference_top_left", "float32"),
]

torch.set_num_threads(1)  # forked workers: one thread each, the tool runs them in parallel


@functools.cache
def context(target: str, dtype: str) -> Context:
    device = torch.device("cpu")
    return Context(
        target=load_target(target),
        device=device,
        dtype=DTYPES[dtype],
        tolerance=tolerance_for(DTYPES[dtype], device),
    )


@pytest.mark.parametrize("property_id", sorted(load_all()))
@pytest.mark.parametrize("cell", CELLS, ids=[f"{t.rpartition(':')[2]}-{d}" for t, d in CELLS])
def test_property(cell: tuple[str, str], property_id: str) -> None:
    result = run_property(
        load_all()[property_id],
        context(*cell),
        profile="quick",
        seed=0,  # the same run every time (quick's default seed is random)
        shrink=False,  # a kill is all the run needs: no smaller counterexample
    )
    if result.outcome == "fail":
        pytest.fail(f"{property_id}: {result.message}", pytrace=False)
