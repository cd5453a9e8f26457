"""The Hugging Face board: every architecture of the installed transformers checked through
`hf:CLASSNAME`, a row each, with a verdict a user can act on (`transformer-spec board`,
docs/hf-board.md).

An architecture is a model type of transformers' causal-LM, masked-LM and
sequence-to-sequence tables, checked through its first class there. Each runs in a process
of its own, forked, under a memory cap (an address-space limit) and a time cap, so that one
architecture's memory, hang or global state never reaches another's row. Each row is one
item of a Plan's pytest session (kind "board", `session.run`), spread over pytest-xdist
workers and, with `--shard`, over machines (`transformer-spec merge` joins the shards).

Verdicts:
- `pass`: every applicable property passes (`pass, conventions` when some pass in a
  convention the class declares, T5's score scale);
- `refused`: the class cannot be checked here, with the reason (its config has no width,
  it cannot be built or run at the tiny sizes, it cannot be loaded, a cap was hit);
- `real bug`: every failure is an entry of the known-failures file (docs/hf-known.txt),
  whose reason names the stand-alone reproduction in docs/repro/ (`hf:CLASS/build` for a
  class that cannot be checked at all because of the library's own bug);
- `FAIL`: a failure nobody explained: a new library bug, or a false alarm of ours. The
  command exits 1 while one is left.
"""

import json
import os
import resource
import select
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from transformer_spec.properties.harness.known import KnownFailure, known_reason

# What each verdict is written as in the table.
PASS, CONVENTIONS, REFUSED, REAL_BUG, FAIL = (
    "pass",
    "pass, conventions",
    "refused",
    "real bug",
    "FAIL",
)
VERDICTS = (PASS, CONVENTIONS, REAL_BUG, REFUSED, FAIL)
# The known-failures entry `hf:CLASS/build` says that a class that cannot be checked at all
# fails for a bug of the library's own (its default config cannot build its model).
BUILD = "build"
OWN_BUILD = "transformers' own default config cannot build it"
APPLICABLE = ("pass", "fail", "known_failure", "convention")


@dataclass
class Row:
    architecture: str  # the model type
    class_name: str
    kind: str
    results: list[dict[str, Any]] = field(default_factory=list)  # runner.Result, as dicts
    seconds: float = 0.0
    memory_mb: float = 0.0  # the peak resident memory of the process that checked it
    problem: str = ""  # why it could not be checked at all (loading, a cap, a crash)
    verdict: str = ""  # set by `judge`
    why: str = ""

    @property
    def target(self) -> str:
        return f"hf:{self.class_name}"

    def applicable(self) -> int:
        return sum(r["outcome"] in APPLICABLE for r in self.results)


@dataclass(frozen=True)
class Caps:
    memory_gb: float = 4.0
    seconds: float = 600.0


def check_architecture(
    row: Row, properties: Sequence[str], *, profile: str, dtype: str, seed: int
) -> Row:
    """Every property on `row`'s class in one (cpu, dtype) cell, in this process."""
    import torch
    from transformer_spec.properties.checks import load_all
    from transformer_spec.properties.harness.errors import UsageError
    from transformer_spec.properties.harness.loading import load_target
    from transformer_spec.properties.harness.registry import Context
    from transformer_spec.properties.harness.runner import run_property
    from transformer_spec.properties.harness.tolerance import tolerance_for

    start = time.perf_counter()
    torch.set_num_threads(1)
    try:
        target = load_target(row.target)
    except UsageError as err:
        row.problem = str(err).removeprefix(f"target {row.target!r}: ")
        return row
    cpu, torch_dtype = torch.device("cpu"), getattr(torch, dtype)
    ctx = Context(target, cpu, torch_dtype, tolerance_for(torch_dtype, cpu))
    every = load_all()
    for pid in properties:
        result = run_property(every[pid], ctx, profile=profile, seed=seed, shrink=False)
        kept = {k: v for k, v in asdict(result).items() if k in _KEPT}
        row.results.append(kept)
    if not row.applicable():  # refused everywhere: is it the library's own build that fails?
        error = _default_build_error(row.class_name)
        if error and _refused_for(error, row):
            row.problem = f"{OWN_BUILD} ({error})"
    row.seconds = time.perf_counter() - start
    return row


def _default_build_error(class_name: str) -> str:
    """The error of building `class_name` from its default config (on the meta device: no
    memory for the weights), or "" when it builds."""
    import torch
    import transformers
    from transformer_spec.properties.targets.adapters.hf_config import first_line

    cls = getattr(transformers, class_name)
    try:
        config = cls.config_class()
        with torch.device("meta"):
            cls(config)
    except ImportError:  # a package missing here (timm), not the library's bug
        return ""
    except Exception as err:
        return first_line(err)
    return ""


def _refused_for(error: str, row: Row) -> bool:
    """Whether the tiny builds were refused for the default config's own error: a class
    refused for another reason (a size the tiny config cannot give) is refused, with it."""
    reasons = [r["reason"] for r in row.results if r["outcome"] == "not_applicable"]
    return any(error[:60] in " ".join(reason.split()) for reason in reasons)


_KEPT = ("property", "outcome", "seconds", "reason", "message", "fault", "traceback")


def isolated(work: Callable[[], Row], fallback: Row, caps: Caps) -> Row:
    """`work()` in a forked process under the memory cap (address space) and the time cap;
    `fallback`, with the problem said, when it is killed, crashes or runs out of time. Where
    there is no fork (Windows), in this process, uncapped."""
    if not hasattr(os, "fork"):
        return work()
    read, write = os.pipe()
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(read)
        code = 0
        try:
            limit = int(caps.memory_gb * 2**30)
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            _send(write, asdict(work()))
        except BaseException as err:  # the child must never go back into the caller's code
            _send(write, {"problem": f"the checking process crashed: {type(err).__name__}: {err}"})
            code = 1
        finally:
            os._exit(code)
    os.close(write)
    data = _receive(read, pid, caps.seconds)
    _, status, usage = os.wait4(pid, 0)
    fallback.seconds = time.perf_counter() - start
    fallback.memory_mb = usage.ru_maxrss / 1024
    if data is None:
        fallback.problem = _ended(status, caps)
        return fallback
    if set(data) == {"problem"}:
        fallback.problem = str(data["problem"])
        return fallback
    row = Row(**data)
    row.memory_mb = fallback.memory_mb
    return row


def _send(fd: int, data: dict[str, Any]) -> None:
    payload = json.dumps(data).encode()
    with os.fdopen(fd, "wb") as out:
        out.write(payload)


def _receive(fd: int, pid: int, seconds: float) -> dict[str, Any] | None:
    """What the child wrote, or None when it wrote nothing whole before the time cap (it is
    then killed) or before it died."""
    chunks, deadline = [], time.monotonic() + seconds
    with os.fdopen(fd, "rb") as pipe:
        while True:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([pipe], [], [], max(left, 0))
            if not ready:
                os.kill(pid, signal.SIGKILL)
                return None
            chunk = os.read(pipe.fileno(), 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    try:
        data: dict[str, Any] = json.loads(b"".join(chunks))
    except ValueError:
        return None
    return data


def _ended(status: int, caps: Caps) -> str:
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL:
        return f"did not finish within the {caps.seconds:g} s time cap"
    return (
        f"the checking process died (status {status}) before reporting; the memory cap is "
        f"{caps.memory_gb:g} GB"
    )


def verdict(row: Row, known: Sequence[KnownFailure], dtype: str) -> tuple[str, str]:
    """The row's verdict and what it rests on (known failures are applied to its results)."""
    if row.problem:
        reason = known_reason(known, BUILD, row.target)
        if reason:
            return REAL_BUG, reason
        # The library's own bug, with no entry yet: a failure nobody explained.
        return (FAIL if row.problem.startswith(OWN_BUILD) else REFUSED), row.problem
    for r in row.results:  # judged afresh: an earlier judgement's known failures are failures
        if r["outcome"] == "known_failure":
            r["outcome"], r["reason"] = "fail", ""
        if r["outcome"] == "fail":
            reason = known_reason(known, r["property"], row.target, dtype=dtype, device="cpu")
            if reason is not None:
                r["outcome"], r["reason"] = "known_failure", reason
    failed = [r for r in row.results if r["outcome"] == "fail"]
    if failed:
        return FAIL, "; ".join(f"{r['property']}: {_line(r['message'])}" for r in failed)
    reasons = sorted({r["reason"] for r in row.results if r["outcome"] == "known_failure"})
    if reasons:
        return REAL_BUG, "; ".join(reasons)
    if not row.applicable():
        return REFUSED, _refusal(row)
    if any(r["outcome"] == "convention" for r in row.results):
        return CONVENTIONS, _counts(row)
    return PASS, _counts(row)


def judge(rows: Sequence[Row], known: Sequence[KnownFailure], dtype: str) -> None:
    """Sets each row's verdict and what it rests on."""
    for row in rows:
        row.verdict, row.why = verdict(row, known, dtype)


def _refusal(row: Row) -> str:
    """The target's own refusal, from the properties that do not apply to it."""
    reasons = [r["reason"] for r in row.results if r["outcome"] == "not_applicable"]
    own = [r for r in reasons if "refuse" in r]
    return _line(own[0] if own else (reasons[0] if reasons else "no property ran"))


def _counts(row: Row) -> str:
    n = row.applicable()
    return f"{n} of {n} applicable properties"


def _line(text: str, limit: int = 240) -> str:
    one = " ".join(text.split())
    return one if len(one) <= limit else one[: limit - 3] + "..."


def to_json(rows: Sequence[Row], extra: dict[str, Any]) -> str:
    return json.dumps({"board": [asdict(r) for r in rows], **extra}, indent=1) + "\n"


def from_json(data: dict[str, Any]) -> list[Row]:
    return [Row(**r) for r in data["board"]]


def render_markdown(rows: Sequence[Row], header: str) -> str:
    """The board of judged rows (`judge`)."""
    counts = {v: sum(r.verdict == v for r in rows) for v in VERDICTS}
    checked = len(rows) - counts[REFUSED]
    lines = [
        "# Hugging Face architectures",
        "",
        header,
        "",
        f"{len(rows)} architectures: {checked} checked ({counts[PASS]} pass, "
        f"{counts[CONVENTIONS]} pass in a declared convention, {counts[REAL_BUG]} real bugs, "
        f"{counts[FAIL]} unexplained failures), {counts[REFUSED]} refused. Slowest: "
        + ", ".join(f"{r.architecture} {r.seconds:.0f} s" for r in _slowest(rows))
        + f"; largest: {max((r.memory_mb for r in rows), default=0):.0f} MB; "
        f"{sum(r.seconds for r in rows) / 60:.0f} minutes in all.",
        "",
        "Verdicts: `pass`, every applicable property passes; `real bug`, every failure is a "
        "known bug of the library, with its reason and stand-alone reproduction (docs/repro/); "
        "`refused`, the class cannot be checked here, with the reason; `FAIL`, a failure "
        "nobody has explained yet.",
        "",
        "| architecture | class | kind | verdict | properties run | seconds | peak MB | why |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        shown = f"**{row.verdict}**" if row.verdict == FAIL else row.verdict
        lines.append(
            f"| {row.architecture} | `{row.class_name}` | {row.kind} | {shown} | "
            f"{row.applicable()} | {row.seconds:.0f} | {row.memory_mb:.0f} | "
            f"{row.why.replace('|', '/')} |"
        )
    return "\n".join(lines) + "\n"


def merge(reports: Sequence[dict[str, Any]]) -> tuple[list[Row], dict[str, Any]]:
    """The rows of several boards' JSON (shards of one run), sorted by architecture, and the
    run's settings; ValueError when two give the same architecture or differ in settings."""
    rows: dict[str, Row] = {}
    settings = {k: reports[0].get(k) for k in ("dtype", "profile", "seed")}
    for report in reports:
        if {k: report.get(k) for k in settings} != settings:
            raise ValueError(f"boards of different runs: {settings} and {report}")
        for row in from_json(report):
            if row.architecture in rows:
                raise ValueError(f"two boards give a row for {row.architecture!r}")
            rows[row.architecture] = row
    return [rows[a] for a in sorted(rows)], settings


def _slowest(rows: Sequence[Row], n: int = 3) -> list[Row]:
    return sorted(rows, key=lambda r: -r.seconds)[:n]
