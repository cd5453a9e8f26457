"""Clauses and properties point at each other: every property cites checkable clauses, and
every `property` clause is checked by a property, or is listed in PENDING (the harness is
being built clause by clause; a property that lands must take its clause off this list)."""

from transformer_spec.properties.checks import checked_by, load_all
from transformer_spec.spec import load_spec

PENDING: set[str] = set()


def test_every_property_cites_existing_checkable_clauses() -> None:
    kinds = {c.id: c.kind for c in load_spec().clauses}
    bad = [
        (p.id, c)
        for p in load_all().values()
        for c in p.clauses
        if kinds.get(c) not in ("property", "structure")
    ]
    assert not bad


def test_every_property_clause_is_checked_or_pending() -> None:
    spec = load_spec(checked_by())
    unchecked = {c.id for c in spec.clauses if c.kind == "property" and not c.properties}
    assert unchecked == PENDING, (
        f"newly checked (remove from PENDING): {sorted(PENDING - unchecked)}; "
        f"unchecked and not pending: {sorted(unchecked - PENDING)}"
    )


def test_spec_command_lists_the_properties_of_a_clause() -> None:
    spec = load_spec(checked_by())
    assert "masking.causal_no_future_leak" in spec.clause("MASK-CAUSAL-NO-LEAK").properties
