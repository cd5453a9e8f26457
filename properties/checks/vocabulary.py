"""String -> token -> id (spec EMB-UNK, EMB-PAD-LENGTH, EMB-TOKENIZER-FIXED).

Texts are made of the vocabulary's own units joined by its separator, with units it does
not know mixed in. An unknown unit is drawn from characters that occur in no known unit, so
it cannot be split into known pieces; with an empty separator (a character-level
vocabulary) it is a single character.
"""

from collections.abc import Sequence

import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import Tensor
from transformer_spec.properties.harness.guard import unwrap
from transformer_spec.properties.harness.registry import Check, Context, NotApplicable, prop
from transformer_spec.properties.targets.protocols import Vocabulary

# Characters for unknown units: Greek and Cyrillic letters (a vocabulary that knows them
# all leaves the property not applicable).
_FOREIGN = "αβγδεζηθλμπσφψωбгджзлфцчшщюя"


def _vocabulary(ctx: Context) -> Vocabulary:
    factory = ctx.target.vocabulary
    assert factory is not None  # guaranteed by needs=("vocabulary",)
    return factory()


def _strangers(vocab: Vocabulary) -> str:
    """Characters that occur in no known unit (nor in the separator)."""
    known = set("".join(vocab.units())) | set(vocab.separator)
    chars = "".join(c for c in _FOREIGN if c not in known)
    if not chars:
        raise NotApplicable("the vocabulary knows every character the harness uses as unknown")
    return chars


def _usable(unit: str, separator: str) -> bool:
    """Whether `unit` survives joining and splitting: no separator or whitespace inside it
    (a word-level vocabulary), or a single character (a character-level one)."""
    if separator:
        return bool(unit) and separator not in unit and not any(c.isspace() for c in unit)
    return len(unit) == 1


def _pieces(vocab: Vocabulary, strangers: str) -> st.SearchStrategy[list[tuple[str, bool]]]:
    """Units with a flag: (text, known)."""
    units = [u for u in vocab.units() if _usable(u, vocab.separator)]
    if not units:
        raise NotApplicable("the vocabulary lists no units")
    size = 1 if vocab.separator == "" else 4
    unknown = st.text(alphabet=strangers, min_size=1, max_size=size)
    piece = st.one_of(
        st.sampled_from(units).map(lambda u: (u, True)), unknown.map(lambda u: (u, False))
    )
    return st.lists(piece, min_size=1, max_size=8)


def _encode(vocab: Vocabulary, text: str) -> list[int]:
    ids = vocab.encode(text)
    if not (isinstance(ids, Sequence) and all(isinstance(i, int) for i in ids)):
        raise AssertionError(f"encode({text!r}) returned {ids!r}, expected a list of int ids")
    return list(ids)


@prop("vocabulary.unknown_units_become_unk", clauses=("EMB-UNK",), needs=("vocabulary",))
def unknown_units_become_unk(ctx: Context) -> Check:
    """A text of known and unknown units encodes to one id per unit, in order: the known
    unit's own id (as encoded alone), <UNK> for each unknown one; nothing dropped."""
    vocab = _vocabulary(ctx)

    @given(_pieces(vocab, _strangers(vocab)))
    def check(pieces: list[tuple[str, bool]]) -> None:
        vocab = _vocabulary(ctx)
        text = vocab.separator.join(u for u, _ in pieces)
        want = [_encode(vocab, u) if known else [vocab.unk_id] for u, known in pieces]
        for (unit, known), ids in zip(pieces, want, strict=True):
            if known and (len(ids) != 1 or ids[0] == vocab.unk_id):
                raise AssertionError(f"known unit {unit!r} encodes alone to {ids}")
        got = _encode(vocab, text)
        flat = [i for ids in want for i in ids]
        if got != flat:
            raise AssertionError(
                f"encode({text!r}) = {got}, expected {flat} (<UNK> = {vocab.unk_id} for "
                f"{[u for u, k in pieces if not k]})"
            )

    return check


@prop("vocabulary.pad_batch_keeps_tokens", clauses=("EMB-PAD-LENGTH",), needs=("vocabulary",))
def pad_batch_keeps_tokens(ctx: Context) -> Check:
    """pad_batch gives one row per sequence, all of one length >= the longest; each row is
    its sequence unchanged followed by <PAD> only."""
    vocab = _vocabulary(ctx)
    ids = sorted({i for u in vocab.units()[:50] for i in _encode(vocab, u)} - {vocab.pad_id})

    @given(st.lists(st.lists(st.sampled_from(ids), min_size=1, max_size=7), min_size=1, max_size=4))
    def check(sequences: list[list[int]]) -> None:
        batch = _vocabulary(ctx).pad_batch(sequences)
        if not (isinstance(batch, Tensor) and batch.dim() == 2 and not batch.is_floating_point()):
            got = tuple(batch.shape) if isinstance(batch, Tensor) else type(batch).__name__
            raise AssertionError(f"pad_batch returned {got}, expected an integer (batch, length)")
        longest = max(len(s) for s in sequences)
        if batch.shape[0] != len(sequences) or batch.shape[1] < longest:
            raise AssertionError(
                f"pad_batch of {len(sequences)} sequences (longest {longest}) has shape "
                f"{tuple(batch.shape)}"
            )
        for i, seq in enumerate(sequences):
            row = batch[i].tolist()
            want = seq + [vocab.pad_id] * (len(row) - len(seq))
            if row != want:
                raise AssertionError(f"pad_batch row {i} is {row}, expected {want} from {seq}")

    return check


@prop("vocabulary.encoding_is_fixed", clauses=("EMB-TOKENIZER-FIXED",), needs=("vocabulary",))
def encoding_is_fixed(ctx: Context) -> Check:
    """The ids of a text do not depend on what was encoded before (the tokeniser learns
    nothing while it is used), and the vocabulary holds no trainable tensors."""
    vocab = _vocabulary(ctx)
    strangers = _strangers(vocab)

    @given(_pieces(vocab, strangers), st.lists(_pieces(vocab, strangers), min_size=1, max_size=5))
    def check(pieces: list[tuple[str, bool]], others: list[list[tuple[str, bool]]]) -> None:
        vocab = _vocabulary(ctx)
        own = unwrap(vocab)  # the target's object, not the guard's view of it
        if isinstance(own, torch.nn.Module):
            names = [n for n, p in own.named_parameters() if p.requires_grad]
            if names:
                raise AssertionError(f"the vocabulary has trainable parameters {names}")
        join = vocab.separator.join
        text = join(u for u, _ in pieces)
        before = _encode(vocab, text)
        for other in others:
            _encode(vocab, join(u for u, _ in other))
        after = _encode(vocab, text)
        if after != before:
            raise AssertionError(
                f"encode({text!r}) gave {before}, then {after} after encoding other texts"
            )

    return check
