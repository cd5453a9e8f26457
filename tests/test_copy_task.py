"""The encoder-decoder learns to copy: the classic first check of a from-scratch Transformer.
Its wall time is printed by `transformer-spec copy-task`, not asserted here."""

from typing import Any

import pytest
import torch
from transformer_spec.reference.copy_task import train_copy_task


@pytest.mark.slow
def test_encoder_decoder_learns_the_copy_task() -> None:
    # One thread: with the cores busy (nox -s slow, CI), torch's own
    # threads wait on each other (16 s alone took 276 s beside the kill matrix).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = train_copy_task(length=10, n_symbols=10)
    finally:
        torch.set_num_threads(threads)
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
