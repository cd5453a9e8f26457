"""x-transformers' parts (2.31.10) through `layer_target` and `components_target`: a
one-layer `Encoder` (pre-norm, its final norm off; key padding `mask=` (b, k) True = may
attend, which also zeroes the padded queries' attention output) and the `TokenEmbedding`,
`AbsolutePositionalEmbedding` (a learned table), `LayerNorm` (a gain, no bias) and
`FeedForward` (GELU) components.

    transformer-spec check docs.public.x_transformers_parts:parts

Install: pip install -c constraints.txt x-transformers
"""

from torch import nn
from transformer_spec.properties import Call, Target, components_target, layer_target
from x_transformers.x_transformers import (
    AbsolutePositionalEmbedding,
    Encoder,
    FeedForward,
    LayerNorm,
    TokenEmbedding,
)  # type: ignore[import-untyped]


def layer(d: int, h: int, d_ff: int) -> nn.Module:
    return Encoder(
        dim=d,
        depth=1,
        heads=h,
        attn_dim_head=d // h,
        ff_mult=d_ff // d,
        pre_norm_has_final_norm=False,
    )


def encoder() -> Target:
    return layer_target(
        "x-transformers-encoder-layer",
        layer,
        call=Call(x=0, padding="mask"),
        kind="encoder",
        norm="pre",
        zero=("layers.0.1.to_out", "layers.1.1.ff.2"),
    )


def parts() -> Target:
    return components_target(
        "x-transformers-parts",
        embedding=lambda v, d: TokenEmbedding(d, v),
        positional=lambda n, d: AbsolutePositionalEmbedding(d, n),
        positional_layout="learned",
        norm=LayerNorm,
        norm_params=("gamma", None),
        feed_forward=lambda d, d_ff: FeedForward(d, mult=d_ff // d),
    )
