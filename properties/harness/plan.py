"""One validated description of a run, and the one place that decides its defaults: the
targets, the device, the dtypes, the Hypothesis profile and seed, the per-call time limit, the
properties chosen, the known failures, which cells run (a shard, the device's targets, a
time budget) and how many worker processes it gets.

No torch: `check`, `table`, `mutants`, `board` and the pytest plugin make the Plan (and answer
a bad option) before anything heavy is imported, and the run's workers start at once. The
Plan travels whole to the workers as JSON (`to_json`, the plugin's --ts-plan), and they only
read it. The run options that the CLI and the plugin share are declared once, in OPTIONS.
"""

import json
import os
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from fnmatch import fnmatchcase
from typing import Any, Literal

from transformer_spec.properties.harness import index, names
from transformer_spec.properties.harness.errors import UsageError
from transformer_spec.properties.harness.known import KnownFailure, load_known_failures
from transformer_spec.properties.harness.profiles import (
    DEFAULT_CALL_TIMEOUT,
    DTYPE_WORDS,
    PROFILES,
    default_profile,
    default_seed,
)

Kind = Literal["properties", "mutants", "board"]
# Below this many property runs that can apply, a run stays in one process whatever --jobs
# says: a worker costs about 2 s of a core to start (torch, Hypothesis, the properties), a
# property run of the ci profile about 0.2 s (benchmarks/jobs.py measures both sides).
SMALL_RUN = 60
_DEVICE = re.compile(r"^(cpu|cuda)(:\d+)?$")
_CORES = os.cpu_count() or 1
# The profile each command runs without --profile.
_PROFILE_ANY = "ci when $CI is set, else quick"
_PROFILE_DEFAULT = {"table": "ci", "mutants": "ci", "board": "quick"}
_KINDS: dict[str, Kind] = {"mutants": "mutants", "board": "board"}  # the others: properties
# The targets `check` and the pytest plugin run when none is named (`table`: every built-in
# target whose extra is installed, `_options.missing_extra`).
CHECK_TARGETS = ("reference-math", "reference-fused")
# The adapter levels from the slowest property runs to the fastest (a model property builds
# and runs whole models; an attention one calls one function).
_COST_ORDER = ("model", "layers", "components", "mha", "attention", "vocabulary")


@dataclass(frozen=True)
class RunOption:
    """A run option, as `--NAME` in the CLI and `--ts-NAME` in the pytest plugin."""

    name: str
    help: str
    metavar: str | None = None
    repeat: bool = False
    type: type = str
    choices: tuple[str, ...] | None = None
    commands: tuple[str, ...] = ("check", "table", "board")  # the CLI commands that take it
    plugin: bool = True  # the pytest plugin takes it too (as --ts-NAME)


OPTIONS = (
    RunOption("device", "cpu, cuda or cuda:N (default cpu)", commands=("check", "table")),
    RunOption(
        "dtype",
        f"{', '.join(DTYPE_WORDS)} or all (repeatable; default float32)",
        "DTYPE",
        repeat=True,
    ),
    RunOption("profile", "10, 25 or 200 examples per property", choices=tuple(PROFILES)),
    RunOption("seed", "Hypothesis seed (default: 0 under the ci profile, else random)", type=int),
    RunOption(
        "property",
        "only properties matching this id or glob (repeatable; check --list shows them)",
        "PATTERN",
        repeat=True,
    ),
    RunOption(
        "call-timeout",
        f"per-call time limit on the target (default {DEFAULT_CALL_TIMEOUT:g}; 0: none)",
        "SECONDS",
        type=float,
        commands=("check", "table"),
    ),
    RunOption(
        "known-failures",
        "PROPERTY or TARGET/PROPERTY pattern per line (hf:CLASS/PROPERTY on a board, "
        "hf:CLASS/build for a class the library cannot build), then the written reason",
        "FILE",
        commands=("check", "table", "board", "merge"),
    ),
    RunOption(
        "jobs",
        f"worker processes (default: 1 for check, else the cores, {_CORES}); a run with "
        f"fewer than {SMALL_RUN} property runs that can apply stays in one process",
        "N",
        type=int,
        commands=("check", "table", "mutants", "board"),
        plugin=False,  # pytest-xdist's -n
    ),
    RunOption(
        "shard",
        "only every N-th cell (a board: architecture) from the I-th, 1 <= I <= N, e.g. one CI "
        "job each; `transformer-spec merge` joins their --json reports",
        "I/N",
        commands=("table", "board"),
        plugin=False,
    ),
    RunOption(
        "budget",
        "start no cell after this many seconds; the table names the cells not run",
        "SECONDS",
        type=float,
        commands=("table",),
        plugin=False,
    ),
    RunOption(
        "pictures",
        "draw failing examples as PNG files here (default with --html: beside the page)",
        "DIR",
        commands=("check",),
    ),
)


def add_options(add: Callable[..., Any], prefix: str, command: str = "") -> None:
    """Declare OPTIONS with `add` (argparse's add_argument or pytest's addoption), each as
    PREFIX + name; `command` keeps the ones that CLI command takes ("": the plugin's)."""
    for o in OPTIONS:
        if (command and command not in o.commands) or (not command and not o.plugin):
            continue
        help = o.help
        if o.name == "profile":
            help += f" (default: {_PROFILE_DEFAULT.get(command, _PROFILE_ANY)})"
        if o.name == "seed" and command == "board":
            help = "Hypothesis seed (default: 0)"
        add(
            prefix + o.name,
            action="append" if o.repeat else "store",
            type=o.type,
            metavar=o.metavar,
            choices=o.choices,
            default=None,
            help=help,
        )


def trace(what: str, name: str) -> None:
    """With $TRANSFORMER_SPEC_TRACE naming a file, append `PID WHAT NAME` to it: the test that
    counts Plans made and targets loaded per process reads it."""
    path = os.environ.get("TRANSFORMER_SPEC_TRACE")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(f"{os.getpid()} {what} {name}\n")


@dataclass(frozen=True)
class Plan:
    targets: tuple[str, ...]  # target names; for kind "mutants" mutant names, for "board"
    # MODEL_TYPE:CLASS:KIND of each architecture
    device: str = "cpu"
    dtypes: tuple[str, ...] = ("float32",)
    profile: str = "quick"
    seed: int = 0
    call_timeout: float = DEFAULT_CALL_TIMEOUT
    properties: tuple[str, ...] = ()  # ids or globs; () for every property
    known: tuple[KnownFailure, ...] = ()
    kind: Kind = "properties"
    jobs: int = 1
    shard: tuple[int, int] | None = None  # (I, N): every N-th cell from the I-th
    on_device_only: bool = False  # leave out the built-in targets the device cannot run
    deadline: float | None = None  # seconds since the epoch: no item starts after it
    pictures: str | None = None  # a folder for the failing examples' pictures
    caps: tuple[float, float] = (4.0, 600.0)  # the board's GB and seconds per architecture

    def selected(self) -> list[str]:
        """The chosen property ids, in the registry's order."""
        pats = self.properties
        return [i for i in index.ids() if not pats or any(fnmatchcase(i, p) for p in pats)]

    def runnable(self) -> list[str]:
        """The targets this run checks: the device's own, when asked (names.BUILTIN)."""
        if not self.on_device_only:
            return list(self.targets)
        kind = self.device.split(":")[0]
        return [t for t in self.targets if t not in names.BUILTIN or kind in _devices(t)]

    def cells(self) -> list[tuple[str, str]]:
        """(target, dtype) in run order: a target's dtypes together (a worker opens it once),
        then this shard's share. For the mutants and the board, (row, first dtype)."""
        if self.kind == "properties":
            every = [(t, d) for t in self.runnable() for d in self.dtypes]
        else:
            every = [(t, self.dtypes[0]) for t in self.targets]
        return every if self.shard is None else every[self.shard[0] - 1 :: self.shard[1]]

    def items(self, spread: bool) -> list[tuple[str, str, str]]:
        """(target, dtype, property) of every cell, target-major. Spread over workers, a
        cell's model-level properties go first and its kernel-level ones last: the slow
        ones start early and the run ends on short items, not on one worker's long one (the
        results are printed in the registry's order all the same)."""
        chosen = set(self.selected())
        entries = [e for e in index.entries() if e.id in chosen]
        if spread:
            entries.sort(key=lambda e: _COST_ORDER.index(e.level))
        return [(t, d, e.id) for t, d in self.cells() for e in entries]

    def left_out(self) -> list[str]:
        return [t for t in self.targets if t not in self.runnable()]

    def workers(self) -> tuple[int, str]:
        """The worker processes this run gets (0: it runs in this process), and why."""
        if self.jobs <= 1:
            return 0, "--jobs 1: one process"
        if self.kind != "properties":
            rows = len(self.cells())
            if rows < 2:
                return 0, "one row: one process"
            return self.jobs, f"{rows} rows: {self.jobs} worker processes"
        runs = self.applicable_runs()
        if runs < SMALL_RUN:
            return 0, (
                f"{runs} property runs can apply (fewer than {SMALL_RUN}): one process; "
                f"{self.jobs} workers would cost more to start than they save"
            )
        return self.jobs, f"{runs} property runs can apply: {self.jobs} worker processes"

    def applicable_runs(self) -> int:
        """Property runs that can apply, from what the built-in targets offer (every one for
        a target known only once loaded)."""
        ids = set(self.selected())
        chosen = [e for e in index.entries() if e.id in ids]
        return sum(sum(_offers(t, e.level) for e in chosen) for t, _ in self.cells())

    def reproduce(self, target: str, dtype: str) -> str:
        """The command that runs one cell of this plan again (add --property ID)."""
        return (
            f"transformer-spec check {target} --device {self.device} --dtype {dtype} "
            f"--profile {self.profile} --seed {self.seed}"
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "Plan":
        """The plan as another process made it (already validated: read, not checked)."""
        data = json.loads(text)
        data["known"] = tuple(
            KnownFailure(**{**k, "where": tuple(k["where"])}) for k in data["known"]
        )
        for key in ("targets", "dtypes", "properties", "caps"):
            data[key] = tuple(data[key])
        data["shard"] = None if data["shard"] is None else tuple(data["shard"])
        trace("plan", "read")
        return cls(**data)


def _devices(target: str) -> tuple[str, ...]:
    return names.BUILTIN[target].devices


def _offers(target: str, level: str) -> bool:
    return target not in names.BUILTIN or level in names.BUILTIN[target].levels


def make_plan(
    targets: Iterable[str] | None,
    *,
    device: str | None = None,
    dtype: Sequence[str] | None = None,
    profile: str | None = None,
    seed: int | None = None,
    call_timeout: float | None = None,
    property: Sequence[str] | None = None,
    known_failures: str | None = None,
    pictures: str | None = None,
    default_targets: Sequence[str] = CHECK_TARGETS,
    command: str = "check",
    jobs: int | None = None,
    shard: str | None = None,
    budget: float | None = None,
    on_device_only: bool = False,
    caps: tuple[float, float] = (4.0, 600.0),
    option: str = "--",
) -> Plan:
    """A checked Plan of `command` (check, table, mutants, board) from the options as given
    (None: not given). Every default is decided here:
    - the profile: ci for table and mutants, quick for board, else ci when $CI is set and
      quick otherwise; the seed is then 0 under ci (and on a board) and random otherwise;
    - --jobs: 1 for check, the cores for the others (a small run stays in one process);
    - a kill matrix (mutants) runs what docs/kill-matrix.md was made with: every property
      in float32, then the float32 killers again in bfloat16 until one kills.
    `option` is the prefix of the caller's option names, for the messages (--dtype,
    --ts-dtype). Raises UsageError naming the first bad option."""
    kind: Kind = _KINDS.get(command, "properties")
    if kind == "mutants":
        dtype = dtype or ["float32", "bfloat16"]
    if kind == "board":
        seed = 0 if seed is None else seed
    profile = profile or _PROFILE_DEFAULT.get(command)
    jobs = (1 if command == "check" else _CORES) if jobs is None else jobs
    dtypes = _dtypes(dtype, option)
    device = device or "cpu"
    if not _DEVICE.match(device):
        raise UsageError(
            f"{option}device: {device!r} is not a device; expected 'cpu' or 'cuda[:N]'"
        )
    profile = profile or default_profile()
    if profile not in PROFILES:
        raise UsageError(f"{option}profile {profile!r}: expected one of {list(PROFILES)}")
    timeout = DEFAULT_CALL_TIMEOUT if call_timeout is None else call_timeout
    if not timeout >= 0:
        raise UsageError(f"{option}call-timeout {timeout:g}: expected seconds >= 0 (0: no limit)")
    if jobs < 1:
        raise UsageError(f"--jobs {jobs}: expected >= 1")
    if budget is not None and not budget > 0:
        raise UsageError(f"--budget {budget:g}: expected seconds > 0")
    if kind == "board" and len(dtypes) != 1:
        raise UsageError(f"--dtype: one dtype per board, got {list(dtypes)}")
    if not (caps[0] > 0 and caps[1] > 0):
        raise UsageError(f"--memory-cap {caps[0]:g} / --time-cap {caps[1]:g}: expected > 0")
    patterns = tuple(property or ())
    plan = Plan(
        targets=tuple(targets or default_targets),
        device=device,
        dtypes=dtypes,
        profile=profile,
        seed=default_seed(profile) if seed is None else seed,
        call_timeout=timeout,
        properties=patterns,
        kind=kind,
        jobs=jobs,
        shard=_shard(shard),
        on_device_only=on_device_only,
        deadline=None if budget is None else time.time() + budget,
        pictures=pictures,
        caps=caps,
    )
    if patterns and not plan.selected():
        raise UsageError(
            f"{option}property {list(patterns)}: matches no property; "
            "see `transformer-spec check --list`"
        )
    if kind == "properties":
        for name in plan.targets:
            check_target_name(name)
    known = load_known_failures(known_failures) if known_failures else []
    trace("plan", "made")
    return replace(plan, known=tuple(known))


def _dtypes(words: Sequence[str] | None, option: str) -> tuple[str, ...]:
    chosen = list(DTYPE_WORDS) if list(words or []) == ["all"] else list(words or ["float32"])
    unknown = [d for d in chosen if d not in DTYPE_WORDS]
    if unknown:
        raise UsageError(
            f"{option}dtype {unknown[0]!r}: expected one of {list(DTYPE_WORDS)} or 'all'"
        )
    return tuple(chosen)


def _shard(word: str | None) -> tuple[int, int] | None:
    """--shard I/N as (I, N), 1 <= I <= N."""
    if word is None:
        return None
    found = re.fullmatch(r"(\d+)/(\d+)", word)
    if not found or not 1 <= int(found[1]) <= int(found[2]):
        raise UsageError(f"--shard {word!r}: expected I/N with 1 <= I <= N, e.g. 2/3")
    return int(found[1]), int(found[2])


def check_target_name(spec: str) -> None:
    """A target name's form, without loading it: a built-in name, mutant:NAME, hf:CLASSNAME
    or MODULE:FACTORY (whether those exist is known when they are loaded)."""
    if spec in names.BUILTIN or ":" in spec:
        return
    raise UsageError(
        f"target {spec!r}: expected MODULE:FACTORY, mutant:NAME or a built-in target, one "
        f"of {sorted(names.BUILTIN)}, or hf:CLASSNAME (a Hugging Face model class)"
    )
