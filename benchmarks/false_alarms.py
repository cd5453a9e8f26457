"""False-alarm study: the whole suite (`ci` profile) on every correct target across many
seeds, per (target, dtype); prints failures per cell, which must be 0.

    python -m benchmarks.false_alarms [--seeds 20] [--first-seed 1] [--device cpu]
        [--dtype D ...] [--jobs N] [--known-failures docs/conformance-known.txt]
        [--markdown docs/false-alarms.md] [--json PATH] [--budget SECONDS]
        [--property ID-OR-GLOB ...] [--family | --family-full] [TARGET ...]

Targets default to every built-in target that runs on the device. `--family` checks instead
the family of correct implementations of every declarable convention (tests/family.py, a
pairwise covering set); `--family-full` every combination. A failure that the
known-failures file names is a documented non-conformance, not a false alarm; it is counted
apart. `--budget` starts no cell once that many seconds are spent; the report names the
cells not run. Exit 1 when any cell has a failure, 2 for bad options.
"""

import argparse
import sys
import time
from collections import Counter

import torch
from transformer_spec.properties.harness import session
from transformer_spec.properties.harness.errors import UsageError
from transformer_spec.properties.harness.plan import make_plan
from transformer_spec.properties.harness.profiles import DTYPE_WORDS
from transformer_spec.properties.harness.results import CellReport, Result
from transformer_spec.properties.reports import report
from transformer_spec.properties.reports import table as C
from transformer_spec.properties.targets.protocols import Target
from transformer_spec.spec import load_spec


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def render(cells: list[CellReport], names: list[str], dtypes: list[str], header: str) -> str:
    """Failures / seeds per (target, dtype), then every failure with its seed."""
    seeds = len({c.seed for c in cells})
    fails: Counter[tuple[str, str]] = Counter()
    known: Counter[tuple[str, str]] = Counter()
    for c in cells:
        fails[c.target, c.dtype] += c.count("fail")
        known[c.target, c.dtype] += c.count("known_failure")
    lines = ["# False-alarm study", "", header, ""]
    lines += [
        f"Each cell: failing properties summed over {seeds} seeds (`ci` profile, 25 examples "
        "per property), then in brackets the known failures (a documented non-conformance "
        "of the library, with its reason in the known-failures file).",
        "",
        "| target | " + " | ".join(dtypes) + " |",
        "| --- |" + " ---: |" * len(dtypes),
    ]
    for name in names:
        row = [
            f"{fails[name, d]}" + (f" ({known[name, d]})" if known[name, d] else "") for d in dtypes
        ]
        lines.append(f"| `{name}` | " + " | ".join(row) + " |")
    total = sum(fails.values())
    lines += ["", f"Total failures: {total} over {len(cells)} cells.", ""]
    for c in cells:
        for r in c.results:
            if r.outcome == "fail":
                lines.append(
                    f"- `{c.target}` {c.dtype} seed {c.seed} `{r.property}`: "
                    f"{_first_line(r.message)}"
                )
    return "\n".join(lines) + "\n"


def _family(*, full: bool) -> list[str]:
    from tests import family  # the repository's tests/, run from its root

    return [family.spec(name) for name in family.correct(full)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("targets", nargs="*", metavar="TARGET")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", action="append", help="default: all four")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--known-failures")
    parser.add_argument("--markdown")
    parser.add_argument("--json", help="also write every cell's results as JSON here")
    parser.add_argument("--budget", type=float, metavar="SECONDS", help="start no cell after")
    parser.add_argument(
        "--property", action="append", default=[], help="only these ids or globs (repeatable)"
    )
    family = parser.add_mutually_exclusive_group()
    family.add_argument(
        "--family", action="store_true", help="the correct family (pairwise) instead"
    )
    family.add_argument(
        "--family-full", action="store_true", help="the correct family, every combination"
    )
    args = parser.parse_args(argv)
    if args.seeds < 1 or args.jobs < 1:
        parser.error("--seeds and --jobs: expected >= 1")
    if args.budget is not None and not args.budget > 0:
        parser.error(f"--budget {args.budget:g}: expected seconds > 0")
    dtypes = args.dtype or list(DTYPE_WORDS)
    names = args.targets or (
        _family(full=args.family_full) if args.family or args.family_full else C.all_targets()
    )
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    start = time.perf_counter()
    cells: list[CellReport] = []
    not_run: list[str] = []
    targets: dict[str, Target] = {}
    for seed in seeds:  # a Plan and its pytest session a seed
        left = None if args.budget is None else args.budget - (time.perf_counter() - start)
        wanted = [f"{n} {d} seed {seed}" for n in names for d in dtypes]
        if left is not None and left <= 0:
            not_run += wanted
            continue
        try:
            plan = make_plan(
                names,
                device=args.device,
                dtype=dtypes,
                profile="ci",
                seed=seed,
                property=args.property,
                known_failures=args.known_failures,
                jobs=args.jobs,
                budget=left,
                on_device_only=not args.targets,
            )
        except UsageError as err:
            parser.error(str(err))

        def on_item(target: str, dtype: str, result: Result, seed: int = seed) -> None:
            if result.outcome == "fail":
                print(f"FAIL {target} {dtype} seed {seed} {result.property}", flush=True)

        try:
            done = session.run(plan, session.Hooks(item=on_item))
        except UsageError as err:
            parser.error(str(err))
        cells += done.cells
        targets.update(done.targets)
        not_run += [f"{n} {d} seed {seed}" for n, d in done.not_run]
        names = plan.runnable()
        print(f"seed {seed} done, {time.perf_counter() - start:.0f} s", flush=True)
    labels = {n: t.name for n, t in targets.items()}
    wall = time.perf_counter() - start
    header = (
        f"`python -m benchmarks.false_alarms {' '.join(sys.argv[1:] if argv is None else argv)}`"
        f"; torch {torch.__version__}{C.transformers_version()}; {len(names)} targets x "
        f"{len(dtypes)} dtypes x seeds {seeds.start}..{seeds.stop - 1} on {args.device}; "
        f"{len(cells)} cells, {args.jobs} worker(s), {wall:.0f} s wall."
    )
    if not_run:
        header += f" Not run, the {args.budget:g} s budget was spent: {len(not_run)} cells."
    text = render(cells, [labels[n] for n in names], dtypes, header)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as f:
            f.write(text)
    if args.json:
        extra = {"not_run": not_run, "seeds": list(seeds)}
        ran = {n: targets[n] for n in names}
        doc = report.to_json(cells, ran, load_spec().version, extra)
        with open(args.json, "w", encoding="utf-8") as f:
            f.write(doc)
    print(text)
    return 1 if any(c.count("fail") for c in cells) else 0


if __name__ == "__main__":
    raise SystemExit(main())
