"""`transformer-spec mutants`: every property against the catalogue of seeded bugs."""

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from .. import _options
from .._options import UsageError

if TYPE_CHECKING:
    from transformer_spec.properties.harness.plan import Plan
    from transformer_spec.properties.targets.mutants import Mutant
from ._shared import _usage


def run(args: argparse.Namespace) -> int:
    """Exit 0 when every mutant is caught in float32 (and in bfloat16 unless declared
    invisible there) and every property catches a mutant or has a written reason; else 1."""
    try:  # the catalogue is plain data: a bad option is answered before torch is imported
        _options.reports(args.markdown)
        from transformer_spec.properties.harness.plan import make_plan
        from transformer_spec.properties.targets import mutants as M

        chosen = M.select(args.names)
        if not chosen:
            raise UsageError(
                f"no mutant matches {args.names}; see `transformer-spec mutants --list`"
            )
        plan = make_plan([m.name for m in chosen], command="mutants", jobs=args.jobs)
    except UsageError as err:
        return _usage("mutants", err)
    if args.list:
        print("\n".join(f"{m.name}: {m.bug}" for m in chosen))
        return 0
    return _run_mutants(args, chosen, plan)


def _run_mutants(args: argparse.Namespace, chosen: "list[Mutant]", plan: "Plan") -> int:
    import time

    import torch

    from transformer_spec.properties.harness.progress import Progress
    from transformer_spec.properties.reports import kill_matrix as K

    properties = sorted(plan.selected())
    print(
        f"{len(chosen)} mutants x {len(properties)} properties; {plan.workers()[1]}: "
        "a block per mutant as it is done",
        flush=True,
    )
    start = time.perf_counter()
    with Progress(total=len(chosen)) as progress:
        rows = K.run_all(chosen, plan, progress=progress)
    wall = time.perf_counter() - start
    print("\n".join(K.summary_lines(rows, properties)))
    survivors = [r.mutant for r in rows if r.survived or r.bf16_survived]
    uncaught = K.uncaught_properties(rows, properties) if not args.names else []
    header = (
        f"{len(rows)} mutants x {len(properties)} properties, {plan.device}, profile "
        f"{plan.profile}, seed {plan.seed}, torch {torch.__version__}, {plan.jobs} "
        f"worker(s): {wall:.0f} s wall"
    )
    print(f"\n{header}")
    if args.markdown:
        Path(args.markdown).write_text(K.render_markdown(rows, properties, header))
    if survivors:
        print(f"SURVIVED: {', '.join(survivors)}")
    if uncaught:
        print(f"properties that catch no mutant (and have no written reason): {uncaught}")
    if not survivors and not uncaught:
        print(f"OK: every mutant caught ({len(rows)})")
    return 1 if survivors or uncaught else 0
