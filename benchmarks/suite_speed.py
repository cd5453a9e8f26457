"""Suite speed: wall time of the `ci`-profile run on the reference per (device, dtype) cell,
and the time of each property, as medians over --repeats runs.

    python -m benchmarks.suite_speed [--device cpu] [--dtype float32 ...] [--repeats 3]

A cell is what `nox -s "properties(device=..., dtype=...)"` runs: every property on both
reference targets (reference-math and reference-fused), one CPU thread (the harness's own
setting), without the run-time shape checker unless TRANSFORMER_SPEC_TYPECHECK=1.
"""

import argparse
import statistics
import time
from collections import defaultdict

import torch
from transformer_spec.properties.checks import load_all
from transformer_spec.properties.harness.profiles import PROFILES
from transformer_spec.properties.targets.builtin import reference_target
from transformer_spec.reference.config import DTYPES, parse_device

from tests.cells import run_cell

TARGETS = ("math", "fused")


def run_once(device: torch.device, dtype: torch.dtype) -> tuple[float, dict[str, float]]:
    """(wall seconds of the cell, seconds per property summed over both targets)."""
    props = list(load_all().values())
    per_property: dict[str, float] = defaultdict(float)
    start = time.perf_counter()
    for path in TARGETS:
        cell = run_cell(
            reference_target(path), props, device=device, dtype=dtype, profile="ci", seed=0
        )
        if cell.count("fail"):
            raise SystemExit(f"the reference failed in {device}/{dtype}: not a speed figure")
        for r in cell.results:
            per_property[r.property] += r.seconds
    return time.perf_counter() - start, dict(per_property)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--device", action="append", help="cpu or cuda (default: cpu)")
    parser.add_argument("--dtype", action="append", help="default: all four")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--top", type=int, default=15, help="slowest properties listed")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats: expected >= 1")
    try:
        devices = [parse_device(d, argument="--device") for d in args.device or ["cpu"]]
    except ValueError as err:
        parser.error(str(err))
    names = args.dtype or list(DTYPES)
    unknown = [n for n in names if n not in DTYPES]
    if unknown:
        parser.error(f"--dtype {unknown[0]!r}: expected one of {list(DTYPES)}")
    cells = [(device, name) for device in devices for name in names]
    walls: dict[str, list[float]] = {}
    props: dict[str, dict[str, list[float]]] = {}
    for device, name in cells:
        key = f"{device.type}/{name}"
        for _ in range(args.repeats):
            wall, per_property = run_once(device, DTYPES[name])
            walls.setdefault(key, []).append(wall)
            for pid, seconds in per_property.items():
                props.setdefault(pid, {}).setdefault(key, []).append(seconds)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads available, "
        f"{args.repeats} run(s) per cell, both reference targets per cell\n"
    )
    # Nominal examples: the ci profile's 25 per property and target (a property that fails,
    # or does not apply, runs fewer; the reference fails none).
    nominal = len(props) * len(TARGETS) * int(str(PROFILES["ci"]["max_examples"]))
    print(f"{'cell':<16} {'median s':>9} {'min s':>7} {'max s':>7} {'examples/s':>11}")
    for key, values in walls.items():
        median = statistics.median(values)
        print(
            f"{key:<16} {median:9.1f} {min(values):7.1f} {max(values):7.1f} "
            f"{nominal / median:11.0f}"
        )
    keys = list(walls)
    medians = {
        pid: {k: statistics.median(v) for k, v in by_cell.items()} for pid, by_cell in props.items()
    }
    ranked = sorted(medians.items(), key=lambda kv: -sum(kv[1].values()))
    print(f"\nslowest {args.top} of {len(ranked)} properties, median s per cell:")
    print(f"{'property':<52}" + "".join(f"{k:>16}" for k in keys))
    for pid, by_cell in ranked[: args.top]:
        print(f"{pid:<52}" + "".join(f"{by_cell[k]:16.2f}" for k in keys))
    rest = ranked[args.top :]
    print(
        f"{'(the other ' + str(len(rest)) + ')':<52}"
        + "".join(f"{sum(m[k] for _, m in rest):16.2f}" for k in keys)
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
