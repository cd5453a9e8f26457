"""The properties as pytest tests, one per property, for the target and cell chosen with the
plugin's --ts-* options (see plugin.py).

Collected by `pytest --pyargs transformer_spec.properties`."""

import pytest
from transformer_spec.properties.plugin import CELL
from transformer_spec.properties.registry import Context, load_all
from transformer_spec.properties.runner import run_property


@pytest.fixture(scope="session")
def ts_context(pytestconfig: pytest.Config) -> tuple[Context, str, int]:
    """The cell the --ts-* options chose (checked once, at collection, by the plugin)."""
    cell = pytestconfig.stash.get(CELL, None)
    if cell is None:
        raise pytest.UsageError("the transformer-spec pytest plugin is not active")
    if isinstance(cell, str):
        pytest.skip(cell)
    ctx, profile, seed = cell
    return ctx, profile, seed


@pytest.mark.transformer_spec
@pytest.mark.parametrize("property_id", sorted(load_all()))
def test_property(property_id: str, ts_context: tuple[Context, str, int]) -> None:
    ctx, profile, seed = ts_context
    result = run_property(load_all()[property_id], ctx, profile=profile, seed=seed)
    if result.outcome == "not_applicable":
        pytest.skip(f"not applicable: {result.reason}")
    if result.outcome == "fail":
        pytest.fail(
            f"{property_id} ({', '.join(result.clauses)})\n{result.message}\n"
            f"{result.counterexample}\nseed {seed}, profile {profile}",
            pytrace=False,
        )
