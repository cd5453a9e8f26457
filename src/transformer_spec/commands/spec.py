"""`transformer-spec spec`: the spec's clauses, what checks each, and their sources."""

import argparse
from typing import TYPE_CHECKING

from .._options import UsageError

if TYPE_CHECKING:
    pass
from ._shared import _usage


def run(args: argparse.Namespace) -> int:
    from transformer_spec.properties.checks import checked_by
    from transformer_spec.spec import load_spec
    from transformer_spec.spec._cited import cited_by_tests

    from .. import _listing

    spec = load_spec(checked_by())
    known = [s.name for s in spec.sections]
    if args.section is not None and args.section not in known:
        return _usage("spec", UsageError(f"unknown section {args.section!r}; known: {known}"))
    clauses = [
        c for c in spec.clauses if args.kind in (None, c.kind) and args.section in (None, c.section)
    ]
    tests = cited_by_tests()
    if args.json:
        print(_listing.spec_json(spec, clauses, tests))
    else:
        print("\n".join(_listing.spec_text(spec, clauses, tests)))
    return 0
