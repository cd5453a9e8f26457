"""Rotary position embedding (Su et al. 2021, RoFormer; spec EXT-ROPE-*): each pair of a
query's or key's channels is rotated by the angle position * base^(-2i / rotary_dim), so
that q_m . k_n depends on the offset m - n only.

Pairing: "half_split" rotates channel i with channel i + rotary_dim / 2 (GPT-NeoX, Hugging
Face Llama's rotate_half); "interleaved" rotates channels 2i and 2i + 1 (RoFormer, GPT-J,
Meta's Llama). Channels from rotary_dim on are left as they are (partial rotary)."""

from typing import Literal

import torch
from jaxtyping import Float, Int
from torch import Tensor

RotaryPairing = Literal["half_split", "interleaved"]


def rotary_angles(
    positions: Int[Tensor, " t"], rotary_dim: int, base: float = 10000.0
) -> Float[Tensor, "t half"]:
    """Float64 angles position * base^(-2i / rotary_dim), i < rotary_dim / 2."""
    i = torch.arange(rotary_dim // 2, dtype=torch.float64, device=positions.device)
    inv_freq = base ** (-2.0 * i / rotary_dim)
    return positions.to(torch.float64)[:, None] * inv_freq[None, :]


def apply_rotary(
    x: Float[Tensor, "*batch t d"],
    positions: Int[Tensor, " t"],
    *,
    pairing: RotaryPairing = "half_split",
    base: float = 10000.0,
    rotary_dim: int | None = None,
) -> Float[Tensor, "*batch t d"]:
    d = x.shape[-1]
    r = d if rotary_dim is None else rotary_dim
    if r % 2 or not 0 < r <= d:
        raise ValueError(f"rotary_dim: {r} must be even and in 1..{d}")
    angles = rotary_angles(positions, r, base)
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    rot, rest = x[..., :r], x[..., r:]
    if pairing == "half_split":
        a, b = rot[..., : r // 2], rot[..., r // 2 :]
        turned = torch.cat([a * cos - b * sin, b * cos + a * sin], dim=-1)
    elif pairing == "interleaved":
        a, b = rot[..., 0::2], rot[..., 1::2]
        turned = torch.stack([a * cos - b * sin, b * cos + a * sin], dim=-1).flatten(-2)
    else:
        raise ValueError(f"pairing: {pairing!r} is not one of ['half_split', 'interleaved']")
    return torch.cat([turned, rest], dim=-1)
