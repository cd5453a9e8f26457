"""Multi-head attention: project, split into h heads of d_k = d_model / h, attend, concat,
then W^O (spec MHA-*).

Notation: b batch, h heads, q query length, k key length, d_model = h * d_k.
"""

from dataclasses import dataclass

import torch
from jaxtyping import Bool, Float
from torch import Tensor, nn

from .attention import fused_attention, scaled_dot_product_attention
from .config import AttentionPath, CausalAlignment
from .masks import causal_mask, combine_masks


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
    ) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model: {d_model} is not divisible by n_heads={n_heads}")
        if path not in ("math", "fused"):
            raise ValueError(f"path: {path!r} is not one of ['math', 'fused']")
        self.d_model, self.n_heads, self.d_k = d_model, n_heads, d_model // n_heads
        self.path: AttentionPath = path
        self.causal_alignment: CausalAlignment = causal_alignment
        # Row-stacked per-head matrices: W_Q[:, i*d_k:(i+1)*d_k] is head i's W_i^Q.
        self.W_Q = nn.Linear(d_model, d_model, bias=bias)
        self.W_K = nn.Linear(d_model, d_model, bias=bias)
        self.W_V = nn.Linear(d_model, d_model, bias=bias)
        self.W_O = nn.Linear(d_model, d_model, bias=bias)
        self.record_weights = False  # keep the last weights in `last_weights` (math path)
        self.last_weights: Tensor | None = None

    def split_heads(self, x: Float[Tensor, "b n d_model"]) -> Float[Tensor, "b h n d_k"]:
        b, n, _ = x.shape
        return x.view(b, n, self.n_heads, self.d_k).transpose(1, 2)

    def merge_heads(self, x: Float[Tensor, "b h n d_k"]) -> Float[Tensor, "b n d_model"]:
        b, _, n, _ = x.shape
        return x.transpose(1, 2).reshape(b, n, self.d_model)

    def _keys_values(
        self, x_kv: Tensor, cache: LayerCache | None, *, cross: bool
    ) -> tuple[Tensor, Tensor]:
        if cross and cache is not None and cache.k is not None and cache.v is not None:
            return cache.k, cache.v  # the encoder output does not change while decoding
        k, v = self.split_heads(self.W_K(x_kv)), self.split_heads(self.W_V(x_kv))
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
    ) -> tuple[Float[Tensor, "b q d_model"], Float[Tensor, "b h q kk"] | None]:
        """Self-attention when x_kv is None (X_query = X_key = X_value), else cross-attention.

        `mask` is boolean, True = may attend, broadcastable to (b, h, q, k_total) where
        k_total counts cached keys. `causal` adds the causal mask; with a cache the queries
        are the last positions, i.e. bottom-right alignment whatever `causal_alignment` says.
        """
        like = self.W_Q.weight
        check_features("x_query", x_query, self.d_model, like)
        cross = x_kv is not None
        if x_kv is not None:
            check_features("x_kv", x_kv, self.d_model, like)
        if need_weights and self.path == "fused":
            raise ValueError("need_weights: the fused path returns no weights; use path='math'")
        # 1) project and split into heads
        q = self.split_heads(self.W_Q(x_query))
        k, v = self._keys_values(x_kv if x_kv is not None else x_query, cache, cross=cross)
        # 2) attend, per head
        q_len, k_len = q.shape[-2], k.shape[-2]
        align = "bottom_right" if cache is not None else self.causal_alignment
        weights = None
        if (
            self.path == "fused"
            and mask is None
            and causal
            and (q_len == k_len or align == "top_left")
        ):
            z = fused_attention(q, k, v, is_causal=True)  # lets torch pick a causal kernel
        else:
            c = causal_mask(q_len, k_len, alignment=align, device=q.device) if causal else None
            full = combine_masks(mask, c)
            if self.path == "fused":
                z = fused_attention(q, k, v, mask=full)
            else:
                z, weights = scaled_dot_product_attention(q, k, v, mask=full)
        if self.record_weights:
            self.last_weights = weights
        # 3) concat heads (width h * d_k = d_model), 4) W^O maps back to d_model
        return self.W_O(self.merge_heads(z)), weights if need_weights else None
