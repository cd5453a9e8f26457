"""The encoder-decoder learns to copy: the classic first check of a from-scratch Transformer.
Its wall time is printed by `transformer-spec copy-task`, not asserted here."""

from transformer_spec.reference.copy_task import train_copy_task


def test_encoder_decoder_learns_the_copy_task() -> None:
    result = train_copy_task(length=10, n_symbols=10)
    assert result.accuracy >= 0.99, result
