"""reference-top-left: the reference declaring top-left causal alignment, the branch of the
causal mask that the two built-in targets (bottom-right) never run. The mutation run found
four mutants of that branch that nothing killed (tools/mutation-equivalents.toml, kind open)."""

import pytest
import torch
from transformer_spec.properties.checks import load_all
from transformer_spec.properties.harness.registry import Context
from transformer_spec.properties.harness.runner import run_property
from transformer_spec.properties.harness.tolerance import tolerance_for
from transformer_spec.properties.targets import builtin, mutants

from tests.cells import run_cell

CPU = torch.device("cpu")
ALIGNMENT = ("masking.causal_alignment_as_declared", "multihead.causal_alignment_as_declared")
# The top-left branch of reference/masks.py:causal_mask made wrong, as the mutation run did.
LINE = 'shift = k_len - q_len if alignment == "bottom_right" else 0'
TOP_LEFT_BUGS = [
    (LINE, LINE.replace("else 0", "else 1")),
    (LINE, LINE.replace('alignment == "bottom_right"', '(alignment == "bottom_right") or True')),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_top_left_reference_passes_every_applicable_property(dtype: torch.dtype) -> None:
    target = builtin.reference_top_left()
    cell = run_cell(
        target, list(load_all().values()), device=CPU, dtype=dtype, profile="ci", seed=0
    )
    assert cell.count("fail") == 0, [r.message for r in cell.results if r.outcome == "fail"]
    applied = {r.property for r in cell.results if r.outcome in ("pass", "convention")}
    assert set(ALIGNMENT) <= applied


@pytest.mark.parametrize(("old", "new"), TOP_LEFT_BUGS)
def test_a_wrong_top_left_branch_is_caught_there_and_only_there(old: str, new: str) -> None:
    bug = mutants.Mutant("top-left-branch", "top-left causal mask wrong", "masks", old, new)
    outcomes: dict[str, dict[str, str]] = {}
    with mutants.applied(bug) as mutated:
        targets = {
            "top-left": mutated.reference_top_left(),
            "bottom-right": mutated.reference_target("math"),
        }
        for name, target in targets.items():
            ctx = Context(target, CPU, torch.float32, tolerance_for(torch.float32, CPU))
            outcomes[name] = {
                pid: run_property(load_all()[pid], ctx, profile="ci", seed=0).outcome
                for pid in ALIGNMENT
            }
    assert set(outcomes["top-left"].values()) == {"fail"}
    assert set(outcomes["bottom-right"].values()) == {"pass"}, "why the built-ins miss it"
