"""Broken component targets (see broken_targets.py for the pattern)."""

MUTANTS: dict[str, tuple[str, ...]] = {}
