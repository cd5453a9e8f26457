"""`transformer-spec copy-task`: train the reference on the copy task and decode."""

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

from .._options import UsageError

if TYPE_CHECKING:
    from transformer_spec.properties.harness.progress import Progress
from ._shared import _usage


def run(args: argparse.Namespace) -> int:
    if args.steps < 1:
        return _usage("copy-task", UsageError(f"--steps {args.steps}: expected >= 1"))
    import torch

    from transformer_spec.properties.harness.progress import Progress
    from transformer_spec.reference.copy_task import train_copy_task

    threads = torch.get_num_threads()
    print(
        f"copy task: training the reference encoder-decoder for {args.steps} steps "
        f"(seed {args.seed}, {threads} CPU threads); a line every 50 steps",
        flush=True,
    )
    with Progress() as progress:
        result = train_copy_task(
            steps=args.steps, seed=args.seed, on_step=_copy_step(args.steps, progress), every=1
        )
    print(
        f"copy task: accuracy {result.accuracy:.4f} after {result.steps} steps, "
        f"final loss {result.final_loss:.2e}, {result.seconds:.1f} s on {threads} CPU threads"
    )
    return 0 if result.accuracy >= 0.99 else 1


def _copy_step(steps: int, progress: "Progress") -> "Callable[[int, float], None]":
    """A line every 50 steps and after the last; the heartbeat shows the step in between."""
    import time

    start = time.perf_counter()

    def step(n: int, loss: float) -> None:
        progress.note(0, f"copy task step {n}/{steps}, loss {loss:.2e}")
        if n % 50 == 0 or n == steps:
            seconds = time.perf_counter() - start
            progress.line(f"  step {n:>5}/{steps}  loss {loss:.2e}  {seconds:5.1f} s")
        if n == steps:
            progress.line("  greedy-decoding 1000 held-out sequences")
            progress.note(0, "copy task: greedy-decoding 1000 held-out sequences")

    return step
