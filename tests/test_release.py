"""The release as a user gets it (issue 34): the README's CI example is the committed
workflow, CI runs the session that runs its steps, and the package declares what its CLI
imports."""

import importlib.util
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("noxfile", ROOT / "noxfile.py")
assert _spec is not None and _spec.loader is not None
noxfile = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(noxfile)


def _readme_ci_block() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("In GitHub Actions, a job can gate on the exit code.")
    return readme[start:].split("```yaml", 1)[1].split("```", 1)[0]


def test_the_readme_ci_example_is_the_committed_workflow_job() -> None:
    workflow = (ROOT / noxfile.WORKFLOW).read_text(encoding="utf-8")
    job = workflow[workflow.index("  conformance:") :]
    assert _readme_ci_block().strip() == job.strip()


def test_the_release_session_runs_every_step_of_the_workflow_and_ci_runs_it() -> None:
    steps = noxfile.workflow_steps(ROOT / noxfile.WORKFLOW)
    assert steps[0] == "pip install ./transformer-spec"  # what exists: a checkout, not PyPI
    assert any(step.startswith("transformer-spec check ") for step in steps)
    assert all("pip install transformer-spec" not in s for s in steps)  # no such distribution
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r"^nox -s release$", ci, re.MULTILINE)


def test_what_check_imports_to_run_its_session_is_a_dependency() -> None:
    """`check` runs a pytest session (pytest-xdist for --jobs N): a plain install needs both
    (a wheel without them failed `transformer-spec check` with ModuleNotFoundError)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = {re.split(r"[<>=\[ ]", d, maxsplit=1)[0] for d in project["dependencies"]}
    assert {"torch", "pytest", "pytest-xdist", "hypothesis", "jaxtyping", "numpy"} <= names


def test_default_targets_whose_extra_is_missing_are_skipped_and_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without transformers, `table` with its default targets leaves the Hugging Face ones
    out and says so (it exited 2 before); a Hugging Face target named on the command line is
    still an exit-2 error that says how to install the extra."""
    import importlib.util

    from transformer_spec import _options
    from transformer_spec.cli import main

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "transformers" else real(name, *a),
    )
    kept, skipped = _options.missing_extra(["reference-math", "hf-gpt2", "hf:LlamaForCausalLM"])
    assert (kept, skipped) == (["reference-math"], ["hf-gpt2", "hf:LlamaForCausalLM"])
    words = [
        "--dtype",
        "float32",
        "--profile",
        "quick",
        "--property",
        "attention.weights_are_distributions",
    ]
    assert main(["table", *words, "--jobs", "1"]) == 0
    err = capsys.readouterr().err
    assert "skipped 4 default target(s) whose extra is not installed: hf-gpt2" in err
    assert "pip install 'transformer-spec[hf]'" in err


def test_the_version_has_its_changelog_section_and_the_cli_says_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from transformer_spec import __version__
    from transformer_spec.cli import main

    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert re.search(rf"^## {re.escape(__version__)}( |$)", changelog, re.MULTILINE)
    assert re.fullmatch(r"\d+\.\d+\.\d+", __version__)  # semantic versioning
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"transformer-spec {__version__}"
