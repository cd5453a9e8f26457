"""String -> token -> token id: a fixed vocabulary with the special tokens (spec EMB-UNK,
EMB-PAD-LENGTH, EMB-SPECIAL-TOKENS). Nothing here is trained; only id -> vector is learned.

Tokens are whitespace-separated units by default; any pre-split sequence of strings works
(sub-words or characters just as well).
"""

from collections.abc import Iterable, Sequence

import torch
from jaxtyping import Int
from torch import Tensor

from .config import SpecialTokens

SPECIAL_NAMES = {"pad": "<PAD>", "start": "<START>", "end": "<END>", "unk": "<UNK>"}


class Vocabulary:
    def __init__(self, units: Iterable[str], *, special: SpecialTokens | None = None) -> None:
        self.special = special or SpecialTokens()
        ids = vars(self.special)
        size = max(ids.values()) + 1
        self.id_to_unit: dict[int, str] = {ids[name]: text for name, text in SPECIAL_NAMES.items()}
        self.unit_to_id: dict[str, int] = {text: i for i, text in self.id_to_unit.items()}
        for unit in units:
            if not isinstance(unit, str) or not unit:
                raise ValueError(f"units: expected non-empty strings, got {unit!r}")
            if unit not in self.unit_to_id:
                while size in self.id_to_unit:
                    size += 1
                self.unit_to_id[unit], self.id_to_unit[size] = size, unit
                size += 1

    def __len__(self) -> int:
        return max(self.id_to_unit) + 1

    def encode(
        self, text: str | Sequence[str], *, start: bool = False, end: bool = False
    ) -> list[int]:
        """Ids of the units; a unit not in the vocabulary becomes <UNK>."""
        units = text.split() if isinstance(text, str) else list(text)
        ids = [self.unit_to_id.get(u, self.special.unk) for u in units]
        return [self.special.start] * start + ids + [self.special.end] * end

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.id_to_unit.get(int(i), SPECIAL_NAMES["unk"]) for i in ids]

    def pad_batch(
        self, sequences: Sequence[Sequence[int]], *, device: torch.device | str | None = None
    ) -> Int[Tensor, "batch seq"]:
        """Right-pad with <PAD> to the longest sequence; every sequence keeps its tokens."""
        if not sequences or any(len(s) == 0 for s in sequences):
            raise ValueError("sequences: expected at least one sequence, none of them empty")
        width = max(len(s) for s in sequences)
        rows = [list(s) + [self.special.pad] * (width - len(s)) for s in sequences]
        return torch.tensor(rows, dtype=torch.long, device=device)
