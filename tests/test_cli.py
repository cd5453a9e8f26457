"""The console script: --version, spec, copy-task, help texts, option checks made before
anything heavy is imported, the commands that error messages suggest; exit codes."""

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from transformer_spec.properties.checks import load_all
from transformer_spec.properties.harness.progress import Progress
from transformer_spec.properties.targets.adapters import THIRD_PARTY
from transformer_spec.properties.targets.builtin import BUILTIN_TARGETS
from transformer_spec.reference.config import DTYPES
from transformer_spec.spec import load_spec
from transformer_spec.spec._cited import INDEX, cited_by_tests, render, scan

from transformer_spec import __version__
from transformer_spec._parser import build_parser
from transformer_spec.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_version() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "transformer_spec", "--version"], capture_output=True, text=True
    )
    assert run.returncode == 0 and run.stdout.strip() == f"transformer-spec {__version__}"


def test_spec_table_lists_clauses_with_sources(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["spec"]) == 0
    out = capsys.readouterr().out
    assert "ATTN-ROWSUM" in out and "Transformer notes in Chinese > Architecture" in out
    assert "informative" in out and out.rstrip().splitlines()[-1].startswith("1")


def test_spec_names_sources_by_title_not_by_file(capsys: pytest.CaptureFixture[str]) -> None:
    spec = load_spec()
    assert main(["spec"]) == 0
    out = capsys.readouterr().out
    assert not [f for f in spec.sources if f in out or f.split("_")[1][:8] in out]
    assert all(title in out for title in spec.sources.values())


def test_structure_clauses_name_the_tests_that_cite_them(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["spec", "--kind", "structure"]) == 0
    out = capsys.readouterr().out
    assert "tested by: tests/test_model.py::test_base_preset_is_the_original_model" in out
    assert "no property yet" not in out
    assert main(["spec", "--kind", "structure", "--json"]) == 0
    rows = {c["id"]: c for c in json.loads(capsys.readouterr().out)["clauses"]}
    assert rows["PE-FIXED"]["tests"] == [
        "tests/test_positional.py::test_sinusoidal_table_has_no_parameters"
    ]
    assert rows["PE-FIXED"]["sources"][0]["title"] in load_spec().sources.values()


def test_the_shipped_index_of_cited_tests_is_current() -> None:
    ids = [c.id for c in load_spec().clauses if c.kind == "structure"]
    fresh = scan(ROOT / "tests", ids)
    committed = (ROOT / "spec" / INDEX).read_text(encoding="utf-8")
    assert committed == render(fresh), f"spec/{INDEX} is stale: run `python tools/cite_index.py`"
    assert cited_by_tests() == {k: tuple(v) for k, v in fresh.items()}
    for tests in fresh.values():  # every cited test exists under that name
        for test in tests:
            file, name = test.split("::")
            assert f"def {name}(" in (ROOT / file).read_text(encoding="utf-8")


def test_spec_json_and_filters(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["spec", "--json", "--kind", "informative", "--section", "scaling"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["clauses"] and all(
        c["kind"] == "informative" and c["section"] == "scaling" for c in data["clauses"]
    )


def test_unknown_section_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["spec", "--section", "nope"]) == 2
    assert "unknown section 'nope'" in capsys.readouterr().err


def test_unknown_command_exits_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["frobnicate"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "invalid choice: 'frobnicate' (choose from" in err


def test_mutants_list_names_each_mutant_and_its_bug(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mutants", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) >= 30 and "causal-off-by-one: " in "\n".join(lines)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["mutants", "no-such-mutant"], "no mutant matches ['no-such-mutant']"),
        (["mutants", "--jobs", "0"], "--jobs 0: expected >= 1"),
        (["mutants", "--markdown", "/no/such/folder/m.md"], "does not exist or is not writable"),
        (["copy-task", "--steps", "0"], "--steps 0: expected >= 1"),
        (["table", "--jobs", "0"], "--jobs 0: expected >= 1"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_mutants_run_on_one_mutant_reports_its_killers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A chosen subset skips the every-property-catches-a-mutant check: exit 0 when killed.
    assert main(["mutants", "padding-on-the-left", "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    assert "killed   padding-on-the-left" in out
    assert re.search(r"vocabulary\.pad_batch_keeps_tokens \(\d+\)", out), out


def test_copy_task_reports_its_steps(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["copy-task", "--steps", "2"]) == 1  # two steps learn nothing: below 99%
    out = capsys.readouterr().out
    assert re.search(r"step +2/2 +loss \d\.\d\de\+\d\d", out), out
    assert "greedy-decoding 1000 held-out sequences" in out and "accuracy 0." in out


# --- help texts ---------------------------------------------------------------------------


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    actions = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(actions[0].choices)


def test_every_option_of_every_command_has_a_help_text() -> None:
    commands = _subparsers()
    assert set(commands) == {"spec", "check", "mutants", "table", "board", "merge", "copy-task"}
    for name, parser in commands.items():
        assert parser.description, name
        for action in parser._actions:
            assert action.help and action.help.strip(), (name, action.dest)


def test_check_help_lists_every_built_in_target_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from transformer_spec.properties.harness.names import BUILTIN

    assert main(["check", "--help"]) == 0
    out = capsys.readouterr().out
    for name in BUILTIN:
        assert re.search(rf"^  {re.escape(name)} +\S", out, re.M), name
    assert "--device DEVICE       cpu, cuda or cuda:N (default cpu)" in out


def test_copy_task_help_gives_a_description_and_the_defaults(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["copy-task", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "Train the reference encoder-decoder" in out
    assert "(default 500)" in out and "(default 0)" in out


def test_the_light_dtype_names_are_the_references() -> None:
    """One dtype table (reference.config.DTYPES); the places that must not import torch (the
    CLI's option checks, the GPU benchmark's driver, nox) hold its names, kept equal here."""
    import ast

    def literal(path: str) -> list[str]:
        tree = ast.parse((Path(__file__).parents[1] / path).read_text())
        return next(
            list(ast.literal_eval(node.value))
            for node in ast.walk(tree)
            if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "DTYPES"
        )

    from transformer_spec.properties.harness.profiles import DTYPE_WORDS

    for names in (DTYPE_WORDS, literal("benchmarks/gpu.py"), literal("noxfile.py")):
        assert list(names) == list(DTYPES)


def test_the_light_target_table_is_what_the_targets_declare() -> None:
    """harness/names.py describes the built-in targets without loading them (the Plan filters
    a table's cells and sizes a run with it): the same names in the same order, the devices
    and the adapter levels each one declares once loaded."""
    from transformer_spec.properties.harness.names import BUILTIN
    from transformer_spec.properties.targets.protocols import LEVEL_FIELDS

    assert list(BUILTIN) == [*BUILTIN_TARGETS, *THIRD_PARTY]
    for name, light in BUILTIN.items():
        if name.startswith("hf-"):
            pytest.importorskip("transformers")
        target = {**BUILTIN_TARGETS, **THIRD_PARTY}[name]()
        assert light.devices == target.conventions.devices, name
        offered = [f for f in LEVEL_FIELDS.values() if getattr(target, f) is not None]
        assert sorted(light.levels) == sorted(offered), name


# --- check --list -------------------------------------------------------------------------


def test_check_list_prints_every_property_with_its_level_and_clauses(
    capsys: pytest.CaptureFixture[str],
) -> None:
    props = load_all()
    assert main(["check", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line.split(None, 2) for line in lines[1 : len(props) + 1]}
    assert set(rows) == set(props)
    for pid, (_, level, clauses) in rows.items():
        assert level == props[pid].needs[0].split(".")[0]
        assert clauses == ", ".join(props[pid].clauses)
    starts = {re.match(r"\S+ +", line).end() for line in lines[: len(props) + 1]}  # type: ignore[union-attr]
    assert len(starts) == 1  # one aligned column
    assert lines[-1] == f"{len(props)} properties"


def test_check_list_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--list", "--json", "--property", "masking.*"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and all(r["id"].startswith("masking.") for r in rows)
    leak = next(r for r in rows if r["id"] == "masking.causal_no_future_leak")
    assert leak["clauses"] == ["MASK-CAUSAL-NO-LEAK"] and leak["level"] == "attention"
    assert leak["needs"] and leak["description"]


def test_a_bare_json_without_list_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--json"]) == 2
    assert "--json: expected a PATH" in capsys.readouterr().err


# --- every suggested command exists -------------------------------------------------------

SUGGESTING = [
    ["check", "--property", "nosuch"],
    ["check", "mutant:no-such-mutant"],
    ["check", "--no-such-option"],
    ["table", "--no-such-option"],
    ["mutants", "no-such-mutant"],
    ["mutants", "--jobs", "one"],
    ["board", "no-such-architecture"],
    ["spec", "--kind", "nothing"],
    ["copy-task", "--steps", "many"],
    ["frobnicate"],
]


@pytest.mark.parametrize("argv", SUGGESTING, ids=" ".join)
def test_every_suggested_command_exists_and_runs(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    suggested = re.findall(r"see `([^`]+)`", err)
    assert len(suggested) == 1, err
    words = shlex.split(suggested[0])
    assert words[0] == "transformer-spec", suggested
    assert main(words[1:]) == 0, suggested
    assert capsys.readouterr().out.strip()


def test_every_suggestion_in_the_source_is_covered() -> None:
    """Each `see `transformer-spec ...`` in the source is one that the test above runs."""
    found = set()
    for folder in ("src", "properties"):
        for path in (ROOT / folder).rglob("*.py"):
            found |= set(re.findall(r"see `(transformer-spec [^`{]+)`", path.read_text()))
    assert found == {
        "transformer-spec check --list",
        "transformer-spec mutants --list",
        "transformer-spec board --list",
    }


# --- options are checked before anything heavy is imported --------------------------------

LIGHT = [
    (["check", "--dtype", "float8"], "--dtype 'float8': expected one of"),
    (["check", "--device", "tpu"], "--device: 'tpu' is not a device"),
    (["check", "--call-timeout", "-1"], "--call-timeout -1: expected seconds >= 0"),
    (["check", "--json", "/no/such/folder/r.json"], "does not exist or is not writable"),
    (["check", "--pictures", "README.md"], "exists and is not a folder"),
    (["table", "--dtype", "int8"], "--dtype 'int8': expected one of"),
    (["table", "--jobs", "0"], "--jobs 0: expected >= 1"),
    (["mutants", "--jobs", "0"], "--jobs 0: expected >= 1"),
    (["copy-task", "--steps", "0"], "--steps 0: expected >= 1"),
]


@pytest.mark.parametrize(("argv", "message"), LIGHT, ids=[" ".join(a) for a, _ in LIGHT])
def test_bad_options_are_refused_before_torch_is_imported(argv: list[str], message: str) -> None:
    probe = (
        "import sys; from transformer_spec.cli import main; code = main(sys.argv[1:]); "
        "print('torch' in sys.modules); sys.exit(code)"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe, *argv], capture_output=True, text=True, cwd=ROOT
    )
    assert run.returncode == 2 and message in run.stderr, run.stderr
    assert run.stdout.strip() == "False", "torch was imported before the option was refused"


def test_bad_options_are_refused_before_the_target_is_imported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "imported"
    (tmp_path / "noisy_target.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).touch()\ndef make(): ...\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "noisy_target", raising=False)
    for bad in (
        ["--dtype", "float8"],
        ["--device", "cuda:99"],
        ["--property", "nosuch"],
        ["--known-failures", str(tmp_path / "missing.txt")],
        ["--markdown", str(tmp_path / "no" / "such.md")],
    ):
        assert main(["check", "noisy_target:make", *bad]) == 2, bad
        assert not marker.exists(), f"the target was imported before {bad} was refused"
    assert main(["check", "noisy_target:make"]) == 2  # a good run imports it (and refuses it)
    assert marker.exists() and "the factory returned NoneType" in capsys.readouterr().err


# --- progress -----------------------------------------------------------------------------


class _Clock:
    """Time the test sets: the Progress reads it, nothing sleeps."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_quiet_run_prints_a_heartbeat_saying_what_runs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    clock = _Clock()
    progress = Progress(total=3, quiet=8.0, clock=clock)
    progress.note(0, "reference-math float32 masking.causal_no_future_leak (4/73)")
    clock.now = 7.9
    progress.tick()
    assert capsys.readouterr().err == ""
    clock.now = 8.0
    progress.tick()
    err = capsys.readouterr().err
    assert "... 0/3 done, running: reference-math float32 masking.causal_no_future_leak" in err
    assert "(8 s so far)" in err


def test_a_run_that_prints_often_prints_no_heartbeat(capsys: pytest.CaptureFixture[str]) -> None:
    clock = _Clock()
    progress = Progress(quiet=8.0, clock=clock)
    for i in range(20):  # a line every 7 s for 140 s
        clock.now = 7.0 * i
        progress.line(f"line {i}")
        progress.tick()
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out.count("line ") == 20


def test_a_run_leaves_no_hypothesis_folder_in_the_project(tmp_path: Path) -> None:
    """Hypothesis's cache (constants of the user's own modules: here the target's) goes to
    the user's cache folder, not ./.hypothesis."""
    env = {k: v for k, v in os.environ.items() if k != "HYPOTHESIS_STORAGE_DIRECTORY"}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    project = tmp_path / "project"
    project.mkdir()
    (project / "kernel.py").write_text(
        "from transformer_spec.properties.targets.builtin import reference_target\n\n\n"
        "def target():\n    return reference_target('math')\n"
    )
    argv = ["check", "kernel:target", "--dtype", "float32", "--property", "attention.perm*"]
    run = subprocess.run(
        [sys.executable, "-m", "transformer_spec", *argv],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert [p.name for p in project.iterdir()] == ["kernel.py"]
    assert (tmp_path / "cache" / "transformer-spec" / "hypothesis").is_dir()
