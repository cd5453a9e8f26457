"""The harness core: the property registry and its strategies, the runner and the guard
every call into a target goes through, tolerances and comparisons, the Plan of a run and the
pytest session that executes it (with the plugin one folder up)."""
