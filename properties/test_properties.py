"""The properties as pytest tests, one per property, for the target and cell chosen with the
plugin's --ts-* options (see plugin.py).

Collected by `pytest --pyargs transformer_spec.properties`."""

import pytest
import torch
from transformer_spec.properties.loading import UsageError, load_target
from transformer_spec.properties.registry import Context, load_all
from transformer_spec.properties.runner import default_profile, default_seed, run_property
from transformer_spec.properties.tolerance import tolerance_for
from transformer_spec.reference.config import DTYPES, parse_device


@pytest.fixture(scope="session")
def ts_context(pytestconfig: pytest.Config) -> tuple[Context, str, int]:
    opt = pytestconfig.getoption
    try:
        target = load_target(str(opt("--ts-target")))
    except UsageError as err:
        raise pytest.UsageError(str(err)) from err
    dtype_name = str(opt("--ts-dtype"))
    if dtype_name not in DTYPES:
        raise pytest.UsageError(f"--ts-dtype {dtype_name!r}: expected one of {list(DTYPES)}")
    name = str(opt("--ts-device"))
    if name.startswith("cuda") and not torch.cuda.is_available():
        pytest.skip(f"--ts-device {name}: this machine has no CUDA device")
    try:
        device = parse_device(name, argument="--ts-device")
    except ValueError as err:
        raise pytest.UsageError(str(err)) from err
    dtype = DTYPES[dtype_name]
    profile = opt("--ts-profile") or default_profile()
    seed = opt("--ts-seed")
    ctx = Context(target=target, device=device, dtype=dtype, tolerance=tolerance_for(dtype, device))
    return ctx, str(profile), default_seed(str(profile)) if seed is None else int(seed)


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
