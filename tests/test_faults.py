"""A faulty target is diagnosed, never trusted: each fault of tests/faulty_targets.py fails
the property that meets it with the guard's diagnosis (in the text and the JSON report's
`fault`), the other properties still run and pass, the report is written, and global torch
state is as it was."""

import json
import sys
from pathlib import Path

import pytest
import torch
from transformer_spec.properties.harness import guard

from transformer_spec.cli import DEFAULT_CALL_TIMEOUT, main

FAULTY = "tests.faulty_targets"
CAUSAL = "masking.causal_no_future_leak"  # meets the fault (causal calls)
PLAIN = "attention.matches_float64_formula"  # does not: must still pass


@pytest.fixture(autouse=True)
def _from_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(Path(__file__).resolve().parents[1])


def _state() -> tuple[object, ...]:
    return (
        torch.get_default_dtype(),
        torch.is_grad_enabled(),
        torch.are_deterministic_algorithms_enabled(),
        torch.get_rng_state(),
    )


def _run(target: str, tmp_path: Path, *options: str) -> tuple[int, dict[str, dict[str, str]]]:
    """Check `target` on the two properties; (exit code, results by property id)."""
    report = tmp_path / "report.json"
    argv = ["check", target, "--profile", "ci", "--json", str(report), *options]
    code = main([*argv, "--property", CAUSAL, "--property", PLAIN])
    results = json.loads(report.read_text())["cells"][0]["results"]
    return code, {r["property"]: r for r in results}


@pytest.mark.parametrize(
    ("factory", "fault", "diagnosis"),
    [
        ("raises", "raised", "the target raised RuntimeError: kernel exploded"),
        ("exits", "raised", "attention called sys.exit(3)"),
        ("returns_nan", "non_finite", "non-finite value(s) in result[0] from finite inputs"),
        ("returns_inf", "non_finite", "from finite inputs, the first inf at"),
        ("wrong_shape", "output", "attention returned shape (1, 1, 2, 0), expected (1, 1, 2, 1)"),
        ("wrong_dtype", "output", "of dtype torch.float64, expected torch.float32"),
        ("wrong_device", "output", "attention returned result[0] on meta, expected cpu"),
        ("not_a_tensor", "output", "returned (list, Tensor), expected (Tensor, Tensor or None)"),
        ("not_a_tuple", "output", "attention returned Tensor, expected tuple"),
        ("mutates_input", "mutation", "modified its input (argument 3, shape"),
        ("nondeterministic", "nondeterministic", "two identical calls in a row gave result[0]"),
        ("sets_default_dtype", "state", "default dtype from torch.float32 to torch.float64"),
        ("disables_grad", "state", "changed the grad mode from True to False"),
        ("sets_deterministic", "state", "deterministic-algorithms flag from off to on"),
        ("reseeds_rng", "state", "changed the global RNG state"),
        ("draws_global_rng", "state", "changed the global RNG state"),
        ("out_of_memory", "out_of_memory", "ran out of memory (CUDA out of memory. Tried"),
        ("hangs", "hang", "did not return within 1 s (the per-call time limit"),
    ],
)
def test_fault_is_diagnosed_and_the_run_goes_on(
    factory: str, fault: str, diagnosis: str, tmp_path: Path
) -> None:
    before = _state()
    timeout = "1" if factory == "hangs" else "30"
    code, results = _run(f"{FAULTY}:{factory}", tmp_path, "--call-timeout", timeout)
    assert code == 1
    failed = results[CAUSAL]
    assert failed["outcome"] == "fail" and failed["fault"] == fault, failed
    assert diagnosis in failed["message"], failed["message"]
    assert results[PLAIN]["outcome"] == "pass", results[PLAIN]  # the harness kept going
    after = _state()
    assert after[:3] == before[:3] and torch.equal(after[3], before[3])  # type: ignore[arg-type]


def test_a_declared_nondeterministic_target_is_not_repeated(tmp_path: Path) -> None:
    code, results = _run(f"{FAULTY}:declared_nondeterministic", tmp_path)
    assert code == 0 and results[CAUSAL]["outcome"] == "pass"


def test_model_output_of_the_wrong_shape(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["check", f"{FAULTY}:model_logits_wrong_shape", "--property", "model.output_shape"])
    out = capsys.readouterr().out
    assert code == 1
    assert "model.logits returned shape" in out and "expected (1, " in out, out


def test_a_factory_that_changes_global_state(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["check", f"{FAULTY}:factory_sets_default_dtype", "--property", "model.output_shape"]
    assert main(args) == 1
    out = capsys.readouterr().out
    assert "model factory changed the default dtype from torch.float32 to torch.float64" in out
    assert torch.get_default_dtype() == torch.float32


def test_a_module_that_changes_global_state_when_imported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "sets_dtype_on_import.py").write_text(
        "import torch\n"
        "from transformer_spec.properties.targets.builtin import reference_target\n"
        "torch.set_default_dtype(torch.float64)\n"
        "def target():\n"
        "    return reference_target('math')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "sets_dtype_on_import", raising=False)
    args = ["check", "sets_dtype_on_import:target", "--property", PLAIN]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "warning: loading target 'sets_dtype_on_import:target' changed the default dtype" in err
    assert torch.get_default_dtype() == torch.float32


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU to run out of its memory")
def test_running_out_of_gpu_memory_releases_it(tmp_path: Path) -> None:
    from .faulty_targets import _faulty

    def exhaust(q: object, k: object, v: object, out: object) -> object:
        return torch.empty(2**50, device="cuda")  # about a petabyte: always too much

    target = _faulty("exhausts-gpu", exhaust)
    from transformer_spec.properties.checks import load_all

    from tests.cells import run_cell

    props = [load_all()[CAUSAL], load_all()[PLAIN]]
    before = torch.cuda.memory_allocated()
    cell = run_cell(
        target, props, device=torch.device("cuda"), dtype=torch.float32, profile="ci", seed=0
    )
    assert cell.results[0].fault == "out_of_memory" and cell.results[1].outcome == "pass"
    assert torch.cuda.memory_allocated() == before


def test_the_cli_default_call_timeout_is_the_guards() -> None:
    assert DEFAULT_CALL_TIMEOUT == guard.DEFAULT_CALL_TIMEOUT


def test_every_protocol_method_has_a_contract() -> None:
    """The guard checks each call against targets.CONTRACTS: a method added to a Protocol
    without a row would go unchecked, and a row without a method would be stale."""
    from transformer_spec.properties.targets.contracts import CONTRACTS, PROTOCOL_LEVELS

    def methods(protocol: type) -> set[str]:
        names = {n for n, v in vars(protocol).items() if callable(v) and not n.startswith("_")}
        return names | ({"__call__"} if "__call__" in vars(protocol) else set())

    wanted = {
        level if name == "__call__" else f"{level}.{name}"
        for level, protocols in PROTOCOL_LEVELS.items()
        for protocol in protocols
        for name in methods(protocol)
    }
    assert wanted == set(CONTRACTS)
    assert set(guard._RETURNS) <= set(CONTRACTS) and set(guard._PURE) <= set(CONTRACTS)


def test_the_registry_and_the_kill_matrix_name_the_protocol_levels() -> None:
    """One table of levels (targets.PROTOCOL_LEVELS, with LEVEL_FIELDS: each level's field of
    Target): the registry's needs start with a level's field, and the kill matrix's reach
    names only levels' fields."""
    from dataclasses import fields

    from transformer_spec.properties.harness.registry import NEEDS
    from transformer_spec.properties.reports.kill_matrix import REACHES
    from transformer_spec.properties.targets.contracts import LEVEL_FIELDS, PROTOCOL_LEVELS
    from transformer_spec.properties.targets.protocols import Target

    assert set(LEVEL_FIELDS) == set(PROTOCOL_LEVELS)
    assert set(LEVEL_FIELDS.values()) <= {f.name for f in fields(Target)}
    assert {need.split(".")[0] for need in NEEDS} == set(LEVEL_FIELDS.values())
    assert set().union(*REACHES.values()) <= set(LEVEL_FIELDS.values())
