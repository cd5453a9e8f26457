"""The encoder-decoder learns to copy: the classic first check of a from-scratch Transformer.
Its wall time is printed by `transformer-spec copy-task`, not asserted here."""

from typing import Any

import pytest
from transformer_spec.reference.copy_task import train_copy_task


@pytest.mark.slow
def test_encoder_decoder_learns_the_copy_task() -> None:
    result = train_copy_task(length=10, n_symbols=10)
    assert result.accuracy >= 0.99, result


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"steps": 0}, "steps, batch: need >= 1 each, got 0, 64"),
        ({"batch": 0}, "steps, batch: need >= 1 each, got 500, 0"),
        ({"n_symbols": 1}, "need >= 2 symbols"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        train_copy_task(**kwargs)
