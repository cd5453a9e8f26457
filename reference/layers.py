"""Encoder and decoder layers and their stacks (spec ENC-*, DEC-*).

Encoder layer: self-attention, then feed-forward; two sublayers.
Decoder layer: causal self-attention, cross-attention over the encoder output, then
feed-forward; three sublayers (two for a decoder-only model, which has no encoder).
"""

from dataclasses import dataclass, field

from jaxtyping import Bool, Float
from torch import Tensor, nn

from .config import TransformerConfig
from .feedforward import FeedForward, GatedFeedForward, make_ffn
from .multihead import LayerCache, MultiHeadAttention, Rotary
from .norm import LayerNorm, Residual, RMSNorm, make_norm


def _attention(config: TransformerConfig, *, cross: bool = False) -> MultiHeadAttention:
    """Positions (rotary, ALiBi) and windows act in self-attention only: a cross-attention
    query and the encoder's keys have no common order."""
    c = config
    rotary = Rotary(c.rotary_pairing, float(c.rotary_base), c.rotary_dim)
    return MultiHeadAttention(
        c.d_model,
        c.n_heads,
        bias=c.bias,
        path=c.attention_path,
        n_kv_heads=c.n_kv_heads,
        rotary=rotary if c.positional == "rotary" and not cross else None,
        alibi=c.positional == "alibi" and not cross,
        window=None if cross else c.sliding_window,
    )


def _residual(config: TransformerConfig) -> Residual:
    return Residual(
        config.d_model,
        placement=config.norm,
        eps=config.layer_norm_eps,
        dropout=config.dropout,
        kind=config.norm_kind,
    )


def _final_norm(config: TransformerConfig) -> LayerNorm | RMSNorm | None:
    # Pre-LN leaves the residual sum unnormalised after the last layer, so the stack ends
    # with one more norm (GPT-2's ln_f); post-LN already ends on a norm.
    if config.norm != "pre":
        return None
    return make_norm(config.norm_kind, config.d_model, config.layer_norm_eps)


def _ffn(config: TransformerConfig) -> FeedForward | GatedFeedForward:
    d, d_ff = config.d_model, config.d_ff
    return make_ffn(config.ffn, d, d_ff, act=config.activation, bias=config.bias)


class EncoderLayer(nn.Module):
    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.self_attn = _attention(config)
        self.ffn = _ffn(config)
        self.sublayers = nn.ModuleList([_residual(config) for _ in range(2)])

    def forward(
        self, x: Float[Tensor, "b s d_model"], mask: Bool[Tensor, "b 1 1 s"] | None = None
    ) -> Float[Tensor, "b s d_model"]:
        # All-to-all attention: no causal mask in the encoder (ENC-NO-CAUSAL-MASK).
        x = self.sublayers[0](x, lambda y: self.self_attn(y, mask=mask)[0])
        out: Tensor = self.sublayers[1](x, self.ffn)
        return out


@dataclass
class DecoderLayerCache:
    self_attn: LayerCache = field(default_factory=LayerCache)
    cross_attn: LayerCache = field(default_factory=LayerCache)


class DecoderLayer(nn.Module):
    def __init__(self, config: TransformerConfig, *, cross_attention: bool = True) -> None:
        super().__init__()
        self.self_attn = _attention(config)
        self.cross_attn = _attention(config, cross=True) if cross_attention else None
        self.ffn = _ffn(config)
        self.sublayers = nn.ModuleList(
            [_residual(config) for _ in range(3 if cross_attention else 2)]
        )

    def forward(
        self,
        x: Float[Tensor, "b t d_model"],
        memory: Float[Tensor, "b s d_model"] | None = None,
        *,
        self_mask: Bool[Tensor, "b 1 1 tt"] | None = None,
        memory_mask: Bool[Tensor, "b 1 1 s"] | None = None,
        cache: DecoderLayerCache | None = None,
        offset: int = 0,
    ) -> Float[Tensor, "b t d_model"]:
        """`offset`: the position of x's first token (past the cache, for rotary)."""
        self_cache = cache.self_attn if cache is not None else None
        x = self.sublayers[0](
            x,
            lambda y: self.self_attn(
                y, mask=self_mask, causal=True, cache=self_cache, offset=offset
            )[0],
        )
        if self.cross_attn is not None:
            if memory is None:
                raise ValueError("memory: this decoder layer has cross-attention and needs it")
            cross, cross_cache = self.cross_attn, cache.cross_attn if cache is not None else None
            x = self.sublayers[1](
                x, lambda y: cross(y, memory, mask=memory_mask, cache=cross_cache)[0]
            )
        out: Tensor = self.sublayers[-1](x, self.ffn)
        return out


class Encoder(nn.Module):
    """N encoder layers, each reading the previous one's output."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList([EncoderLayer(config) for _ in range(config.n_encoder_layers)])
        self.final_norm = _final_norm(config)

    def forward(
        self, x: Float[Tensor, "b s d_model"], mask: Bool[Tensor, "b 1 1 s"] | None = None
    ) -> Float[Tensor, "b s d_model"]:
        for layer in self.layers:
            x = layer(x, mask)
        return self.final_norm(x) if self.final_norm is not None else x


class Decoder(nn.Module):
    def __init__(self, config: TransformerConfig, *, cross_attention: bool = True) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            [
                DecoderLayer(config, cross_attention=cross_attention)
                for _ in range(config.n_decoder_layers)
            ]
        )
        self.final_norm = _final_norm(config)

    def forward(
        self,
        x: Float[Tensor, "b t d_model"],
        memory: Float[Tensor, "b s d_model"] | None = None,
        *,
        self_mask: Bool[Tensor, "b 1 1 tt"] | None = None,
        memory_mask: Bool[Tensor, "b 1 1 s"] | None = None,
        cache: list[DecoderLayerCache] | None = None,
        offset: int = 0,
    ) -> Float[Tensor, "b t d_model"]:
        for i, layer in enumerate(self.layers):
            layer_cache = cache[i] if cache is not None else None
            x = layer(
                x,
                memory,
                self_mask=self_mask,
                memory_mask=memory_mask,
                cache=layer_cache,
                offset=offset,
            )
        return self.final_norm(x) if self.final_norm is not None else x
