"""`transformer-spec merge`: table or check JSON reports joined into one table."""

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import _options
from .._options import UsageError

if TYPE_CHECKING:
    pass
from ._shared import _usage, _write


def _boards(paths: list[str]) -> list[dict[str, Any]] | None:
    """The reports' JSON when every one is a board, None when none is; UsageError for a
    mix or a report that cannot be read."""
    data = []
    for path in paths:
        try:
            data.append(json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, ValueError):
            return None  # the table merge says what is wrong with it
    kinds = {isinstance(d, dict) and "board" in d for d in data}
    if kinds == {True}:
        return data
    if kinds == {False}:
        return None
    raise UsageError("a board and a table cannot be merged together")


def _merge_boards(args: argparse.Namespace, reports: list[dict[str, Any]]) -> int:
    from transformer_spec.properties.reports import board as B

    try:
        rows, settings = B.merge(reports)
        if args.known_failures:
            from transformer_spec.properties.harness.known import load_known_failures

            B.judge(rows, load_known_failures(args.known_failures), str(settings["dtype"]))
    except (ValueError, UsageError) as err:
        return _usage("merge", err)
    header = f"Merged by `transformer-spec merge` from {len(reports)} boards: " + " ".join(
        str(r.get("header", "")) for r in reports[:1]
    )
    text = B.render_markdown(rows, header)
    written = _write(args.markdown, lambda: text)
    written &= _write(args.json, lambda: B.to_json(rows, {**settings, "header": header}))
    print(text)
    failed = [r.architecture for r in rows if r.verdict == B.FAIL]
    return 1 if failed else (0 if written else 2)


def run(args: argparse.Namespace) -> int:
    """Exit 0 when no merged cell has an unexplained failure, 1 when one has, 2 for bad
    input (a report that cannot be read, or two reports that disagree on a cell). Shards of
    a board (`transformer-spec board --shard I/N --json ...`) merge into one board."""
    try:
        _options.reports(args.markdown, args.json)
        boards = _boards(args.reports)
        if boards is not None:
            return _merge_boards(args, boards)
        if args.known_failures:
            raise UsageError("--known-failures: only a board is judged again by merge")
        from transformer_spec.properties.reports import table as C

        merged = C.merge_reports([Path(r) for r in args.reports])
    except (UsageError, ValueError) as err:
        return _usage("merge", err)
    header = f"Merged by `transformer-spec merge` from: {'; '.join(merged.sources)}."
    text = C.render_markdown(merged.cells, header, merged.run, merged.descriptions)
    written = _write(args.markdown, lambda: text)
    written &= _write(args.json, merged.to_json)
    print(text)
    failed = sum(c.count("fail") for c in merged.cells)
    return 1 if failed else (0 if written else 2)
