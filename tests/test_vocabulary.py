"""Tokens to ids: unknown units become <UNK>; batches are right-padded with <PAD>."""

import pytest
import torch
import transformer_spec.reference as R


def test_special_tokens_come_first_and_are_distinct() -> None:
    # spec: EMB-SPECIAL-TOKENS
    vocab = R.Vocabulary(["the", "cat", "sat"])
    assert vocab.decode([0, 1, 2, 3]) == ["<PAD>", "<START>", "<END>", "<UNK>"]
    assert len(vocab) == 7


def test_unknown_units_become_unk() -> None:
    vocab = R.Vocabulary(["Qian", "kill", "you"])
    ids = vocab.encode("you kill Bob", start=True, end=True)
    assert vocab.decode(ids) == ["<START>", "you", "kill", "<UNK>", "<END>"]


def test_pad_batch_keeps_every_sequence_and_pads_on_the_right() -> None:
    vocab = R.Vocabulary(["a", "b", "c"])
    batch = vocab.pad_batch([vocab.encode("a b c"), vocab.encode("c")])
    assert batch.tolist() == [[4, 5, 6], [6, 0, 0]]
    assert batch.dtype == torch.long


def test_units_take_ids_after_the_largest_special_id_in_order() -> None:
    # Gaps below a special id are not filled: ids stay stable whatever the special tokens.
    vocab = R.Vocabulary(["a", "b", "a", "c"], special=R.SpecialTokens(unk=9))
    assert vocab.encode("a b c") == [10, 11, 12] and len(vocab) == 13
    assert vocab.encode(["a", "c"]) == vocab.encode("a c")  # pre-split units
    assert vocab.decode([5, 99, 10]) == ["<UNK>", "<UNK>", "a"]  # an id with no unit


def test_pad_batch_refuses_empty_input() -> None:
    with pytest.raises(ValueError, match=r"^sequences: expected at least one sequence"):
        R.Vocabulary([]).pad_batch([[]])


def test_pad_batch_puts_the_batch_on_the_device_asked_for() -> None:
    vocab = R.Vocabulary(["a", "b"])
    batch = vocab.pad_batch([vocab.encode("a b"), vocab.encode("b")], device="meta")
    assert batch.device.type == "meta" and batch.dtype == torch.long
