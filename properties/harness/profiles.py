"""The Hypothesis profiles and their defaults, light enough for the pytest plugin to read at
start-up (no torch): every caller resolves the profile and seed the same way."""

import os
import random

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
