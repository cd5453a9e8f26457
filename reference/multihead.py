"""Multi-head attention: project, split into h heads of d_k = d_model / h, attend, concat,
then W^O (spec MHA-*).

Beyond the notes, self-attention can also (spec EXT-*):
- share each key/value head among a group of query heads (grouped-query attention; one
  key/value head is multi-query attention);
- rotate queries and keys by their positions (rotary);
- add ALiBi's linear distance penalty;
- see only a sliding window of recent keys.

Notation: b batch, h heads, g key/value heads, q query length, k key length,
d_model = h * d_k.
"""

from dataclasses import dataclass

import torch
from jaxtyping import Bool, Float
from torch import Tensor, nn

from .alibi import alibi_bias
from .attention import fused_attention, scaled_dot_product_attention
from .config import AttentionPath, CausalAlignment, RotaryPairing
from .masks import causal_mask, combine_masks, sliding_window_mask
from .rotary import apply_rotary


@dataclass(frozen=True)
class Rotary:
    """Rotary settings of one attention sublayer (EXT-ROPE-FORMULA)."""

    pairing: RotaryPairing = "half_split"
    base: float = 10000.0
    dim: int | None = None  # None: every channel of a head


@dataclass
class LayerCache:
    """Keys and values of one attention sublayer, kept across decoding steps.

    Self-attention appends the new step's keys and values; cross-attention computes them
    once from the encoder output and reuses them (spec GEN-CACHE-EQUALS-FULL).
    """

    k: Tensor | None = None
    v: Tensor | None = None

    @property
    def length(self) -> int:
        return 0 if self.k is None else self.k.shape[-2]


def check_features(name: str, x: object, d_model: int, like: Tensor) -> None:
    """Caller mistakes on a (batch, seq, d_model) input, named by argument."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected a Tensor, got {type(x).__name__}")
    if x.dim() != 3 or x.shape[-1] != d_model:
        raise ValueError(f"{name}: expected shape (batch, seq, {d_model}), got {tuple(x.shape)}")
    if x.dtype != like.dtype:
        raise TypeError(f"{name}: dtype {x.dtype} differs from the module's {like.dtype}")
    if x.device != like.device:
        raise ValueError(f"{name}: on {x.device} but the module is on {like.device}")


class MultiHeadAttention(nn.Module):
    def __init__(
        self,
        d_model: int,
        n_heads: int,
        *,
        bias: bool = True,
        path: AttentionPath = "math",
        causal_alignment: CausalAlignment = "bottom_right",
        n_kv_heads: int | None = None,
        rotary: Rotary | None = None,
        alibi: bool = False,
        window: int | None = None,
    ) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model: {d_model} is not divisible by n_heads={n_heads}")
        if path not in ("math", "fused"):
            raise ValueError(f"path: {path!r} is not one of ['math', 'fused']")
        n_kv = n_heads if n_kv_heads is None else n_kv_heads
        if n_kv < 1 or n_heads % n_kv:
            raise ValueError(f"n_kv_heads: {n_kv_heads} does not divide n_heads={n_heads}")
        if window is not None and window < 1:
            raise ValueError(f"window: expected >= 1 keys, got {window}")
        self.d_model, self.n_heads, self.d_k = d_model, n_heads, d_model // n_heads
        self.n_kv_heads, self.group = n_kv, n_heads // n_kv
        self.rotary, self.alibi, self.window = rotary, alibi, window
        self.path: AttentionPath = path
        self.causal_alignment: CausalAlignment = causal_alignment
        # Row-stacked per-head matrices: W_Q[:, i*d_k:(i+1)*d_k] is head i's W_i^Q; W_K and
        # W_V hold the g key/value heads, head j serving query heads j*group .. (j+1)*group-1.
        self.W_Q = nn.Linear(d_model, d_model, bias=bias)
        self.W_K = nn.Linear(d_model, n_kv * self.d_k, bias=bias)
        self.W_V = nn.Linear(d_model, n_kv * self.d_k, bias=bias)
        self.W_O = nn.Linear(d_model, d_model, bias=bias)
        self.record_weights = False  # keep the last weights in `last_weights` (math path)
        self.last_weights: Tensor | None = None

    def split_heads(self, x: Float[Tensor, "b n width"]) -> Float[Tensor, "b heads n d_k"]:
        b, n, width = x.shape
        return x.view(b, n, width // self.d_k, self.d_k).transpose(1, 2)

    def share(self, kv: Float[Tensor, "b g n d_k"]) -> Float[Tensor, "b h n d_k"]:
        """Each key/value head repeated for the consecutive query heads of its group."""
        return kv.repeat_interleave(self.group, dim=1)

    def turn(self, x: Float[Tensor, "b heads n d_k"], offset: int) -> Tensor:
        """Rotary positions offset .. offset + n - 1 (unchanged without rotary)."""
        if self.rotary is None:
            return x
        positions = torch.arange(offset, offset + x.shape[-2], device=x.device)
        r = self.rotary
        return apply_rotary(x, positions, pairing=r.pairing, base=r.base, rotary_dim=r.dim)

    def merge_heads(self, x: Float[Tensor, "b h n d_k"]) -> Float[Tensor, "b n d_model"]:
        b, _, n, _ = x.shape
        return x.transpose(1, 2).reshape(b, n, self.d_model)

    def _keys_values(
        self, x_kv: Tensor, cache: LayerCache | None, *, cross: bool, offset: int
    ) -> tuple[Tensor, Tensor]:
        if cross and cache is not None and cache.k is not None and cache.v is not None:
            return cache.k, cache.v  # the encoder output does not change while decoding
        k = self.split_heads(self.W_K(x_kv))
        k, v = (k if cross else self.turn(k, offset)), self.split_heads(self.W_V(x_kv))
        if cache is not None:
            if not cross and cache.k is not None and cache.v is not None:
                # Read the past first, then write past + new: the step sees its own key.
                k, v = torch.cat([cache.k, k], dim=-2), torch.cat([cache.v, v], dim=-2)
            cache.k, cache.v = k, v
        return k, v

    def forward(
        self,
        x_query: Float[Tensor, "b q d_model"],
        x_kv: Float[Tensor, "b k d_model"] | None = None,
        *,
        mask: Bool[Tensor, "*#mbatch #q kk"] | None = None,
        causal: bool = False,
        cache: LayerCache | None = None,
        need_weights: bool = False,
        offset: int = 0,
    ) -> tuple[Float[Tensor, "b q d_model"], Float[Tensor, "b h q kk"] | None]:
        """Self-attention when x_kv is None (X_query = X_key = X_value), else cross-attention.

        `mask` is boolean, True = may attend, broadcastable to (b, h, q, k_total) where
        k_total counts cached keys. `causal` adds the causal mask; with a cache the queries
        are the last positions, i.e. bottom-right alignment whatever `causal_alignment` says.
        `offset` is the position of the first query (rotary positions only: ALiBi and the
        window measure distances, which no offset changes).
        """
        like = self.W_Q.weight
        check_features("x_query", x_query, self.d_model, like)
        cross = x_kv is not None
        if x_kv is not None:
            check_features("x_kv", x_kv, self.d_model, like)
        if need_weights and self.path == "fused":
            raise ValueError("need_weights: the fused path returns no weights; use path='math'")
        if cross and (self.rotary is not None or self.alibi or self.window is not None):
            raise ValueError("x_kv: rotary, ALiBi and windows apply to self-attention only")
        # 1) project and split into heads (rotated by position, with rotary)
        q = self.split_heads(self.W_Q(x_query))
        q = q if cross else self.turn(q, offset)
        x_kv = x_kv if x_kv is not None else x_query
        k, v = self._keys_values(x_kv, cache, cross=cross, offset=offset)
        k, v = self.share(k), self.share(v)
        # 2) attend, per head
        q_len, k_len = q.shape[-2], k.shape[-2]
        weights = None
        bias = alibi_bias(self.n_heads, q_len, k_len, device=q.device) if self.alibi else None
        plain = self._plain_causal(causal, q_len, k_len, cache)
        if self.path == "fused" and mask is None and bias is None and plain:
            z = fused_attention(q, k, v, is_causal=True)  # lets torch pick a causal kernel
        else:
            full = combine_masks(mask, self._causal(causal, q_len, k_len, cache, q.device))
            if self.path == "fused":
                z = fused_attention(q, k, v, mask=full, bias=bias)
            else:
                z, weights = scaled_dot_product_attention(q, k, v, mask=full, bias=bias)
        if self.record_weights:
            self.last_weights = weights
        # 3) concat heads (width h * d_k = d_model), 4) W^O maps back to d_model
        return self.W_O(self.merge_heads(z)), weights if need_weights else None

    def _plain_causal(self, causal: bool, q_len: int, k_len: int, cache: LayerCache | None) -> bool:
        """Whether SDPA's own (top-left) causal flag is this call's whole mask."""
        align = "bottom_right" if cache is not None else self.causal_alignment
        return causal and self.window is None and (q_len == k_len or align == "top_left")

    def _causal(
        self, causal: bool, q_len: int, k_len: int, cache: LayerCache | None, device: torch.device
    ) -> Tensor | None:
        if not causal:
            return None
        if self.window is not None:  # the window's distances are bottom-right
            return sliding_window_mask(q_len, k_len, self.window, device=device)
        align = "bottom_right" if cache is not None else self.causal_alignment
        return causal_mask(q_len, k_len, alignment=align, device=device)
