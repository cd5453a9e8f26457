"""tools/mutation_report.py on a tiny fake result set: the score, the survivor list and the
stale-entry warnings (no mutation run here; `nox -s mutation` does the real one)."""

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "mutation_report", ROOT / "tools" / "mutation_report.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


M = _load()

ROWS = [
    {
        "file": "masks.py",
        "function": "causal_mask",
        "change": "- a | + b",
        "status": "killed",
        "killer": "tests/test_bad_inputs.py::test_x",
        "tier": "bad input",
    },
    {"file": "masks.py", "function": "causal_mask", "change": "- c | + d", "status": "timeout"},
    {"file": "masks.py", "function": "check_mask", "change": "- e | + f", "status": "survived"},
    {"file": "masks.py", "function": "check_mask", "change": "- g | + h", "status": "no tests"},
    {
        "file": "norm.py",
        "function": "LayerNorm.forward",
        "change": "- i | + j",
        "status": "survived",
    },
    {
        "file": "norm.py",
        "function": "LayerNorm.forward",
        "change": "- k | + l",
        "status": "killed",
        "killer": "tests/test_suite.py::test_property[x]",
        "tier": "property",
    },
]


def entry(function: str, change: str, kind: str, file: str = "masks.py") -> object:
    return M.Entry(file, function, change, kind, "a reason")


def test_score_leaves_out_equivalent_and_incompetent_mutants() -> None:
    entries = [entry("check_mask", "- e | + f", "equivalent")]
    text = M.render(ROWS, entries, unreached={"masks.py": 5}, header="# head")
    # masks.py: 4 generated, 1 killed + 1 timeout of 2 competent non-equivalent = 100%
    # (the killed one first by a bad-input test)
    assert "| masks.py | 5 | 4 | 1 | 0 | 1 | 1 | 0 | 0 | 1 | 1 | 0 | 0 | 100.0% |" in text
    # norm.py: one survivor, unexplained; the killed one first by a property
    assert "| norm.py | 0 | 2 | 1 | 1 | 0 | 0 | 0 | 0 | 0 | 0 | 1 | 0 | 50.0% |" in text
    assert "3 of 4 competent, non-equivalent mutants detected = **75.0%**" in text
    # 4 competent, 1 first by a bad-input test, none only by a unit test: at most 3 of 3
    assert "First failures: 1 a bad-input test, 1 a property, 0 only a unit test (1 timed" in text
    assert "Of the other 3 competent, non-equivalent mutants" in text
    assert "the properties detect 1 (**33.3%**); the unit tests kill 0 of the rest" in text
    assert "## Detected by a unit test only: what the properties miss" in text
    assert "Leaving out also the 0 survivors" in text
    unseeable = [*entries, entry("LayerNorm.forward", "- i | + j", "unseeable", file="norm.py")]
    assert "leaves out: 3 of 3 = **100.0%**" in M.render(ROWS, unseeable, unreached={}, header="")
    elsewhere = [*entries, entry("LayerNorm.forward", "- i | + j", "cell", file="norm.py")]
    counted = M.render(ROWS, elsewhere, unreached={}, header="")
    assert "= **75.0%**" in counted and "leaves out: 4 of 4 = **100.0%**" in counted
    assert "`norm.py` `LayerNorm.forward` `- i | + j` (survived): **unexplained" in text
    assert "`masks.py` `check_mask` `- e | + f` (survived): equivalent: a reason" in text
    assert "Stale" not in text


def test_stale_entries_are_warned_about() -> None:
    entries = [
        entry("check_mask", "- e | + f", "equivalent"),  # still survives: fine
        entry("causal_mask", "- a | + b", "equivalent"),  # now killed
        entry("gone", "- x | + y", "unseeable"),  # no such mutant any more
        entry("LayerNorm.forward", "- i | + j", "gap", file="norm.py"),  # closed gap survives
    ]
    warnings = M.stale(ROWS, entries)
    assert warnings == [
        "equivalent entry is now killed (remove it): masks.py causal_mask: - a | + b",
        "unseeable entry matches no mutant any more: masks.py gone: - x | + y",
        "closed gap is survived again: norm.py LayerNorm.forward: - i | + j",
    ]
    assert "## Stale entries" in M.render(ROWS, entries, unreached={}, header="# head")


def test_mutants_are_named_by_function_and_changed_lines() -> None:
    assert M.function_of("transformer_spec.reference.masks.x_causal_mask__mutmut_3") == (
        "causal_mask"
    )
    method = "transformer_spec.reference.norm.xǁLayerNormǁforward__mutmut_12"
    assert M.function_of(method) == "LayerNorm.forward"
    diff = "--- a.py\n+++ a.py\n@@ -1,2 +1,2 @@\n def f():\n-    return x  \n+    return None\n"
    assert M.change_of(diff) == "- return x | + return None"


def test_a_bad_entry_is_named(tmp_path: Path) -> None:
    path = tmp_path / "e.toml"
    path.write_text('[[mutant]]\nfile = "a.py"\nfunction = "f"\nchange = "- a"\nkind = "odd"\n')
    with pytest.raises(ValueError, match="entry 1 lacks reason"):
        M.load_entries(path)
    path.write_text(path.read_text() + 'reason = "r"\n')
    with pytest.raises(ValueError, match="kind 'odd' not in"):
        M.load_entries(path)


def test_the_shipped_entries_load() -> None:
    entries = M.load_entries(ROOT / "tools" / "mutation-equivalents.toml")
    keys = [e.key for e in entries]
    assert len(keys) == len(set(keys)), "one entry per mutant"


def test_report_main_reads_the_staged_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "results.json").write_text(json.dumps({"mutants": ROWS, "unreached": {}}))
    out = tmp_path / "mutation.md"
    monkeypatch.setattr(M, "REPORT", out)
    monkeypatch.setattr(M, "ROOT", tmp_path)
    assert M.main(["report", str(tmp_path)]) == 0
    assert out.read_text().startswith("# Mutation testing of reference/")
    assert M.main(["report", str(tmp_path / "none")]) == 2


def test_mutants_only_a_unit_test_kills_are_listed_with_the_test() -> None:
    row = {
        "file": "norm.py",
        "function": "Residual.forward",
        "change": "- x + y | + x - y",
        "status": "killed",
        "killer": "tests/test_layers.py::test_residual",
        "tier": "unit test",
    }
    text = M.render([row], [], unreached={}, header="")
    assert "the properties detect 0 (**0.0%**); the unit tests kill 1 of the rest" in text
    assert (
        "- `norm.py` `Residual.forward` `- x + y | + x - y`: tests/test_layers.py::test_residual"
        in text
    )
