"""Run properties against a target in one (device, dtype) cell and collect outcomes.

Profiles (Hypothesis settings):
- quick: 10 examples per property, for a first look;
- ci: 25 examples, a fixed seed (0 unless given), no example database: the same run every
  time; the default when the CI environment variable is set;
- thorough: 200 examples.
A failure keeps Hypothesis's shrunk counterexample (the case and the assertion message) and a
command that reproduces it.
"""

import contextlib
import fnmatch
import functools
import io
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import hypothesis
import torch
from hypothesis import HealthCheck, Phase, Verbosity, reject, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.errors import Flaky, Unsatisfiable
from hypothesis.reporting import with_reporter
from transformer_spec.properties.harness.guard import (
    DEFAULT_CALL_TIMEOUT,
    Guard,
    Recorded,
    StopProperty,
    TargetFault,
    release_memory,
)
from transformer_spec.properties.harness.profiles import PROFILES
from transformer_spec.properties.harness.registry import (
    Check,
    Context,
    NotApplicable,
    Property,
    convention_difference,
    missing_need,
)
from transformer_spec.properties.harness.results import Outcome as Outcome
from transformer_spec.properties.harness.results import Result
from transformer_spec.properties.harness.tolerance import DTYPE_NAMES, tolerance_for
from transformer_spec.properties.targets.protocols import (
    DeclarationWarning,
    Target,
    Unsupported,
    seed_torch,
)

_EXAMPLE_LINES = ("Trying example", "Test case")
OUTPUT_LIMIT = 4000  # characters of a target's own output kept in the report
TRACEBACK_FRAMES = 6  # the innermost frames of a target's exception

OnFailure = Callable[["Result", list[Recorded], Context], None]
OnResult = Callable[["Result"], None]


@contextlib.contextmanager
def _quiet_reference_numerics() -> Iterator[None]:
    """TF32 off while properties run (a float32 reference with TF32 gives false failures), and
    one CPU thread: the harness's tensors are tiny, and extra threads only add contention
    (one forward pass went from 3 ms to 233 ms on a busy 2-core machine)."""
    old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    threads = torch.get_num_threads()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old
        torch.set_num_threads(threads)


def _with_difference(reason: str, p: Property, ctx: Context) -> str:
    """A not-applicable reason, with the target's explanation when a declared convention is
    what makes the property not apply."""
    difference = convention_difference(p, ctx.target)
    return reason if difference is None else f"{reason}: {difference}"


class _AllRefused(BaseException):
    """The target refused an example for a reason that holds for every example: stop
    drawing (a BaseException, so Hypothesis neither shrinks it nor counts it a failure).

    Refusals that merely repeat are not enough: SDPA's flash backend refuses d_k != d_v
    with one message in 366 of 420 draws of masked_content_has_no_effect, the first 8 of
    them in a row, and passes the 54 it accepts."""


def _refuse_unsupported(check: Check, guard: Guard) -> list[str]:
    """Make an example the target refuses (`Unsupported`) an invalid example rather than a
    failure: Hypothesis draws others (its `inner_test` hook). Returns the refusals. Each
    example starts with no recorded calls."""
    refused: list[str] = []
    inner = check.hypothesis.inner_test  # type: ignore[attr-defined]

    @functools.wraps(inner)  # the counterexample names the property's own function
    def guarded(*args: object, **kwargs: object) -> None:
        guard.recorded.clear()
        try:
            inner(*args, **kwargs)
        except Unsupported as err:
            refused.append(str(err))
            if err.always:  # no other example would be accepted: do not draw ~450 more
                raise _AllRefused from None
            reject()

    check.hypothesis.inner_test = guarded  # type: ignore[attr-defined]
    return refused


def run_property(
    p: Property,
    ctx: Context,
    *,
    profile: str,
    seed: int,
    reproduce: str = "",
    shrink: bool = True,
    count: bool = False,
    call_timeout: float = DEFAULT_CALL_TIMEOUT,
    on_failure: OnFailure | None = None,
) -> Result:
    """Run one property in one cell. shrink=False stops at the first failing example (the
    mutant run wants kills, not small counterexamples); count=True counts the examples.
    Every call into the target goes through a fresh `Guard`; whatever the target does, the
    result is a Result and the run goes on. `on_failure(result, calls, ctx)` gets the calls
    the guard recorded in the failing example (for pictures).

    A model property draws the model kind per example, so its first failure would hide how
    the other kinds fare: a failure (when shrinking) is followed by one run per kind, and
    `model_kinds` gives each kind's outcome."""
    run = _Run(profile, seed, reproduce, shrink, count, call_timeout, on_failure)
    result = _run_once(p, ctx, run)
    kinds = ctx.target.model_kinds
    if result.outcome == "fail" and shrink and len(kinds) > 1 and _draws_kinds(p):
        quick = replace(run, reproduce="", shrink=False, on_failure=None)
        for kind in kinds:
            one = replace(ctx, target=replace(ctx.target, model_kinds=(kind,)))
            result.model_kinds[kind] = _run_once(p, one, quick).outcome
    return result


@dataclass(frozen=True)
class _Run:
    """How a property is run: run_property's options."""

    profile: str
    seed: int
    reproduce: str
    shrink: bool
    count: bool
    call_timeout: float
    on_failure: OnFailure | None


def _draws_kinds(p: Property) -> bool:
    """A property on "model" draws among the target's kinds (model.KIND ones take one)."""
    return "model" in p.needs


def _run_once(p: Property, ctx: Context, run: _Run) -> Result:
    result = Result(property=p.id, clauses=p.clauses, outcome="pass")
    reason = missing_need(p, ctx.target)
    dtype_name = DTYPE_NAMES[ctx.dtype]
    if reason is None and dtype_name not in ctx.target.conventions.dtypes:
        reason = f"target declares no support for {dtype_name}"
    if reason is None and ctx.device.type not in ctx.target.conventions.devices:
        reason = f"target declares no support for {ctx.device.type}"
    if reason is not None:
        result.outcome, result.reason = "not_applicable", _with_difference(reason, p, ctx)
        return result
    notes = []
    if ctx.precision != ctx.dtype:
        ctx = replace(ctx, tolerance=tolerance_for(ctx.precision, ctx.device))
        notes.append(
            f"{DTYPE_NAMES[ctx.precision]} tolerance: the target computes its softmax and "
            "normalisation statistics in float32 (declared statistics_dtype)"
        )
    for pattern, (factor, why) in ctx.target.loosen.items():
        if fnmatch.fnmatchcase(p.id, pattern):
            ctx = replace(ctx, tolerance=ctx.tolerance.scaled(factor))
            notes.append(f"tolerance x{factor:g}: {why}")
            break
    result.tolerance_note = "; ".join(notes)
    guard = Guard(ctx.target.conventions, run.call_timeout)
    ctx = replace(ctx, target=guard.wrap(ctx.target))
    start = time.perf_counter()
    try:
        with _captured(result):
            check = p.build(ctx)
    except NotApplicable as err:
        result.outcome, result.reason = "not_applicable", _with_difference(str(err), p, ctx)
        return result
    except Unsupported as err:  # the library refused what the property is set up with
        result.outcome, result.reason = "not_applicable", f"the target refuses it: {err}"
        return result
    except (Exception, StopProperty) as err:  # building may call the target's factories
        _fault(result, err, "while the property was set up")
        result.seconds = time.perf_counter() - start
        return result
    lines: list[str] = []
    configured = settings(
        database=None,
        deadline=None,
        derandomize=False,
        print_blob=False,
        report_multiple_bugs=False,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
        ],
        phases=[Phase.explicit, Phase.reuse, Phase.generate] + [Phase.shrink] * run.shrink,
        verbosity=Verbosity.verbose if run.count else Verbosity.normal,
        **PROFILES[run.profile],  # type: ignore[arg-type]
    )(hypothesis_seed(run.seed)(check))

    refused = _refuse_unsupported(check, guard)

    def collect(message: object) -> None:
        lines.append(str(message))

    # torch's global RNG starts from the seed (and is restored after): a target that draws
    # from it gives the same run whatever ran before in this process.
    with (
        with_reporter(collect),
        _quiet_reference_numerics(),
        torch.random.fork_rng(devices=[]),
        _captured(result),
    ):
        seed_torch(run.seed)
        try:
            configured()
        except Unsatisfiable:  # every example was refused: the library cannot take them
            result.outcome = "not_applicable"
            result.reason = f"the library refused every example: {refused[0]}"
        except _AllRefused:
            result.outcome = "not_applicable"
            result.reason = f"the target refuses every example: {refused[-1]}"
        except NotApplicable as err:  # an optional method the target lacks, met while running
            result.outcome, result.reason = "not_applicable", str(err)
        except (Exception, StopProperty) as err:
            _fault(result, err)
            lines += getattr(err, "__notes__", [])  # Hypothesis adds the falsifying example here
    result.seconds = time.perf_counter() - start
    if run.count:  # verbose mode reports each example as it runs
        result.examples = sum(str(line).startswith(_EXAMPLE_LINES) for line in lines)
        lines = [line for line in lines if not str(line).startswith(_EXAMPLE_LINES)]
    result.refused = len(refused)
    if refused and result.outcome != "not_applicable":
        result.reason = f"{len(refused)} example(s) refused by the library: {refused[0]}"
    difference = convention_difference(p, ctx.target)
    if result.outcome == "pass" and difference is not None:
        result.outcome, result.reason = "convention", difference
    if _approximation_error(result, p, ctx.target):
        why = ctx.target.conventions.explanations["exactness"]
        result.outcome = "convention"  # the measured error of a declared approximation
        result.reason = f"approximate ({why}); measured: {result.message.splitlines()[0]}"
        result.message = ""
    if result.outcome == "fail":
        result.counterexample = "\n".join(line for line in lines if line.strip())
        result.reproduce = run.reproduce
        if run.on_failure is not None:
            run.on_failure(result, list(guard.recorded), ctx)
    return result


def _approximation_error(result: Result, p: Property, target: Target) -> bool:
    """A formula property's failed comparison (not a fault: a crash, NaN or hang is still a
    failure) on a target that declares its attention approximate."""
    approximate = target.conventions.exactness == "approximate"
    return result.outcome == "fail" and p.exact and approximate and not result.fault


def _fault(result: Result, err: BaseException, when: str = "") -> None:
    """A failure: the assertion that failed, the guard's diagnosis, or what the target
    raised (a failure of the target, not of the harness)."""
    result.outcome = "fail"
    if isinstance(err, TargetFault | StopProperty):
        result.fault, result.message = err.kind, str(err)
    elif isinstance(err, AssertionError | Flaky):
        result.message = str(err).strip()
    else:
        result.fault = "raised"
        result.message = f"the target raised {type(err).__name__}: {err}".strip()
        result.traceback = _target_frames(err)
    if when:
        result.message += f" ({when})"
    if isinstance(err, StopProperty):
        release_memory()


def _target_frames(err: BaseException) -> str:
    """The innermost frames of what the target raised, the harness's own left out (they are
    the same for every target and hide the adapter's or the library's line)."""
    frames = traceback.extract_tb(err.__traceback__)
    harness = (str(Path(__file__).parent.parent), str(Path(hypothesis.__file__).parent))
    theirs = [f for f in frames if not f.filename.startswith(harness)] or frames
    # nn.Module's call plumbing (two frames per module) would push the library's lines out.
    plumbing = str(Path(torch.nn.modules.module.__file__))
    theirs = [f for f in theirs if f.filename != plumbing] or theirs
    return "".join(traceback.format_list(theirs[-TRACEBACK_FRAMES:])).rstrip()


@contextlib.contextmanager
def _captured(result: Result) -> Iterator[None]:
    """What the target prints goes into the result (cut at OUTPUT_LIMIT characters), not
    between the run's own lines."""
    buffer = io.StringIO()
    caught: list[warnings.WarningMessage] = []
    try:
        with (
            contextlib.redirect_stdout(buffer),
            contextlib.redirect_stderr(buffer),
            warnings.catch_warnings(record=True) as caught,
        ):
            warnings.simplefilter("always", DeclarationWarning)
            yield
    finally:
        for w in caught:  # a declaration's warning goes to the report; others, as printed
            if issubclass(w.category, DeclarationWarning):
                if str(w.message) not in result.warnings:
                    result.warnings.append(str(w.message))
            else:
                buffer.write(warnings.formatwarning(w.message, w.category, w.filename, w.lineno))
        text = result.output + buffer.getvalue()
        cut = len(text) - OUTPUT_LIMIT
        result.output = text if cut <= 0 else f"{text[:OUTPUT_LIMIT]}\n... ({cut} more characters)"
