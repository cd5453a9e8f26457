"""A parameter without a gradient is judged by what it does to the loss (issue 30): the
designs of tests/silent_parameters.py pass the training properties in every dtype, their
broken twins fail (tests/test_mutants.py runs those through MUTANTS), and each part of the
judgement is needed."""

import pytest
import torch
from transformer_spec.properties import Target
from transformer_spec.properties.checks import load_all
from transformer_spec.properties.harness import reads
from transformer_spec.properties.harness.registry import Context
from transformer_spec.properties.harness.results import Result
from transformer_spec.properties.harness.runner import run_property
from transformer_spec.properties.harness.tolerance import tolerance_for

from . import silent_parameters as S

CPU = torch.device("cpu")
ALL = [torch.float64, torch.float32, torch.bfloat16, torch.float16]
GRADIENTS = "training.end_to_end_gradients"


def outcome(target: Target, pid: str, dtype: torch.dtype) -> Result:
    ctx = Context(target, CPU, dtype, tolerance_for(dtype, CPU))
    return run_property(load_all()[pid], ctx, profile="ci", seed=0)


@pytest.mark.parametrize("dtype", ALL)
@pytest.mark.parametrize("factory", S.CORRECT, ids=lambda f: f.__name__)
def test_a_parameter_silent_by_design_passes(factory: object, dtype: torch.dtype) -> None:
    result = outcome(factory(), GRADIENTS, dtype)  # type: ignore[operator]
    assert result.outcome == "pass", result.message


@pytest.mark.parametrize("factory", [S.frozen_sinusoid, S.balancing_bias, S.zero_gate])
def test_silent_parameters_do_not_stop_fine_tuning(factory: object) -> None:
    result = outcome(factory(), "training.fine_tunes_pretrained_embedding", torch.bfloat16)  # type: ignore[operator]
    assert result.outcome == "pass", result.message


def test_influence_through_indices_is_followed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without following the indexer's influence through its argmax, its weights, read and
    then seemingly dropped, would be called dead."""
    monkeypatch.setattr(reads.Reads, "carried", lambda self, result: set())
    result = outcome(S.indexer(), GRADIENTS, torch.float32)
    assert result.outcome == "fail" and "its result is discarded" in result.message


def test_padding_rows_are_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without leaving out the row an embedding declares as padding, the loss would move
    along a row that backprop gives nothing, and a correct model would read as cut."""
    from transformer_spec.properties.checks import training

    monkeypatch.setattr(training, "_without_padding_rows", lambda dirs, rows: dirs)
    result = outcome(S.padding_row(), GRADIENTS, torch.float32)
    assert result.outcome == "fail" and "differs from the finite difference" in result.message


@pytest.mark.parametrize(
    ("factory", "says"),
    [
        (S.branch_detached, "differs from the finite difference"),
        (S.weight_as_constant, "differs from the finite difference"),
        (S.bias_frozen_at_init, "depends on the seed"),
        (S.branch_discarded, "its result is discarded"),
    ],
)
def test_a_lost_gradient_is_named(factory: object, says: str) -> None:
    result = outcome(factory(), GRADIENTS, torch.float32)  # type: ignore[operator]
    assert result.outcome == "fail" and says in result.message, result.message
