"""Old code against new, side by side in one run: each command is run with the
`transformer-spec` of two installs in turn (before, after, before, after, ...), alone, and
the medians of the wall times and their ratio are printed as a markdown table.

    python -m benchmarks.versus --before /path/to/old/.venv/bin/transformer-spec \
        [--after transformer-spec] [--repeats 3] [--mutants]

The commands: the reference's `ci` cell (reference-math, float32) in one process before and
with `--jobs 1` and `--jobs 2` after; with --mutants also the kill matrix (`mutants --jobs 2`)
on both. Each run must exit 0, or it is not a speed figure.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

CELL = ["check", "reference-math", "--profile", "ci", "--dtype", "float32"]
Case = tuple[str, list[str], list[str]]  # (label, words before, words after)


def cases(cells: bool, mutants: bool) -> list[Case]:
    out: list[Case] = []
    if cells:
        out.append(("ci cell, one process", CELL, [*CELL, "--jobs", "1"]))
        out.append(("ci cell, --jobs 2 after", CELL, [*CELL, "--jobs", "2"]))
    if mutants:
        out.append(("mutants --jobs 2", ["mutants", "--jobs", "2"], ["mutants", "--jobs", "2"]))
    return out


def timed(program: str, words: list[str], folder: str) -> float:
    """Seconds of one run, from an empty folder (no cache of either side is reused)."""
    start = time.perf_counter()
    done = subprocess.run(
        [program, *words], cwd=folder, capture_output=True, text=True, env=dict(os.environ)
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{program} {' '.join(words)} exited {done.returncode}:\n{done.stdout[-2000:]}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--before", required=True, help="the old install's transformer-spec")
    parser.add_argument("--after", default="transformer-spec", help="the new one's")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--mutants", action="store_true", help="also the kill matrix")
    parser.add_argument("--only-mutants", action="store_true", help="the kill matrix alone")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats: expected >= 1")
    for side in (args.before, args.after):
        if shutil.which(side) is None:
            parser.error(f"{side!r}: no such program")
    rows = ["| command | before (s) | after (s) | before / after |", "| --- | ---: | ---: | ---: |"]
    chosen = cases(not args.only_mutants, args.mutants or args.only_mutants)
    for label, before, after in chosen:
        times: dict[str, list[float]] = {"before": [], "after": []}
        for _ in range(args.repeats):
            for side, program, words in (
                ("before", args.before, before),
                ("after", args.after, after),
            ):
                with tempfile.TemporaryDirectory() as folder:
                    times[side].append(timed(program, words, folder))
        b, a = statistics.median(times["before"]), statistics.median(times["after"])
        rows.append(f"| `{label}` | {b:.1f} | {a:.1f} | {b / a:.2f}x |")
        print(f"{label}: before {times['before']}, after {times['after']}", file=sys.stderr)
    print(f"medians of {args.repeats} runs each, alternating, cores: {os.cpu_count()}")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
