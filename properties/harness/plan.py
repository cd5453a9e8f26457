"""One validated description of a run: the targets, the device, the dtypes, the Hypothesis
profile and seed, the per-call time limit, the properties chosen and the known failures.

`check`, `table`, the pytest plugin and the benchmarks each used to put this together on
their own, and the copies drifted (`table` took seed 0 and the ci profile whatever it was
told, `check` a random seed). They all call `make_plan` now: one set of defaults, one set of
one-line errors, each naming the option as its caller spells it (`--dtype`, `--ts-dtype`).
"""

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformer_spec.properties.harness.guard import DEFAULT_CALL_TIMEOUT
from transformer_spec.properties.harness.registry import Property, select
from transformer_spec.properties.harness.runner import PROFILES, default_profile, default_seed
from transformer_spec.properties.targets.loading import (
    KnownFailure,
    UsageError,
    load_known_failures,
)


@dataclass(frozen=True)
class Plan:
    targets: tuple[str, ...]
    device: torch.device
    dtypes: tuple[str, ...]
    profile: str
    seed: int
    call_timeout: float = DEFAULT_CALL_TIMEOUT
    properties: tuple[str, ...] = ()  # ids or globs; () for every property
    known: tuple[KnownFailure, ...] = ()

    def selected(self) -> list[Property]:
        return select(list(self.properties))

    def cells(self) -> list[tuple[str, str]]:
        """(target, dtype) in run order: a target's dtypes together (it is opened once)."""
        return [(t, d) for t in self.targets for d in self.dtypes]

    def reproduce(self, target: str, dtype: str) -> str:
        """The command that runs one cell of this plan again (add --property ID)."""
        return (
            f"transformer-spec check {target} --device {self.device} --dtype {dtype} "
            f"--profile {self.profile} --seed {self.seed}"
        )


def make_plan(
    targets: Sequence[str],
    *,
    device: str = "cpu",
    dtypes: Sequence[str] = ("float32",),
    profile: str | None = None,
    seed: int | None = None,
    call_timeout: float = DEFAULT_CALL_TIMEOUT,
    properties: Sequence[str] = (),
    known_failures: str | None = None,
    default: str | None = None,
    option: str = "--",
) -> Plan:
    """A checked Plan. Without `profile`, `default` (or ci when $CI is set, else quick); the
    seed is then 0 under ci and random otherwise, for every caller alike. `option` is the
    prefix of the caller's option names, for the messages. Raises UsageError."""
    from transformer_spec.reference.config import DTYPES, parse_device

    unknown = [d for d in dtypes if d not in DTYPES] or ([] if dtypes else [""])
    if unknown:
        raise UsageError(f"{option}dtype {unknown[0]!r}: expected one of {list(DTYPES)}")
    profile = profile or default or default_profile()
    if profile not in PROFILES:
        raise UsageError(f"{option}profile {profile!r}: expected one of {list(PROFILES)}")
    if not call_timeout >= 0:
        raise UsageError(f"{option}call-timeout {call_timeout:g}: expected seconds >= 0 (0: none)")
    if properties and not select(list(properties)):
        raise UsageError(
            f"{option}property {list(properties)}: matches no property; "
            "see `transformer-spec check --list`"
        )
    try:
        where = parse_device(device, argument=f"{option}device")
    except ValueError as err:
        raise UsageError(str(err)) from err
    known = load_known_failures(known_failures) if known_failures else []
    return Plan(
        targets=tuple(targets),
        device=where,
        dtypes=tuple(dtypes),
        profile=profile,
        seed=default_seed(profile) if seed is None else seed,
        call_timeout=call_timeout,
        properties=tuple(properties),
        known=tuple(known),
    )
