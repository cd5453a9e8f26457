"""Boolean attention masks. Convention: True = this query may attend to this key
(the polarity of torch's scaled_dot_product_attention). A mask is applied as -inf on the
scores before the softmax (spec MASK-NEG-INF).

Notation: b batch, h heads, q query length, k key length.
"""

import torch
from jaxtyping import Bool, Int
from torch import Tensor

from .config import CausalAlignment


def causal_mask(
    q_len: int,
    k_len: int,
    *,
    alignment: CausalAlignment = "bottom_right",
    device: torch.device | str | None = None,
) -> Bool[Tensor, "q_len k_len"]:
    """Query i may see key j when j <= i + shift.

    top_left: shift = 0 (query i sees keys 0..i; torch SDPA's `is_causal`).
    bottom_right: shift = k_len - q_len, so the queries are the *last* q_len positions of the
    keys (FlashAttention >= 2.1 and every KV-cache decoder). Both agree when q_len == k_len.
    """
    if alignment not in ("top_left", "bottom_right"):
        raise ValueError(f"alignment: {alignment!r} is not one of ['top_left', 'bottom_right']")
    shift = k_len - q_len if alignment == "bottom_right" else 0
    i = torch.arange(q_len, device=device)[:, None]
    j = torch.arange(k_len, device=device)[None, :]
    return j <= i + shift


def distances(
    q_len: int, k_len: int, *, device: torch.device | str | None = None
) -> Int[Tensor, "q_len k_len"]:
    """How many positions key j lies before query i, with the queries the last q_len of the
    k_len keys (bottom-right, as while decoding with a cache): (k_len - q_len + i) - j.
    Negative for keys in the query's future."""
    i = torch.arange(q_len, device=device)[:, None] + (k_len - q_len)
    return i - torch.arange(k_len, device=device)[None, :]


def sliding_window_mask(
    q_len: int, k_len: int, window: int, *, device: torch.device | str | None = None
) -> Bool[Tensor, "q_len k_len"]:
    """Causal and local (Mistral; spec EXT-WINDOW-*): a query sees the `window` most recent
    keys, itself included, i.e. keys at distance 0 .. window - 1."""
    d = distances(q_len, k_len, device=device)
    return (d >= 0) & (d < window)


def keep_tokens(tokens: Int[Tensor, "b k"], pad: int) -> Bool[Tensor, "b k"]:
    """True at every real (non-<PAD>) token."""
    return tokens != pad


def padding_mask(keep: Bool[Tensor, "b k"]) -> Bool[Tensor, "b 1 1 k"]:
    """Key padding as an attention mask, broadcast over heads and queries."""
    return keep[:, None, None, :]


def combine_masks(*masks: Tensor | None) -> Tensor | None:
    """A key is visible only if every mask allows it (logical and, with broadcasting)."""
    present = [m for m in masks if m is not None]
    if not present:
        return None
    out = present[0]
    for m in present[1:]:
        out = out & m
    return out


def check_mask(mask: object, scores_shape: torch.Size, *, argument: str = "mask") -> None:
    """Raise TypeError/ValueError naming `argument` unless mask is a bool tensor that
    broadcasts to the scores' shape (..., q, k)."""
    if not isinstance(mask, Tensor):
        raise TypeError(f"{argument}: expected a bool Tensor, got {type(mask).__name__}")
    if mask.dtype != torch.bool:
        raise TypeError(
            f"{argument}: expected dtype torch.bool (True = may attend), got {mask.dtype}"
        )
    # Broadcasts when, aligned from the right, each mask dim is 1 or the scores' dim.
    fits = mask.dim() <= len(scores_shape) and all(
        m in (1, s) for m, s in zip(reversed(mask.shape), reversed(scores_shape), strict=False)
    )
    if not fits or mask.dim() < 2:
        raise ValueError(
            f"{argument}: shape {tuple(mask.shape)} does not broadcast to the scores' shape "
            f"{tuple(scores_shape)} (..., q_len, k_len)"
        )
