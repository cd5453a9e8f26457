"""The `transformer-spec` command.

Exit codes: 0 success, 1 a check failed, 2 bad usage (argparse's convention).
"""

import argparse
import json
import os
import re
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from ._version import __version__

if TYPE_CHECKING:
    import torch

    from transformer_spec.properties.guard import Recorded
    from transformer_spec.properties.loading import KnownFailure
    from transformer_spec.properties.registry import Context
    from transformer_spec.properties.runner import CellReport, OnFailure, Result

DEFAULT_CALL_TIMEOUT = 60.0  # seconds; the same as properties.guard's (kept light to import)


def _clause_table(kind: str | None, section: str | None, as_json: bool) -> int:
    from transformer_spec.properties.registry import checked_by
    from transformer_spec.spec import load_spec

    spec = load_spec(checked_by())
    known_sections = [s.name for s in spec.sections]
    if section is not None and section not in known_sections:
        print(
            f"transformer-spec spec: unknown section {section!r}; known: {known_sections}",
            file=sys.stderr,
        )
        return 2
    clauses = [
        c
        for c in spec.clauses
        if (kind is None or c.kind == kind) and (section is None or c.section == section)
    ]
    if as_json:
        rows = [
            {
                "id": c.id,
                "section": c.section,
                "kind": c.kind,
                "statement": c.statement,
                "reason": c.reason,
                "properties": list(c.properties),
                "sources": [{"file": s.file, "section": s.section} for s in c.sources],
            }
            for c in clauses
        ]
        print(
            json.dumps(
                {"spec_version": spec.version, "clauses": rows}, indent=2, ensure_ascii=False
            )
        )
        return 0
    for c in clauses:
        sources = "; ".join(f"{s.file[:3]} {s.section}" for s in c.sources)
        print(f"{c.id:<28} {c.kind:<12} {sources}")
        for line in textwrap.wrap(c.statement, 92):
            print(f"    {line}")
        if c.kind == "informative":
            print(f"    (not checked: {c.reason})")
        else:
            print(f"    checked by: {', '.join(c.properties) or 'no property yet'}")
    counts = {
        k: sum(c.kind == k for c in clauses) for k in ("property", "structure", "informative")
    }
    print(
        f"\n{len(clauses)} clauses ({counts['property']} property, {counts['structure']} "
        f"structure, {counts['informative']} informative); spec version {spec.version}; "
        f"sources: {', '.join(spec.sources)}"
    )
    return 0


def _copy_task(steps: int, seed: int) -> int:
    import torch

    from transformer_spec.reference.copy_task import train_copy_task

    result = train_copy_task(steps=steps, seed=seed)
    print(
        f"copy task: accuracy {result.accuracy:.4f} after {result.steps} steps, "
        f"final loss {result.final_loss:.2e}, {result.seconds:.1f} s on "
        f"{torch.get_num_threads()} CPU threads"
    )
    return 0 if result.accuracy >= 0.99 else 1


def _check(args: argparse.Namespace) -> int:
    """Exit 0 when every applicable property passes, 1 when any fails, 2 for bad input."""
    import torch

    from transformer_spec.properties import loading, registry, report, runner
    from transformer_spec.reference.config import DTYPES
    from transformer_spec.spec import load_spec

    try:
        names = args.targets or ["reference-math", "reference-fused"]
        targets = [loading.load_target(t) for t in names]
        dtypes, device, known = _cell_options(
            args, args.json, args.junit_xml, args.html, args.markdown
        )
        pictures = _pictures_folder(args)
        props = registry.select(args.property)
        if not props:
            raise loading.UsageError(
                f"--property {args.property}: matches no property; "
                "see `transformer-spec check --list`"
            )
    except loading.UsageError as err:
        print(f"transformer-spec check: {err}", file=sys.stderr)
        return 2
    missing: list[str] = []  # why there are no pictures, if there are none
    draw = _picture_drawer(pictures, missing)
    profile = args.profile or runner.default_profile()
    seed = runner.default_seed(profile) if args.seed is None else args.seed
    cells = []
    for name, target in zip(names, targets, strict=True):
        print("\n".join(report.header(target)))
        print(f"torch {torch.__version__}, device {device}, profile {profile}, seed {seed}")
        for dtype_name in dtypes:
            prefix = (
                f"transformer-spec check {name} --device {device} --dtype {dtype_name} "
                f"--profile {profile} --seed {seed}"
            )
            cell = runner.run_cell(
                target,
                props,
                device=device,
                dtype=DTYPES[dtype_name],
                profile=profile,
                seed=seed,
                reproduce_prefix=prefix,
                call_timeout=args.call_timeout,
                on_failure=draw,
            )
            loading.apply_known(cell, known)
            cells.append(cell)
            print("\n".join(report.cell_text(cell)))
    _warn_stale(known, cells)
    for line in missing[:1]:
        print(f"warning: no pictures: {line}", file=sys.stderr)
    notes = [f"No pictures: {line}" for line in missing[:1]]
    by_name = {t.name: t for t in targets}
    if args.html or args.markdown:
        from transformer_spec.properties import pages

        spec = load_spec(registry.checked_by())
        env = report.environment()
        written = _write(args.html, lambda: pages.render_html(cells, by_name, spec, env, notes))
        written &= _write(args.markdown, lambda: pages.render_summary(cells, notes))
    else:
        written = True
    written &= _write(args.json, lambda: report.to_json(cells, by_name, load_spec().version))
    written &= _write(args.junit_xml, lambda: report.to_junit(cells))
    failed = sum(c.count("fail") for c in cells)
    print(f"\n{'FAILED' if failed else 'OK'}: {failed} failing properties over {len(cells)} cells")
    return 1 if failed else (0 if written else 2)


def _pictures_folder(args: argparse.Namespace) -> Path | None:
    """--pictures DIR, or beside the --html page (PAGE_pictures/); None: no pictures."""
    from transformer_spec.properties.loading import UsageError

    if args.pictures:
        folder = Path(args.pictures)
    elif args.html:
        folder = Path(args.html).with_name(Path(args.html).stem + "_pictures")
    else:
        return None
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--pictures {str(folder)!r}: exists and is not a folder")
    where = folder if folder.is_dir() else folder.resolve().parent
    if not where.is_dir() or not os.access(where, os.W_OK):
        raise UsageError(
            f"--pictures {str(folder)!r}: folder {str(where)!r} does not exist or is not writable"
        )
    return folder


def _picture_drawer(folder: Path | None, missing: list[str]) -> "OnFailure | None":
    """Draws a failing example's pictures; records (once) why it cannot."""
    if folder is None:
        return None
    from transformer_spec.properties import pictures

    def draw(result: "Result", calls: "list[Recorded]", ctx: "Context") -> None:
        if missing:
            return
        stem = re.sub(
            r"[^A-Za-z0-9._-]",
            "_",
            f"{ctx.target.name}-{ctx.device.type}-{ctx.dtype_name}-{result.property}",
        )
        try:
            paths = pictures.draw_failure(result.property, calls, ctx, folder, stem)
        except pictures.MissingMatplotlib as err:
            missing.append(str(err))
            return
        result.pictures = [str(p) for p in paths]

    return draw


def _cell_options(
    args: argparse.Namespace, *reports: str | None
) -> "tuple[list[str], torch.device, list[KnownFailure]]":
    """The options `check` and `table` share: --dtype, --device, --call-timeout,
    --known-failures and the report paths; UsageError names the first bad one."""
    from transformer_spec.properties import loading
    from transformer_spec.reference.config import DTYPES, parse_device

    dtypes = list(DTYPES) if args.dtype == ["all"] else args.dtype
    unknown = [d for d in dtypes if d not in DTYPES]
    if unknown:
        raise loading.UsageError(f"--dtype {unknown[0]!r}: expected one of {list(DTYPES)} or 'all'")
    try:
        device = parse_device(args.device, argument="--device")
    except ValueError as err:
        raise loading.UsageError(str(err)) from err
    if not args.call_timeout >= 0:
        raise loading.UsageError(
            f"--call-timeout {args.call_timeout:g}: expected seconds >= 0 (0: no limit)"
        )
    known = loading.load_known_failures(args.known_failures) if args.known_failures else []
    for path in reports:
        if path:
            _writable(path)
    return dtypes, device, known


def _warn_stale(known: "Sequence[KnownFailure]", cells: "Sequence[CellReport]") -> None:
    from transformer_spec.properties.loading import stale_entries

    for entry in stale_entries(known, cells):
        print(
            f"warning: known-failures line {entry.line} ({entry.pattern}) matched no failure "
            "in this run: the entry may be stale",
            file=sys.stderr,
        )


def _write(path: str | None, text: "Callable[[], str]") -> bool:
    """Write a report; False (with one line) when it cannot be written after the run."""
    if not path:
        return True
    try:
        Path(path).write_text(text(), encoding="utf-8")
    except OSError as err:
        print(f"transformer-spec: report path {path!r}: cannot write it: {err}", file=sys.stderr)
        return False
    return True


def _mutants(args: argparse.Namespace) -> int:
    """Exit 0 when every mutant is caught in float32 (and in bfloat16 unless declared
    invisible there) and every property catches a mutant or has a written reason; else 1."""
    import time

    import torch

    from transformer_spec.properties import killmatrix as K
    from transformer_spec.properties import mutants as M
    from transformer_spec.properties.registry import load_all

    chosen = M.select(args.names)
    if not chosen:
        print(f"transformer-spec mutants: no mutant matches {args.names}", file=sys.stderr)
        return 2
    if args.list:
        print("\n".join(f"{m.name}: {m.bug}" for m in chosen))
        return 0
    if args.jobs < 1:
        print(f"transformer-spec mutants: --jobs {args.jobs}: expected >= 1", file=sys.stderr)
        return 2
    if args.markdown:
        from transformer_spec.properties.loading import UsageError

        try:
            _writable(args.markdown)
        except UsageError as err:
            print(f"transformer-spec mutants: {err}", file=sys.stderr)
            return 2
    properties = sorted(load_all())
    start = time.perf_counter()
    rows = K.run_all(chosen, properties, args.jobs)
    wall = time.perf_counter() - start
    print(K.render_text(rows, properties))
    survivors = [r.mutant for r in rows if r.survived or r.bf16_survived]
    uncaught = K.uncaught_properties(rows, properties) if not args.names else []
    header = (
        f"{len(rows)} mutants x {len(properties)} properties, cpu, torch {torch.__version__}, "
        f"{args.jobs} worker(s): {wall:.0f} s wall"
    )
    print(f"\n{header}")
    if args.markdown:
        Path(args.markdown).write_text(K.render_markdown(rows, properties, header))
    if survivors:
        print(f"SURVIVED: {', '.join(survivors)}")
    if uncaught:
        print(f"properties that catch no mutant (and have no written reason): {uncaught}")
    return 1 if survivors or uncaught else 0


def _table(args: argparse.Namespace) -> int:
    """Exit 0 when every target passes every applicable property or fails it with a written
    reason, 1 when a failure has none, 2 for bad input."""
    import time

    import torch

    from transformer_spec.properties import conformance as C
    from transformer_spec.properties import loading, registry, report
    from transformer_spec.spec import load_spec

    names = args.targets or C.all_targets()
    try:
        targets = {name: loading.load_target(name) for name in names}
        dtypes, device, known = _cell_options(args, args.markdown, args.json)
        if args.jobs < 1:
            raise loading.UsageError(f"--jobs {args.jobs}: expected >= 1")
        if args.budget is not None and not args.budget > 0:
            raise loading.UsageError(f"--budget {args.budget:g}: expected seconds > 0")
        if args.property and not registry.select(args.property):
            raise loading.UsageError(f"--property {args.property}: matches no property")
    except loading.UsageError as err:
        print(f"transformer-spec table: {err}", file=sys.stderr)
        return 2
    left_out = []
    if not args.targets:  # by default, only the targets that run on this device
        left_out = [n for n, t in targets.items() if device.type not in t.conventions.devices]
        names = [n for n in names if n not in left_out]
    chosen = tuple(args.property or ())
    jobs = [
        C.Job(n, str(device), d, args.seed, args.call_timeout, chosen)
        for d in dtypes
        for n in names
    ]
    start = time.perf_counter()
    cells = list(C.iter_table(jobs, known, args.jobs, args.budget))
    wall = time.perf_counter() - start
    versions = f"torch {torch.__version__}" + C.transformers_version()
    command = " ".join(["transformer-spec table", *_table_words(args)])
    n_props = len(cells[0].results) if cells else 0
    header = f"`{command}`; {versions}; {len(names)} targets x {n_props} properties."
    if left_out:
        header += f" Left out (they do not run on {device.type}): {', '.join(left_out)}."
    not_run = [f"{j.target} ({j.dtype})" for j in jobs[len(cells) :]]
    if not_run:
        header += f" Not run, the {args.budget:g} s budget was spent: {', '.join(not_run)}."
        print(f"warning: {len(not_run)} cells not run: the budget was spent", file=sys.stderr)
    text = C.render_markdown(cells, header, {n: t.description for n, t in targets.items()})
    written = _write(args.markdown, lambda: text)
    extra = {"not_run": not_run, "left_out": left_out}
    ran = {n: targets[n] for n in names}
    written &= _write(args.json, lambda: report.to_json(cells, ran, load_spec().version, extra))
    print(text)
    print(f"{len(cells)} cells, {args.jobs} worker(s): {wall:.0f} s wall", file=sys.stderr)
    _warn_stale(known, cells)
    failed = sum(c.count("fail") for c in cells)
    return 1 if failed else (0 if written else 2)


def _table_words(args: argparse.Namespace) -> list[str]:
    """The options that shape the table, as a command that regenerates it."""
    words = [f"--device {args.device}"] + [f"--dtype {d}" for d in args.dtype]
    if args.call_timeout != DEFAULT_CALL_TIMEOUT:
        words.append(f"--call-timeout {args.call_timeout:g}")
    if args.seed != 0:
        words.append(f"--seed {args.seed}")
    if args.known_failures:
        words.append(f"--known-failures {args.known_failures}")
    words += [f"--property {p}" for p in args.property or ()]
    if args.budget is not None:
        words.append(f"--budget {args.budget:g}")
    if args.targets:
        words += args.targets
    return words


def _writable(path: str) -> None:
    from transformer_spec.properties.loading import UsageError

    resolved = Path(path).resolve()
    if resolved.is_dir():
        raise UsageError(f"report path {path!r}: is a folder; expected a file path")
    parent = resolved.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise UsageError(
            f"report path {path!r}: folder {str(parent)!r} does not exist or is not writable"
        )


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line (what is wrong, what is accepted), exit 2."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: {message}; see `{self.prog} --help`", file=sys.stderr)
        raise SystemExit(2)


def _call_timeout(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--call-timeout",
        type=float,
        default=DEFAULT_CALL_TIMEOUT,
        metavar="SECONDS",
        help=f"per-call time limit on the target (default {DEFAULT_CALL_TIMEOUT:g}; 0: none)",
    )


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="transformer-spec",
        description="Spec-driven conformance checks for Transformer implementations.",
    )
    parser.add_argument("--version", action="version", version=f"transformer-spec {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    spec = sub.add_parser("spec", help="print the clauses of spec/ with their sources")
    spec.add_argument("--kind", choices=["property", "structure", "informative"])
    spec.add_argument("--section", help="only this section (e.g. attention)")
    spec.add_argument("--json", action="store_true", help="machine-readable output")
    check = sub.add_parser("check", help="check targets against the spec's properties")
    check.add_argument(
        "targets",
        nargs="*",
        metavar="TARGET",
        help="MODULE:FACTORY, mutant:NAME (a seeded bug) or a built-in "
        "(default: reference-math reference-fused)",
    )
    check.add_argument("--device", default="cpu")
    check.add_argument(
        "--dtype",
        action="append",
        help="float64, float32, bfloat16, float16 or all (repeatable; default float32)",
    )
    check.add_argument(
        "--profile",
        choices=["quick", "ci", "thorough"],
        help="default: ci when $CI is set, else quick",
    )
    check.add_argument(
        "--seed", type=int, help="Hypothesis seed (default: 0 under ci, else random)"
    )
    check.add_argument(
        "--property", action="append", help="only properties matching this id or glob (repeatable)"
    )
    check.add_argument("--json", help="write the JSON report here")
    check.add_argument("--junit-xml", help="write JUnit XML here")
    check.add_argument("--html", help="write one self-contained HTML page here (pictures inline)")
    check.add_argument("--markdown", help="write a short markdown summary here (CI job summary)")
    check.add_argument(
        "--pictures",
        metavar="DIR",
        help="draw failing examples as PNG files here (default with --html: beside the page)",
    )
    check.add_argument(
        "--known-failures", help="file: one property id or pattern per line, then the reason"
    )
    _call_timeout(check)
    mutants = sub.add_parser(
        "mutants",
        help="check every property against the catalogue of seeded bugs (exit 1 if one survives)",
    )
    mutants.add_argument(
        "names", nargs="*", metavar="NAME", help="only mutants whose name has this"
    )
    mutants.add_argument(
        "--jobs", type=int, default=os.cpu_count() or 1, help="worker processes (default: cores)"
    )
    mutants.add_argument("--markdown", help="also write the kill matrix as markdown here")
    mutants.add_argument("--list", action="store_true", help="list the mutants and exit")
    table = sub.add_parser(
        "table",
        help="run every built-in target (or those named) and print the conformance table",
    )
    table.add_argument(
        "targets", nargs="*", metavar="TARGET", help="default: every built-in target"
    )
    table.add_argument("--device", default="cpu")
    table.add_argument(
        "--dtype", action="append", help="float64, float32, bfloat16, float16 (repeatable)"
    )
    table.add_argument("--seed", type=int, default=0, help="Hypothesis seed (default 0)")
    table.add_argument(
        "--jobs", type=int, default=os.cpu_count() or 1, help="worker processes (default: cores)"
    )
    table.add_argument("--markdown", help="also write the table here")
    table.add_argument("--json", help="also write every cell's results as JSON here")
    table.add_argument(
        "--property", action="append", help="only properties matching this id or glob (repeatable)"
    )
    table.add_argument(
        "--budget",
        type=float,
        metavar="SECONDS",
        help="start no cell after this many seconds; the table names the cells not run",
    )
    table.add_argument(
        "--known-failures",
        help="file: PROPERTY or TARGET/PROPERTY pattern per line, then the written reason",
    )
    _call_timeout(table)
    copy = sub.add_parser(
        "copy-task", help="train the reference on the copy task (exit 1 below 99%%)"
    )
    copy.add_argument("--steps", type=int, default=500)
    copy.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:  # output piped into `head` and cut short: not an error
        sys.stderr.close()
        return 0


def _main(argv: Sequence[str] | None) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as done:  # --help, --version (0) or a usage mistake (2)
        return done.code if isinstance(done.code, int) else 2
    if args.command == "spec":
        return _clause_table(args.kind, args.section, args.json)
    if args.command == "check":
        args.dtype = args.dtype or ["float32"]
        from transformer_spec.properties import loading

        try:
            return _check(args)
        finally:  # a mutant:NAME target swapped our modules for fresh ones: put them back
            loading.release_mutants()
    if args.command == "mutants":
        return _mutants(args)
    if args.command == "table":
        args.dtype = args.dtype or ["float32"]
        return _table(args)
    if args.steps < 1:
        print(f"transformer-spec copy-task: --steps {args.steps}: expected >= 1", file=sys.stderr)
        return 2
    return _copy_task(args.steps, args.seed)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
