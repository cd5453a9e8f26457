"""pytest plugin (entry point `pytest11`): options to choose the target and the cell.

    pytest --pyargs transformer_spec.properties --ts-target MODULE:FACTORY \
        --ts-device cpu --ts-dtype bfloat16 --ts-profile ci

Light at import: nothing but pytest is imported until the property tests are collected.
"""

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("transformer-spec", "transformer-spec conformance properties")
    group.addoption(
        "--ts-target",
        default="reference-math",
        help="MODULE:FACTORY or a built-in target (default reference-math)",
    )
    group.addoption("--ts-device", default="cpu", help="cpu, cuda or cuda:N")
    group.addoption("--ts-dtype", default="float32", help="float64, float32, bfloat16 or float16")
    group.addoption(
        "--ts-profile",
        default=None,
        choices=["quick", "ci", "thorough"],
        help="Hypothesis profile (default: ci when $CI is set, else quick)",
    )
    group.addoption("--ts-seed", default=None, type=int, help="Hypothesis seed")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "transformer_spec: a conformance property of transformer-spec"
    )
