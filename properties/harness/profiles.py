"""The run's defaults, light enough to read before torch is imported (the Plan, the pytest
plugin at start-up): the Hypothesis profiles, how a profile and seed are chosen, the dtype
names and the per-call time limit."""

import os
import random

DEFAULT_CALL_TIMEOUT = 60.0  # seconds: the harness's shapes are tiny, a call takes ms
# The reference's dtype names (reference.config.DTYPES; a test keeps them the same).
DTYPE_WORDS = ("float64", "float32", "bfloat16", "float16")
DEVICE_WORDS = ("cpu", "cuda")

PROFILES: dict[str, dict[str, object]] = {
    "quick": {"max_examples": 10},
    "ci": {"max_examples": 25},
    "thorough": {"max_examples": 200},
}


def default_profile() -> str:
    return "ci" if os.environ.get("CI") else "quick"


def default_seed(profile: str) -> int:
    """0 under ci (the same run every time), else a fresh one (reported with each result)."""
    return 0 if profile == "ci" else random.randrange(2**32)
