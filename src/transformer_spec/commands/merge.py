"""`transformer-spec merge`: table or check JSON reports joined into one table."""

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from .. import _options
from .._options import UsageError

if TYPE_CHECKING:
    pass
from ._shared import _usage, _write


def run(args: argparse.Namespace) -> int:
    """Exit 0 when no merged cell has an unexplained failure, 1 when one has, 2 for bad
    input (a report that cannot be read, or two reports that disagree on a cell)."""
    try:
        _options.common_reports(args.markdown, args.json)
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
