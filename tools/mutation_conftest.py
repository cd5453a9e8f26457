"""conftest.py of the mutation run's staged tests (copied there by
`tools/mutation_report.py stage`).

The test command has three tiers, run in this order for each mutant (mutmut stops at the
first failure): the reference's bad-input tests (marked `unchecked`: they assert our own
error messages, so they run with the run-time shape checker off), then the property suite
(tests/test_suite.py), then the reference's other unit tests (its structure tests among
them). Within a tier the fastest items run first; the durations are mutmut's own, from its
stats run (mutmut-stats.json in the working folder). Bad-input tests go first because they
are the cheapest; the unit tests go after every property, so a mutant only a unit test kills
is one the properties miss, which the report lists.

Each mutant's first failing item is appended to killers.jsonl beside the tests folder, for
the report.
"""

import json
import os
from collections.abc import Generator
from pathlib import Path

os.environ["TRANSFORMER_SPEC_TYPECHECK"] = "0"  # before the reference is imported

import pytest
from pluggy import Result

# The project's tests/conftest.py, copied beside this file by `stage`; its unit tests import
# these names from `.conftest`.
from .project_conftest import (  # type: ignore[import-not-found]  # noqa: F401
    CHECKED,
    DEVICES,
    DTYPES,
    tiny_config,
)

KILLERS = Path(__file__).resolve().parents[1] / "killers.jsonl"
TIERS = ("bad input", "property", "unit test")


def tier(item: pytest.Item) -> str:
    if item.get_closest_marker("unchecked"):
        return "bad input"
    return "property" if item.nodeid.startswith("tests/test_suite.py") else "unit test"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    stats = Path("mutmut-stats.json")
    seconds = json.loads(stats.read_text())["duration_by_test"] if stats.exists() else {}
    items.sort(key=lambda i: (TIERS.index(tier(i)), float(seconds.get(i.nodeid, 0.0))))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Generator[None, Result[pytest.TestReport]]:
    outcome = yield
    mutant = os.environ.get("MUTANT_UNDER_TEST", "")
    if "__mutmut_" in mutant and outcome.get_result().failed:
        line = json.dumps({"mutant": mutant, "test": item.nodeid, "tier": tier(item)})
        with KILLERS.open("a") as out:  # one short line per write: appends do not interleave
            out.write(line + "\n")
