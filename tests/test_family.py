"""The family of correct implementations passes everything; every broken twin fails
(issue 17: no false alarm on a correct implementation, whatever it honestly declares).

The test suite runs the pairwise covering set; `benchmarks.false_alarms --family` runs the
family over many seeds, and `--family-full` every combination."""

import pytest
import torch
from transformer_spec.properties.checks import load_all

from tests import family
from tests.cells import run_cell

CPU = torch.device("cpu")
DTYPES = {
    "float64": torch.float64,
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}


def _failures(name: str, dtype: str, seed: int = 0) -> list[str]:
    target = family.MEMBERS[name]()
    cell = run_cell(
        target, list(load_all().values()), device=CPU, dtype=DTYPES[dtype], profile="ci", seed=seed
    )
    ran = [r for r in cell.results if r.outcome != "not_applicable"]
    assert ran, f"{name}: no property applied"
    return [
        f"{r.property}: {r.message.splitlines()[0] if r.message else ''}"
        for r in ran
        if r.outcome == "fail"
    ]


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("name", family.correct())
def test_a_correct_member_passes(name: str, dtype: str) -> None:
    assert _failures(name, dtype) == []


@pytest.mark.parametrize("name", family.twins())
def test_a_broken_twin_fails(name: str) -> None:
    for dtype in family.twin_dtypes(name):
        assert _failures(name, dtype), f"{name} passed in {dtype}"


@pytest.mark.parametrize("key", ["attn", "mha", "norm", "gqa", "rope"])
def test_the_covering_set_covers_every_possible_pair(key: str) -> None:
    choices, valid = family._SETS[key]
    rows = family.pairwise(key)
    possible = family.product(choices, valid)
    names = list(choices)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            for va in choices[a]:
                for vb in choices[b]:
                    if any(r[a] == va and r[b] == vb for r in possible):
                        assert any(r[a] == va and r[b] == vb for r in rows), (a, va, b, vb)


def test_a_float16_self_attention_does_not_overflow_on_the_leak_probe() -> None:
    """The family study's only failures (4 of 1480 cells, seed 8): the multi-head leak probe
    changed later rows to -4 x + 100, so q.k of a changed row with itself overflowed float16
    in a correct naive kernel, and the guard reported NaN from finite inputs."""
    name = "mha_true_attends_bottom_right_finite_isqrt_build_det_per_head_cross_argument_pad"
    target = family.MEMBERS[name]()
    cell = run_cell(
        target,
        [load_all()["multihead.causal_no_future_leak"]],
        device=CPU,
        dtype=torch.float16,
        profile="ci",
        seed=8,
    )
    assert [r.outcome for r in cell.results] == ["pass"], cell.results[0].message
