"""conftest.py of the mutation run's staged tests (copied there by
`tools/mutation_report.py stage`): the fastest items first. mutmut runs a mutant's items with
-x, so a killed mutant costs only the items before its first failure; the durations are
mutmut's own, measured in its stats run (mutants/mutmut-stats.json, the working folder)."""

import json
from pathlib import Path

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    stats = Path("mutmut-stats.json")
    if stats.exists():
        seconds = json.loads(stats.read_text())["duration_by_test"]
        items.sort(key=lambda item: float(seconds.get(item.nodeid, 0.0)))
