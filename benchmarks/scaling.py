"""How the conformance run's cost grows with the target's width and sequence length.

    python -m benchmarks.scaling [--factors 1 2 4 8] [--repeats 3]

The harness draws its own small shapes (models of width 16 or 32 with at most 16 positions,
attention with at most 7 queries), so a user's production size does not enter the run. To
show what a bigger target would cost, this benchmark wraps the reference so that every model
the harness asks for is built `factor` times wider (d_model, d_ff), and every attention call
gets `factor` times longer sequences (the drawn keys and values tiled along the sequence,
the queries too), and times the `model.*` and the `attention.*` properties.
"""

import argparse
import dataclasses
import statistics
import time
from collections.abc import Callable

import torch
from torch import Tensor
from transformer_spec.properties.checks import select
from transformer_spec.properties.targets.builtin import (
    ReferenceAttention,
    ReferenceModel,
    reference_target,
)
from transformer_spec.properties.targets.levels import ModelSpec
from transformer_spec.properties.targets.protocols import Target

from tests.cells import run_cell

CPU = torch.device("cpu")


def wider(factor: int) -> Target:
    base = reference_target("math")

    def model(spec: ModelSpec) -> ReferenceModel:
        scaled = dataclasses.replace(spec, d_model=spec.d_model * factor, d_ff=spec.d_ff * factor)
        return ReferenceModel(scaled, "math")

    return dataclasses.replace(base, name=f"reference-x{factor}-wide", model=model)


def longer(factor: int) -> Target:
    """Keys, values and the mask tiled `factor` times along the key axis and the queries along
    the query axis: softmax splits each key's weight evenly over its copies, so without a
    causal mask the first Lq rows are the untiled answer and the attention.* properties
    still pass (the benchmark checks that they do).

    A single key stays single: the spec wants exactly its value back, and `factor` copies of
    it are not exact in floating point (the running sum of 8 weighted copies, 3v/8, 5v/8,
    ..., rounds), which made the x8 run fail `attention.output_in_convex_hull_of_values`."""
    inner = ReferenceAttention("math")

    def attention(
        q: Tensor, k: Tensor, v: Tensor, *, mask: Tensor | None, causal: bool
    ) -> tuple[Tensor, Tensor | None]:
        if k.shape[-2] == 1:
            return inner(q, k, v, mask=mask, causal=causal)
        tile = (1, 1, factor, 1)
        big_mask = None if mask is None else mask.repeat(1, 1, factor, factor)
        out, w = inner(q.repeat(tile), k.repeat(tile), v.repeat(tile), mask=big_mask, causal=causal)
        lq, lk = q.shape[-2], k.shape[-2]
        return out[..., :lq, :], None if w is None else w[..., :lq, :lk] * factor

    return dataclasses.replace(
        reference_target("math"), name=f"reference-x{factor}-long", attention=attention
    )


def seconds(target: Target, patterns: list[str], repeats: int) -> float:
    props = select(patterns)
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        cell = run_cell(target, props, device=CPU, dtype=torch.float32, profile="ci", seed=0)
        runs.append(time.perf_counter() - start)
        if cell.count("fail"):  # a failure shrinks, and shrinking time is not run time
            failed = [r.property for r in cell.results if r.outcome == "fail"]
            raise SystemExit(f"{target.name}: {failed} failed; the timing would mislead")
    return statistics.median(runs)


def table(
    title: str,
    build: Callable[[int], Target],
    patterns: list[str],
    factors: list[int],
    repeats: int,
) -> None:
    print(f"\n{title}")
    print(f"{'factor':>6} {'median s':>9} {'x factor 1':>10}")
    base = 0.0
    for f in factors:
        s = seconds(build(f), patterns, repeats)
        base = base or s
        print(f"{f:>6} {s:9.2f} {s / base:10.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--factors", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    if args.repeats < 1 or min(args.factors) < 1:
        parser.error("--repeats and --factors: expected integers >= 1")
    print(f"torch {torch.__version__}, cpu, float32, ci profile, median of {args.repeats}")
    table(
        "model.* properties, models built factor x wider:",
        wider,
        ["model.*"],
        args.factors,
        args.repeats,
    )
    table(
        "attention.* properties, sequences factor x longer:",
        longer,
        ["attention.*"],
        args.factors,
        args.repeats,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
