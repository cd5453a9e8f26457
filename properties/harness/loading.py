"""Targets by name: a built-in name, mutant:NAME, hf:CLASSNAME or MODULE:FACTORY. Every
mistake is a UsageError with one line saying what is wrong and what would be accepted.

A process loads each target once (`loaded`): the run's controller for its reports, each
worker for its items, and the one process of a run without workers for both. A mutant is
the exception that proves it: it swaps reference modules, so one is open at a time and it
closes when another target opens. With $TRANSFORMER_SPEC_TRACE set to a file, each load
(and each Plan made, see plan.py) appends a line `PID load NAME` to it: the test that counts
them reads it."""

import contextlib
import importlib
import os
import sys
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

import torch
from transformer_spec.properties.harness.errors import UsageError
from transformer_spec.properties.harness.guard import Snapshot
from transformer_spec.properties.harness.plan import check_target_name, trace
from transformer_spec.properties.targets.adapters import THIRD_PARTY, hf
from transformer_spec.properties.targets.adapters.hf import MissingExtra
from transformer_spec.properties.targets.builtin import BUILTIN_TARGETS
from transformer_spec.properties.targets.protocols import Target

if TYPE_CHECKING:
    from transformer_spec.properties.targets.mutants import Mutant

_LOADED: dict[str, Target | UsageError] = {}  # this process's targets, or why one failed
_MUTANT: list[tuple[str, contextlib.ExitStack, Target]] = []  # the open mutant, if any


def loaded(spec: str) -> Target:
    """The target `spec`, loaded once in this process (a failure too: it is raised again
    without a second try). Opening a target closes an open mutant first."""
    if _MUTANT and _MUTANT[0][0] == spec:
        return _MUTANT[0][2]
    close_mutant()
    if spec.startswith("mutant:"):
        installed = contextlib.ExitStack()
        try:
            target = load_target(spec, installed)
        except UsageError:
            installed.close()
            raise
        _MUTANT.append((spec, installed, target))
        return target
    if spec not in _LOADED:
        try:
            _LOADED[spec] = load_target(spec)
        except UsageError as err:
            _LOADED[spec] = err
    found = _LOADED[spec]
    if isinstance(found, UsageError):
        raise found
    return found


def described(spec: str) -> Target:
    """What `spec` declares, for a run's reports: `loaded`, except that a mutant is not
    applied (its declarations are the reference's; the workers apply it for its items)."""
    if not spec.startswith("mutant:"):
        return loaded(spec)
    mutant = _catalogued(spec.removeprefix("mutant:"))
    return replace(
        loaded("reference-math"), name=spec, description=f"the reference with a bug: {mutant.bug}"
    )


def forget() -> None:
    """The end of a run in this process: the open mutant closes and the next run loads
    its targets afresh (a module may have changed in between)."""
    close_mutant()
    _LOADED.clear()


def close_mutant() -> None:
    """Put the unmutated reference back (the open mutant's modules go)."""
    while _MUTANT:
        _MUTANT.pop()[1].close()


def load_target(spec: str, installed: contextlib.ExitStack | None = None) -> Target:
    """A built-in name (reference-math, reference-fused), mutant:NAME, hf:CLASSNAME (a Hugging
    Face model class, built tiny; hf:CLASSNAME:eager or :sdpa names its attention
    implementation) or MODULE:FACTORY, where FACTORY() returns a Target. Loading a module runs
    its code; global torch state it leaves changed (other than the RNG, which modules often
    seed) is put back, with a warning. Not cached: `loaded` is.

    A mutant swaps reference modules for mutated ones: that lasts until `installed` closes, so
    a mutant is loaded with `opened` or `loaded`, never for the rest of the process."""
    trace("load", spec)
    snapshot = Snapshot.take(torch.device("cpu"))
    try:
        return _load_target(spec, installed)
    finally:
        changes = [c for c in snapshot.restore() if "RNG state" not in c]
        if changes:
            print(
                f"warning: loading target {spec!r} changed {'; '.join(changes)}; "
                "the harness restored it",
                file=sys.stderr,
            )


@contextlib.contextmanager
def opened(spec: str) -> Iterator[Target]:
    """The target for one block: what loading it installed (a mutant's modules) is gone after
    the block, so the next target sees none of it."""
    with contextlib.ExitStack() as installed:
        yield load_target(spec, installed)


def peek(spec: str) -> Target:
    """The target as loaded, to read what it declares; a mutant is undone at once."""
    with opened(spec) as target:
        return target


def _catalogued(name: str) -> "Mutant":
    from transformer_spec.properties.targets import mutants

    chosen = [m for m in mutants.CATALOGUE if m.name == name]
    if not chosen:
        raise UsageError(
            f"target 'mutant:{name}': no such mutant; see `transformer-spec mutants --list`"
        )
    return chosen[0]


def _mutant_target(name: str, installed: contextlib.ExitStack | None) -> Target:
    """The reference (math path) with one seeded bug of the mutant catalogue."""
    from transformer_spec.properties.checks import load_all
    from transformer_spec.properties.targets import mutants

    mutant = _catalogued(name)
    if installed is None:
        raise UsageError(
            f"target 'mutant:{name}': a mutant is loaded with loading.opened(), which puts the "
            "unmutated reference back when the cell ends"
        )
    load_all()  # the properties keep the modules they were imported with
    builtin = installed.enter_context(mutants.applied(mutant))
    target: Target = builtin.reference_target("math")
    return replace(
        target, name=f"mutant:{name}", description=f"the reference with a bug: {mutant.bug}"
    )


def _load_target(spec: str, installed: contextlib.ExitStack | None) -> Target:
    if spec in BUILTIN_TARGETS:
        return BUILTIN_TARGETS[spec]()
    if spec.startswith("mutant:"):
        return _mutant_target(spec.removeprefix("mutant:"), installed)
    if spec in THIRD_PARTY or spec.startswith("hf:"):
        try:
            return THIRD_PARTY[spec]() if spec in THIRD_PARTY else hf.parse(spec)
        except (MissingExtra, ValueError) as err:
            raise UsageError(f"target {spec!r}: {err}") from err
    check_target_name(spec)
    module_name, _, attr = spec.partition(":")
    if os.getcwd() not in sys.path:  # MODULE is looked up from the current folder too
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except (Exception, SystemExit) as err:  # ImportError, or the module's own code failing
        raise UsageError(
            f"target {spec!r}: cannot import module {module_name!r}: {type(err).__name__}: {err}"
        ) from err
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise UsageError(f"target {spec!r}: module {module_name!r} has no callable {attr!r}")
    try:
        target = factory()
    except (Exception, SystemExit) as err:
        raise UsageError(
            f"target {spec!r}: the factory raised {type(err).__name__}: {err}"
        ) from err
    if not isinstance(target, Target):
        raise UsageError(
            f"target {spec!r}: the factory returned {type(target).__name__}, "
            "expected transformer_spec.properties.Target"
        )
    return target
