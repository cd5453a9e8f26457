"""The CUDA path, checked in one command that always returns a report.

    python -m benchmarks.gpu [--out DIR] [--budget SECONDS] [--jobs N]
    python -m benchmarks.gpu --smoke --out DIR   # every part, tiny, on the CPU: < 1 minute

On a machine with one GPU, in one call (the package installed with a CUDA build of torch):

    python -m benchmarks.gpu --out $OUT

Six parts, each in its own subprocess with a slice of the budget (default 480 s), so that a
hang or a crash in one is recorded and the others still run:

1. the property suite on reference-math and reference-fused, on cuda, in all four dtypes,
   `ci` profile: the cells of the nox sessions `properties(device='cuda', dtype=...)`, run
   in parallel;
2. the conformance table on cuda: every built-in target that runs there (the SDPA flash,
   efficient and cuDNN backends and the torch.nn fast paths included), all four dtypes,
   with docs/conformance-known.txt;
3. a false-alarm study on cuda: seeds 1-3, every built-in target, all four dtypes;
4. the test suite's CUDA tests (`pytest tests -k cuda`);
5. training throughput (benchmarks.throughput --compile): the reference (fused path)
   against nn.TransformerEncoder, eager and under torch.compile, side by side in one process;
6. the environment: GPU, driver, torch, CUDA and cuDNN versions.

They run in the order 6, 1, 4, 5, 2, 3: the environment says whether there is a GPU at all,
and the two parts that scale with time come last (time a part leaves unused goes to the
parts after it). The property suite, the table and the study stop starting cells when their
slice is spent and name the cells not run (status "partial"); any part still running at the
end of its slice is ended ("timed out").

Writes to DIR (8 files, so that a runner that returns only a few files gets them all):
report.md (the report), summary.json (status, time and command of each part, and the
environment), properties.json, table.json, false-alarms.json (the checker's JSON reports),
tests.xml (JUnit), throughput.json, and log.txt (every part's output).

--smoke runs every part on the CPU at tiny sizes (a few properties, one seed, one dtype in
the table and the study, the throughput step at d_model 64 with torch.compile's eager
backend): it checks this command, not the GPU. Exit 0 when every part that ran passed, 1
when one failed or ran out of time, 2 for bad options, or (without --smoke) no CUDA device.
"""

import argparse
import importlib.metadata
import importlib.util
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NoReturn

ROOT = Path(__file__).resolve().parents[1]
DTYPES = ("float64", "float32", "bfloat16", "float16")
KNOWN = "docs/conformance-known.txt"
# The properties the smoke run checks: fast ones at the attention and model levels (the
# first applies to every attention-level target, SDPA's included).
SMOKE_PROPERTIES = ("attention.batch_items_independent", "model.output_shape")
MIN_SLICE = 10.0  # seconds; a part with less than this left is skipped, not started


@dataclass(frozen=True)
class Plan:
    out: Path
    work: Path  # scratch: each part's markdown and log before they go into the report
    smoke: bool
    jobs: int
    budget: float

    @property
    def device(self) -> str:
        return "cpu" if self.smoke else "cuda"


@dataclass
class Outcome:
    status: str = "skipped"  # passed / partial (cells not run) / failed / timed out / skipped
    seconds: float = 0.0
    slice_s: float = 0.0
    reason: str = ""
    command: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Part:
    key: str
    title: str
    weight: float  # share of the budget left when the part starts
    command: Callable[[Plan, float], list[str]]  # (plan, seconds) -> argv
    section: Callable[[Plan], list[str]]  # the report's lines on what the part found
    cells: str = ""  # its JSON report of table cells, which lists the cells not run


def _python(*args: str) -> list[str]:
    return [sys.executable, *args]


def _cells_budget(seconds: float) -> str:
    """Cells stop starting early enough to leave time to start up and write the reports."""
    return f"{max(5.0, seconds * 0.85 - 15):.0f}"


def _table_argv(plan: Plan, seconds: float, name: str, options: list[str]) -> list[str]:
    """`transformer-spec table`: its cells run in parallel and stop at a budget."""
    return _python(
        "-m", "transformer_spec", "table", "--device", plan.device, "--jobs", str(plan.jobs),
        "--budget", _cells_budget(seconds), "--json", str(plan.out / f"{name}.json"),
        "--markdown", str(plan.work / f"{name}.md"), *options,
    )  # fmt: skip


def _each(option: str, values: tuple[str, ...]) -> list[str]:
    return [word for value in values for word in (option, value)]


def properties_argv(plan: Plan, seconds: float) -> list[str]:
    # The cells of the nox sessions properties(device=..., dtype=...): both reference
    # targets, `ci` profile, seed 0; as table cells, so that they run in parallel.
    options = [*_each("--dtype", DTYPES), "reference-math", "reference-fused"]
    if plan.smoke:
        options += _each("--property", SMOKE_PROPERTIES)
    return _table_argv(plan, seconds, "properties", options)


def table_argv(plan: Plan, seconds: float) -> list[str]:
    options = ["--known-failures", KNOWN]
    if plan.smoke:
        options += ["--dtype", "float32", "--property", SMOKE_PROPERTIES[0]]
    else:
        options += _each("--dtype", DTYPES)
    return _table_argv(plan, seconds, "table", options)


def false_alarms_argv(plan: Plan, seconds: float) -> list[str]:
    if plan.smoke:  # one seed, one dtype, one property, two targets: the command runs
        size = ["--seeds", "1", "--dtype", "float32", "--property", SMOKE_PROPERTIES[0]]
        size += ["reference-math", "torch-sdpa-math"]
    else:
        size = ["--seeds", "3"]
    return _python(
        "-m", "benchmarks.false_alarms", "--device", plan.device, "--jobs", str(plan.jobs),
        "--known-failures", KNOWN, "--budget", _cells_budget(seconds),
        "--json", str(plan.out / "false-alarms.json"),
        "--markdown", str(plan.work / "false-alarms.md"), *size,
    )  # fmt: skip


def tests_argv(plan: Plan, seconds: float) -> list[str]:
    # The smoke run collects only the two files that hold the 28 CUDA cells (all skipped on
    # the CPU): collecting the whole suite costs more than its minute.
    where = ["tests/test_attention.py", "tests/test_model.py"] if plan.smoke else ["tests"]
    return _python(
        "-m", "pytest", *where, "-k", "cuda", "-p", "no:cacheprovider", "-p", "no:xdist",
        "-q", "-rs", "--junit-xml", str(plan.out / "tests.xml"),
    )  # fmt: skip


def throughput_argv(plan: Plan, seconds: float) -> list[str]:
    size = ["--smoke"] if plan.smoke else ["--device", "cuda"]
    json_path = str(plan.out / "throughput.json")
    return _python("-m", "benchmarks.throughput", *size, "--compile", "--json", json_path)


def environment_argv(plan: Plan, seconds: float) -> list[str]:
    path = str(plan.work / "environment.json")
    return _python("-c", f"import benchmarks.gpu as g; g.write_environment({path!r})")


def write_environment(path: str) -> None:
    """Runs in the environment part's own process: CUDA is first touched there."""
    import platform

    import torch

    cuda = torch.cuda.is_available()
    env: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "cuda_runtime": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if cuda else None,  # type: ignore[no-untyped-call]
        "cuda_available": cuda,
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "gpu_count": torch.cuda.device_count() if cuda else 0,
        "gpu_memory_gib": round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
        if cuda
        else None,
        "driver": _nvidia_smi("driver_version"),
        "beartype": importlib.util.find_spec("beartype") is not None,
        "git_commit": _git_commit(),
    }
    for package in ("transformer-spec", "hypothesis", "transformers"):
        try:  # from the installed metadata: importing transformers alone takes seconds
            env[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            env[package] = None
    Path(path).write_text(json.dumps(env, indent=2), encoding="utf-8")


def _nvidia_smi(query: str) -> str | None:
    try:
        run = subprocess.run(
            ["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return run.stdout.strip().splitlines()[0] if run.returncode == 0 and run.stdout else None


def _git_commit() -> str | None:
    try:
        run = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=ROOT, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return run.stdout.strip() or None


# --- what each part found, for the report -------------------------------------------------


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _shift_headings(text: str) -> list[str]:
    """A generated page nested under one of the report's sections (# -> ###)."""
    return [("##" + line if line.startswith("#") else line) for line in text.splitlines()]


def _cells_lines(doc: Any) -> list[str]:
    if not doc:
        return ["No JSON report was written."]
    lines = [
        "| target | dtype | pass | conv | fail | known | n/a |",
        "|---|---|--:|--:|--:|--:|--:|",
    ]
    for c in doc["cells"]:
        n = {o: sum(r["outcome"] == o for r in c["results"]) for o in _OUTCOMES}
        lines.append(
            f"| `{c['target']}` | {c['dtype']} | {n['pass']} | {n['convention']} | "
            f"{n['fail']} | {n['known_failure']} | {n['not_applicable']} |"
        )
    lines += [
        f"- FAIL `{c['target']}` {c['dtype']} `{r['property']}`: "
        f"{(r['message'].strip().splitlines() or [''])[0]}"
        for c in doc["cells"]
        for r in c["results"]
        if r["outcome"] == "fail"
    ]
    if doc.get("not_run"):
        lines.append(f"\nNot run (the slice was spent): {', '.join(doc['not_run'])}.")
    return lines


_OUTCOMES = ("pass", "convention", "fail", "known_failure", "not_applicable")


def properties_section(plan: Plan) -> list[str]:
    return _cells_lines(_read_json(plan.out / "properties.json"))


def table_section(plan: Plan) -> list[str]:
    page = plan.work / "table.md"
    return _shift_headings(page.read_text(encoding="utf-8")) if page.exists() else []


def false_alarms_section(plan: Plan) -> list[str]:
    page = plan.work / "false-alarms.md"
    return _shift_headings(page.read_text(encoding="utf-8")) if page.exists() else []


def tests_section(plan: Plan) -> list[str]:
    try:
        root = ET.parse(plan.out / "tests.xml").getroot()
    except (OSError, ET.ParseError):
        return ["No JUnit report was written."]
    cases = list(root.iter("testcase"))
    failed = [c for c in cases if c.find("failure") is not None or c.find("error") is not None]
    skipped = [c for c in cases if c.find("skipped") is not None]
    lines = [f"{len(cases)} tests: {len(cases) - len(failed) - len(skipped)} passed, "]
    lines[0] += f"{len(failed)} failed, {len(skipped)} skipped."
    lines += [f"- FAILED `{c.get('classname')}::{c.get('name')}`" for c in failed]
    reasons = {(s.get("message") or "") for c in skipped for s in c.iter("skipped")}
    lines += [f"- skipped: {r}" for r in sorted(reasons) if r]
    return lines


def throughput_section(plan: Plan) -> list[str]:
    doc = _read_json(plan.out / "throughput.json")
    if not doc:
        return ["No figures were written."]
    lines = [
        doc["setup"],
        "",
        "| implementation | tokens/s | peak GiB | note |",
        "|---|--:|--:|---|",
    ]
    for name, m in doc["results"].items():
        if "error" in m:
            lines.append(f"| {name} | - | - | failed: {m['error']} |")
        else:
            lines.append(
                f"| {name} | {m['tokens_per_s']:.0f} | {m['peak_gib']:.2f} | {m['note']} |"
            )
    lines.append("")
    lines += [
        f"- ratio reference / nn.TransformerEncoder, {kind}: {r:.2f} (target >= 1.0)"
        for kind, r in doc["ratio_reference_over_nn"].items()
    ]
    lines.append(
        "- to compare (H100, ../shared/anchors/numerics.md): nn.TransformerEncoder 265k-267k "
        "tokens/s, 17.6 GB; nanoGPT on SDPA 311k eager, 356k compiled."
    )
    return lines


def environment_section(plan: Plan) -> list[str]:
    env = _read_json(plan.work / "environment.json") or {}
    return [f"- {key}: {value}" for key, value in env.items()] or ["Not read."]


PARTS = {  # in the order they run
    "environment": Part(
        "environment", "6. Environment", 0.04, environment_argv, environment_section
    ),
    "properties": Part(
        "properties",
        "1. Property suite on the reference",
        0.12,
        properties_argv,
        properties_section,
        cells="properties.json",
    ),
    "tests": Part("tests", "4. The test suite's CUDA tests", 0.10, tests_argv, tests_section),
    "throughput": Part(
        "throughput", "5. Training throughput", 0.30, throughput_argv, throughput_section
    ),
    "table": Part(
        "table", "2. Conformance table", 0.19, table_argv, table_section, cells="table.json"
    ),
    "false_alarms": Part(
        "false_alarms",
        "3. False-alarm study",
        0.25,
        false_alarms_argv,
        false_alarms_section,
        cells="false-alarms.json",
    ),
}


# --- running the parts ----------------------------------------------------------------------


def _environ(key: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TRANSFORMER_SPEC_TYPECHECK": "0"}
    if key == "tests":  # the suite's own setting: shapes checked, where beartype is there
        env["TRANSFORMER_SPEC_TYPECHECK"] = "1" if importlib.util.find_spec("beartype") else "0"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def run_part(part: Part, plan: Plan, seconds: float, log: Path) -> Outcome:
    """The part's command in its own process group, ended (with its workers) at `seconds`."""
    outcome = Outcome(slice_s=seconds, command=part.command(plan, seconds))
    start = time.monotonic()
    with log.open("w", encoding="utf-8") as sink:
        proc = subprocess.Popen(
            outcome.command,
            stdout=sink,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env=_environ(part.key),
            start_new_session=True,
        )
        try:
            code = proc.wait(timeout=seconds)
            outcome.status = "passed" if code == 0 else "failed"
            outcome.reason = "" if code == 0 else f"exit code {code}"
        except subprocess.TimeoutExpired:
            _end_group(proc)
            outcome.status, outcome.reason = "timed out", f"still running after {seconds:.0f} s"
    outcome.seconds = time.monotonic() - start
    not_run = (_read_json(plan.out / part.cells) or {}).get("not_run") if part.cells else None
    if outcome.status == "passed" and not_run:
        outcome.status, outcome.reason = "partial", f"{len(not_run)} cells not run: slice spent"
    return outcome


def _end_group(proc: "subprocess.Popen[bytes]") -> None:
    """SIGTERM to the part's own process group, then SIGKILL if it has not ended."""
    for sig, grace in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def run_all(plan: Plan) -> dict[str, Outcome]:
    deadline = time.monotonic() + plan.budget
    outcomes: dict[str, Outcome] = {}
    keys = list(PARTS)
    for i, key in enumerate(keys):
        left = deadline - time.monotonic()
        share = left * PARTS[key].weight / sum(PARTS[k].weight for k in keys[i:])
        share = max(share, min(left, MIN_SLICE))  # a slice too short to start in is no use
        skip = _skip_reason(plan, key, left, outcomes)
        if skip:
            outcomes[key] = Outcome(reason=skip)
        else:
            print(f"benchmarks.gpu: {key} ({share:.0f} s) ...", file=sys.stderr, flush=True)
            outcomes[key] = run_part(PARTS[key], plan, share, plan.work / f"{key}.log")
            print(f"  {outcomes[key].status} in {outcomes[key].seconds:.0f} s", file=sys.stderr)
    return outcomes


def _skip_reason(plan: Plan, key: str, left: float, done: dict[str, Outcome]) -> str:
    if key != "environment" and done["environment"].status != "passed":
        return "the environment part did not pass: it is not known what this machine has"
    if key != "environment" and not plan.smoke and not has_cuda(plan):
        return "no CUDA device on this machine (the environment part found none)"
    if left < MIN_SLICE:
        return f"no time left in the budget ({left:.0f} s)"
    return ""


# --- the report ---------------------------------------------------------------------------


def _tail(log: Path, lines: int = 25) -> list[str]:
    text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
    return ["```", *text.splitlines()[-lines:], "```"]


def render(plan: Plan, outcomes: dict[str, Outcome], argv: list[str], wall: float) -> str:
    verdict = _exit_code(outcomes)
    lines = ["# The CUDA path: report of `benchmarks.gpu`", ""]
    if plan.smoke:
        lines += [
            "**SMOKE RUN: every part on the CPU at tiny sizes. It checks this command, not the "
            f"GPU: no CUDA result is in this report.** Properties: {', '.join(SMOKE_PROPERTIES)}.",
            "",
        ]
    lines += [
        f"`python -m benchmarks.gpu {' '.join(argv)}`; device {plan.device}; budget "
        f"{plan.budget:.0f} s; {plan.jobs} worker(s); {wall:.0f} s wall.",
        "",
        f"**{'PASSED' if verdict == 0 else 'FAILED'}**: "
        + ("every part that ran passed." if verdict == 0 else "a part failed or ran out of time."),
        "",
        "| part | status | seconds | slice (s) | why |",
        "|---|---|--:|--:|---|",
    ]
    order = sorted(PARTS, key=lambda k: PARTS[k].title)
    for key in order:
        o = outcomes[key]
        lines.append(
            f"| {PARTS[key].title} | {o.status} | {o.seconds:.0f} | {o.slice_s:.0f} | {o.reason} |"
        )
    for key in order:
        lines += ["", *_section(PARTS[key], plan, outcomes[key])]
    return "\n".join(lines) + "\n"


def _section(part: Part, plan: Plan, o: Outcome) -> list[str]:
    lines = [
        f"## {part.title}",
        "",
        f"Status: **{o.status}**" + (f" ({o.reason})" if o.reason else ""),
    ]
    if o.status == "skipped":
        return lines
    lines += ["", f"`{shlex.join(_short(w) for w in o.command)}`", "", *part.section(plan)]
    if o.status != "passed":
        lines += ["", "The end of its output:", "", *_tail(plan.work / f"{part.key}.log")]
    return lines


def _short(word: str) -> str:
    """The interpreter and the paths in the repository shown as typed."""
    if word == sys.executable:
        return "python"
    inside = word.startswith(str(ROOT) + os.sep)
    return os.path.relpath(word, ROOT) if inside else word


def _exit_code(outcomes: dict[str, Outcome]) -> int:
    return 1 if any(o.status in ("failed", "timed out") for o in outcomes.values()) else 0


def write_outputs(plan: Plan, outcomes: dict[str, Outcome], argv: list[str], wall: float) -> None:
    (plan.out / "report.md").write_text(render(plan, outcomes, argv, wall), encoding="utf-8")
    summary = {
        "command": ["python", "-m", "benchmarks.gpu", *argv],
        "smoke": plan.smoke,
        "device": plan.device,
        "budget_s": plan.budget,
        "wall_s": round(wall, 1),
        "exit_code": _exit_code(outcomes),
        "parts": {k: asdict(o) for k, o in outcomes.items()},
        "environment": _read_json(plan.work / "environment.json"),
    }
    (plan.out / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    with (plan.out / "log.txt").open("w", encoding="utf-8") as log:
        for key in outcomes:
            part_log = plan.work / f"{key}.log"
            log.write(f"===== {key}: {outcomes[key].status} =====\n")
            log.write(
                part_log.read_text(encoding="utf-8", errors="replace") if part_log.exists() else ""
            )


# --- the command ----------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """A usage mistake is one line on stderr (what is wrong, what is accepted), exit 2."""

    def error(self, message: str) -> NoReturn:
        print(f"benchmarks.gpu: {message}; see `python -m benchmarks.gpu --help`", file=sys.stderr)
        raise SystemExit(2)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="benchmarks.gpu", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="every part, tiny, on the CPU")
    parser.add_argument("--out", default="gpu-report", help="folder for the reports")
    parser.add_argument("--budget", type=float, default=480.0, help="seconds for all parts")
    parser.add_argument(
        "--jobs",
        type=int,
        help="worker processes for the cell runs (default: cores - 2; 1 in smoke)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    parser = _parser()
    args = parser.parse_args(words)
    if not args.budget > 0:
        parser.error(f"--budget {args.budget:g}: expected seconds > 0")
    jobs = (
        args.jobs
        if args.jobs is not None
        else (1 if args.smoke else max(1, (os.cpu_count() or 2) - 2))
    )
    if jobs < 1:
        parser.error(f"--jobs {jobs}: expected >= 1")
    out = Path(args.out).resolve()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        parser.error(f"--out {args.out!r}: cannot create the folder ({err.strerror})")
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="benchmarks-gpu-") as work:
        plan = Plan(out, Path(work), args.smoke, jobs, args.budget)
        outcomes = run_all(plan)
        write_outputs(plan, outcomes, words, time.monotonic() - start)
        gpu = has_cuda(plan)
    print(f"benchmarks.gpu: report in {out / 'report.md'}", file=sys.stderr)
    if not plan.smoke and not gpu:
        print(
            "benchmarks.gpu: no CUDA device on this machine, so nothing was run on a GPU "
            "(the report says so); --smoke checks the command on the CPU",
            file=sys.stderr,
        )
        return 2
    return _exit_code(outcomes)


def has_cuda(plan: Plan) -> bool:
    env = _read_json(plan.work / "environment.json") or {}
    return bool(env.get("cuda_available"))


if __name__ == "__main__":
    raise SystemExit(main())
