"""nox sessions. `nox` runs lint, typecheck, tests and the property suite over every
device x dtype cell; `nox -l` lists them, and one cell runs alone with
`nox -s "properties(device='cpu', dtype='bfloat16')"`.

torch is installed once per run: the `env` session builds one shared environment (the
package with its test, hf, pictures and mutation extras, mypy, ruff; versions from
constraints.txt) and every other session runs its commands from there
(`venv_backend="none"`, `requires=["env"]`).
`nox -s slow` (not run by default; CI runs it after `nox`) runs the three slow tests, and
`nox -s mutation` (not run by default) runs mutmut over reference/ and writes docs/mutation.md.
The package itself keeps an open torch range for users.

`nox -s conformance -- MODULE:FACTORY` checks your own target in every cell this machine
can run. A cuda cell on a machine without a GPU is skipped with the reason.
"""

import json
import os
import shutil
import sys
import tarfile
import time
from pathlib import Path

import nox

nox.options.sessions = ["lint", "typecheck", "tests", "properties"]
nox.options.error_on_missing_interpreters = True

CONSTRAINTS = ("-c", "constraints.txt")
SHARED = Path(".nox") / "env"  # the `env` session's virtualenv
DEVICES = ["cpu", "cuda"]
DTYPES = ["float64", "float32", "bfloat16", "float16"]


def _bin(name: str) -> str:
    folder = "Scripts" if sys.platform == "win32" else "bin"
    return str(SHARED / folder / name)


HEARTBEAT = str(Path("tools", "heartbeat.py").resolve())


def _beat(session: nox.Session, *command: str, env: dict[str, str] | None = None) -> None:
    """Run `command` with its output passed through, and a line whenever it has been silent
    for 8 s (tools/heartbeat.py): no session is silent for 10 s. nox's own interpreter runs
    the heartbeat (standard library only), so it works before the env session exists."""
    session.run(sys.executable, HEARTBEAT, "--", *command, external=True, env=env)


def _run(session: nox.Session, tool: str, *args: str) -> None:
    _beat(session, _bin(tool), *args)


@nox.session(reuse_venv=True)
def env(session: nox.Session) -> None:
    """The one environment: a regular (non-editable) install, as users get the package,
    with the tools of every session (mutmut for `mutation`)."""
    extras = ".[test,hf,pictures,mutation,release]"
    pip = (str(Path(session.bin, "python")), "-m", "pip", "install", "--progress-bar", "off")
    # run_install: skipped by `nox --no-install`, as session.install is; pip's output shown.
    session.run_install(
        sys.executable,
        HEARTBEAT,
        "--",
        *pip,
        *CONSTRAINTS,
        extras,
        "mypy",
        "ruff",
        "nox",
        external=True,
    )


@nox.session(venv_backend="none", requires=["env"])
def lint(session: nox.Session) -> None:
    _run(session, "ruff", "check", ".")
    _run(session, "ruff", "format", "--check", ".")


@nox.session(venv_backend="none", requires=["env"])
def typecheck(session: nox.Session) -> None:
    _run(session, "mypy", "-p", "transformer_spec")
    _run(session, "mypy", "--strict", "tests", "tools", "benchmarks", "examples", "noxfile.py")


@nox.session(venv_backend="none", requires=["env"])
def tests(session: nox.Session) -> None:
    """Every test but the three slow ones (`nox -s slow`, which CI also runs)."""
    _run(session, "pytest", "-n", "auto", "-m", "not slow", *session.posargs)


@nox.session(venv_backend="none", requires=["env"], default=False)
def slow(session: nox.Session) -> None:
    """The tests marked slow (minutes each): the whole kill matrix, the committed conformance
    table regenerated, the copy task learnt. Not in the default `nox`; CI runs it after."""
    # One at a time: the kill matrix and the table each spread over the cores themselves.
    _run(session, "pytest", "-p", "no:xdist", "-m", "slow", *session.posargs)


def _has_cuda(session: nox.Session) -> bool:
    probe = "import torch; print(torch.cuda.is_available())"
    found = session.run(_bin("python"), "-c", probe, external=True, silent=True)
    return str(found).strip() == "True"


def _check(session: nox.Session, device: str, dtypes: list[str], targets: list[str]) -> None:
    """`transformer-spec check` (ci profile) with a JSON report under .nox/reports/."""
    name = "-".join(t.replace(":", "_") for t in targets) or "reference"
    report = Path(".nox") / "reports" / f"{name}-{device}-{'-'.join(dtypes)}.json"
    report.parent.mkdir(parents=True, exist_ok=True)
    words = [w for d in dtypes for w in ("--dtype", d)]
    _run(
        session,
        "transformer-spec",
        "check",
        *targets,
        "--device",
        device,
        *words,
        "--profile",
        "ci",
        "--jobs",  # one pytest session over the cores (pytest-xdist)
        str(os.cpu_count() or 1),
        "--json",
        str(report),
    )


@nox.session(venv_backend="none", requires=["env"])
@nox.parametrize(("device", "dtype"), [(device, dtype) for device in DEVICES for dtype in DTYPES])
def properties(session: nox.Session, device: str, dtype: str) -> None:
    """The property suite on the reference (both attention paths) in one cell."""
    if device == "cuda" and not _has_cuda(session):
        session.skip("no CUDA device on this machine: the cuda cell is not run")
    _check(session, device, [dtype], [])


@nox.session(venv_backend="none", requires=["env"], default=False)
def conformance(session: nox.Session) -> None:
    """Your targets (MODULE:FACTORY, looked up from the current folder, or built-in names)
    in every dtype on cpu, and on cuda when this machine has a GPU."""
    if not session.posargs:
        session.error("usage: nox -s conformance -- MODULE:FACTORY [MODULE:FACTORY ...]")
    _check(session, "cpu", DTYPES, list(session.posargs))
    if _has_cuda(session):
        _check(session, "cuda", DTYPES, list(session.posargs))
    else:
        session.log("no CUDA device on this machine: the cuda cells are not run")


@nox.session(venv_backend="none", requires=["env"], default=False)
def mutation(session: nox.Session) -> None:
    """mutmut over every file of reference/, the property suite as the test command
    (tools/mutation_suite.py), then docs/mutation.md (which gives the time it took);
    `nox -s mutation -- "transformer_spec.reference.masks*"` runs one file's mutants."""
    _run(session, "python", "tools/mutation_report.py", "stage")
    stage = Path("build") / "mutation"
    command = ["mutmut", "run", "--max-children", str(os.cpu_count() or 2), *session.posargs]
    mutmut = str(Path(_bin("mutmut")).resolve())  # before the chdir: _bin is relative
    load = os.getloadavg()
    start = time.monotonic()
    with session.chdir(stage):
        # One torch thread per forked worker: mutmut runs the workers in parallel.
        session.run(mutmut, *command[1:], external=True, env={"OMP_NUM_THREADS": "1"})
    wall = time.monotonic() - start
    run = {
        "command": f"`nox -s mutation` (`{' '.join(command)}` in build/mutation)",
        "wall time": f"{wall / 60:.1f} minutes ({os.cpu_count()} cores)",
        "load average (1, 5, 15 min) before": ", ".join(f"{x:.2f}" for x in load),
        "load average after": ", ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    (stage / "run.json").write_text(json.dumps(run, indent=1) + "\n")
    _run(session, "python", "tools/mutation_report.py", "export")
    _run(session, "python", "tools/mutation_report.py", "report")


RELEASE = Path("build") / "release"
WORKFLOW = Path("examples") / "ci" / "conformance.yml"


def workflow_steps(path: Path = WORKFLOW) -> list[str]:
    """The `run:` commands of a GitHub Actions workflow, in order (one line each)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.split("- run:", 1)[1].strip() for line in lines if "- run:" in line]


@nox.session(venv_backend="none", requires=["env"], default=False)
def release(session: nox.Session) -> None:
    """The release as a user gets it: build the sdist and wheel (build/release/dist), check
    their metadata (twine check), install the wheel with its dependencies in a fresh virtual
    environment, and from there, in a folder outside the source tree, run the CLI and the
    pytest plugin on the example adapter, then every `run:` step of
    examples/ci/conformance.yml (its checkout of transformer-spec is the unpacked sdist).
    pip takes the versions of constraints.txt (PIP_CONSTRAINT), as CI does."""
    shutil.rmtree(RELEASE, ignore_errors=True)
    dist = RELEASE / "dist"
    _run(session, "python", "-m", "build", "--outdir", str(dist), ".")
    built = sorted(str(p) for p in dist.iterdir())
    _run(session, "twine", "check", "--strict", *built)
    venv = (RELEASE / "venv").resolve()
    _run(session, "python", "-m", "venv", str(venv))
    env = {
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "VIRTUAL_ENV": str(venv),
        "PIP_CONSTRAINT": str(Path("constraints.txt").resolve()),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    wheel = next(p for p in built if p.endswith(".whl"))
    _beat(session, str(venv / "bin" / "pip"), "install", "--progress-bar", "off", wheel, env=env)
    work = RELEASE / "work"
    shutil.copytree("examples", work / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    sdist = next(p for p in built if p.endswith(".tar.gz"))
    with tarfile.open(sdist) as archive:
        archive.extractall(work, filter="data")
    (work / Path(sdist).name.removesuffix(".tar.gz")).rename(work / "transformer-spec")
    version = _version()
    target = "examples.my_kernels:my_target"
    with session.chdir(work):
        cli = str(venv / "bin" / "transformer-spec")  # nox looks programs up on its own PATH
        said = session.run(cli, "--version", external=True, env=env, silent=True)
        if str(said).strip() != f"transformer-spec {version}":
            session.error(f"--version said {str(said).strip()!r}, not transformer-spec {version}")
        _beat(session, cli, "check", target, "--profile", "quick", env=env)
        plugin = ["--pyargs", "transformer_spec.properties", "--ts-target", target, "-q"]
        _beat(session, "pytest", *plugin, "-p", "no:cacheprovider", env=env)
        for step in workflow_steps(Path("..", "..", "..", WORKFLOW)):
            _beat(session, "bash", "-ec", step, env=env)
    session.log(
        f"release {version}: {', '.join(Path(p).name for p in built)} built, checked, "
        "installed and run"
    )


def _version() -> str:
    text = Path("src", "transformer_spec", "_version.py").read_text(encoding="utf-8")
    return text.split('"')[1]
