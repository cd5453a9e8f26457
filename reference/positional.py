"""Positional encodings, added to the token embeddings (spec PE-*).

Two sinusoid layouts are in the notes and both are provided:
- interleaved (the paper's formula): PE[pos, 2i] = sin(pos / 10000^(2i/d_model)),
  PE[pos, 2i+1] = cos(pos / 10000^(2i/d_model));
- concatenated (tensor2tensor's get_timing_signal_1d, quoted in the notes): [sin | cos]
  over n = channels // 2 geometric timescales from 1 to 10^4, i.e. 1/10000^(i/(n-1)),
  with one zero channel padded when channels is odd.
Tables are computed in float64 and cast once, so every dtype gets the best rounding.
"""

import math

import torch
from jaxtyping import Float
from torch import Tensor, nn

from .config import Positional


def sinusoidal_interleaved(
    n_positions: int, d_model: int, *, base: float = 10000.0, start: int = 0
) -> Float[Tensor, "n_positions d_model"]:
    pos = torch.arange(start, start + n_positions, dtype=torch.float64)[:, None]
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)  # 2i for each pair
    angle = pos / base ** (two_i / d_model)
    pe = torch.zeros(n_positions, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle[:, : d_model // 2])  # an odd width ends on a sin channel
    return pe


def sinusoidal_concat(
    length: int,
    channels: int,
    *,
    min_timescale: float = 1.0,
    max_timescale: float = 1.0e4,
    start_index: int = 0,
) -> Float[Tensor, "length channels"]:
    n = channels // 2
    if n < 2:
        raise ValueError(f"channels: the concatenated layout needs channels >= 4, got {channels}")
    pos = torch.arange(start_index, start_index + length, dtype=torch.float64)[:, None]
    log_step = math.log(max_timescale / min_timescale) / (n - 1)
    inv_timescales = min_timescale * torch.exp(torch.arange(n, dtype=torch.float64) * -log_step)
    scaled = pos * inv_timescales[None, :]
    signal = torch.cat([torch.sin(scaled), torch.cos(scaled)], dim=1)
    return torch.nn.functional.pad(signal, (0, channels % 2))


class PositionalEncoding(nn.Module):
    """Adds PE[offset : offset + seq] to x; `offset` is the number of positions already
    decoded when a key/value cache is used."""

    def __init__(
        self,
        kind: Positional,
        max_len: int,
        d_model: int,
    ) -> None:
        super().__init__()
        self.kind = kind
        self.max_len = max_len
        self.table: Tensor | None
        if kind == "learned":
            self.table = nn.Parameter(torch.empty(max_len, d_model))
            nn.init.normal_(self.table, std=0.01)
        elif kind in ("none", "rotary", "alibi"):  # no table: attention sees the positions
            self.table = None
        else:
            make = sinusoidal_interleaved if kind == "sinusoidal" else sinusoidal_concat
            # float64 until the model is cast: forward casts to x's dtype, once rounded.
            self.register_buffer("table", make(max_len, d_model), persistent=False)

    def forward(
        self, x: Float[Tensor, "batch seq d_model"], offset: int = 0
    ) -> Float[Tensor, "batch seq d_model"]:
        if self.table is None:
            return x
        seq = x.shape[1]
        if offset + seq > self.max_len:
            raise ValueError(
                f"positions: {offset + seq} positions asked for but the table has max_len="
                f"{self.max_len}"
            )
        return x + self.table[offset : offset + seq].to(x.dtype)
