"""Does --jobs pay? `transformer-spec check` with --jobs 1 and --jobs 2, side by side in one
run (alternating, each a fresh process, as a user runs it), medians of --repeats:

- the reference's ci cell: `check reference-math --profile ci --dtype float32`; --jobs 2
  should be at least 1.4x faster on 2 cores;
- three small kernel targets: `check torch-sdpa-math torch-sdpa-flash torch-sdpa-math-float
  --profile ci --dtype float32`; --jobs 2 should be no slower (the Plan keeps a run this
  small in one process: `--verbose` prints the rule).

    python -m benchmarks.jobs [--repeats 3] [--markdown docs/jobs-benchmark.md]

Exit 1 when a goal is missed. Time it alone: the machine's load is printed with it.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

CASES = {
    "reference ci cell": (["reference-math"], 1.4),
    "three kernel targets": (["torch-sdpa-math", "torch-sdpa-flash", "torch-sdpa-math-float"], 1.0),
}
OPTIONS = ["--profile", "ci", "--dtype", "float32", "--seed", "0", "-q"]


def once(targets: list[str], jobs: int) -> tuple[float, str]:
    """Wall seconds of one `check`, and its rule line (--verbose's first line)."""
    cmd = [sys.executable, "-m", "transformer_spec", "check", *targets, *OPTIONS]
    start = time.perf_counter()
    run = subprocess.run([*cmd, "--jobs", str(jobs)], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if run.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} --jobs {jobs} failed:\n{run.stdout}\n{run.stderr}")
    return wall, _rule(targets, jobs)


def _rule(targets: list[str], jobs: int) -> str:
    from transformer_spec.properties.harness.plan import make_plan

    plan = make_plan(targets, dtype=["float32"], profile="ci", seed=0, jobs=jobs)
    return plan.workers()[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--markdown", help="also write the report here")
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    start = time.perf_counter()
    lines = [
        "# Does --jobs pay?",
        "",
        f"`python -m benchmarks.jobs --repeats {args.repeats}`, {os.cpu_count()} cores; "
        f"load average {load:.2f} before the run. Each figure is the median of "
        f"{args.repeats} fresh `transformer-spec check {' '.join(OPTIONS)}` processes, "
        "--jobs 1 and --jobs 2 alternating. A ratio is --jobs 1's median over --jobs 2's.",
        "",
        "| run | --jobs 1 (s) | --jobs 2 (s) | ratio | goal | --jobs 2 ran as |",
        "| --- | ---: | ---: | ---: | --- | --- |",
    ]
    missed = []
    for name, (targets, goal) in CASES.items():
        walls: dict[int, list[float]] = {1: [], 2: []}
        rule = ""
        for _ in range(args.repeats):
            for jobs in (1, 2):
                wall, why = once(targets, jobs)
                walls[jobs].append(wall)
                rule = why if jobs == 2 else rule
                print(f"{name}, --jobs {jobs}: {wall:.1f} s", flush=True)
        one, two = statistics.median(walls[1]), statistics.median(walls[2])
        ratio = one / two
        ok = ratio >= goal if goal > 1 else two <= one * 1.05  # "no slower": within 5 %
        missed += [] if ok else [name]
        want = f">= {goal:g}x" if goal > 1 else "no slower (5 %)"
        lines.append(
            f"| {name} | {one:.1f} | {two:.1f} | {ratio:.2f}x | {want}: "
            f"{'met' if ok else 'MISSED'} | {rule} |"
        )
    lines += [
        "",
        f"Load average {os.getloadavg()[0]:.2f} after; {time.perf_counter() - start:.0f} s in all.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as out:
            out.write(text)
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
