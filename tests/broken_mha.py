"""Broken multi-head attention targets (see broken_targets.py for the pattern)."""

MUTANTS: dict[str, tuple[str, ...]] = {}
