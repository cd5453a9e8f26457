"""labml-nn's annotated Transformer parts (0.5.1) through `layer_target` and
`components_target`: the pre-norm `TransformerLayer` (sequence first, keyword `x=` and
`mask=` of axes (queries, keys, batch), True = may attend) as an encoder layer and as a
decoder-only layer (the causal triangle folded into its mask), and the `FeedForward` and
`Generator` (un-embedding) components.

    transformer-spec check docs.public.labml_parts:encoder docs.public.labml_parts:parts

Install: pip install -c constraints.txt --no-deps labml-nn "labml==0.4.168"
"""

from labml_nn.transformers.feed_forward import FeedForward  # type: ignore[import-untyped]
from labml_nn.transformers.mha import MultiHeadAttention  # type: ignore[import-untyped]
from labml_nn.transformers.models import Generator, TransformerLayer  # type: ignore[import-untyped]
from torch import nn
from transformer_spec.properties import Call, Conventions, Target, components_target, layer_target


def layer(d: int, h: int, d_ff: int) -> nn.Module:
    return TransformerLayer(
        d_model=d,
        self_attn=MultiHeadAttention(h, d, 0.0),
        feed_forward=FeedForward(d, d_ff, 0.0),
        dropout_prob=0.0,
    )


CALL = Call(
    x="x", mask="mask", mask_shape="q k b", mask_required=True, causal="mask", layout="l b d"
)
NAN = Conventions(
    fully_masked_row="nan", explanations={"fully_masked_row": "softmax over a row of -inf: NaN"}
)


def encoder() -> Target:
    return layer_target(
        "labml-encoder-layer",
        layer,
        call=CALL,
        kind="encoder",
        norm="pre",
        zero=("self_attn.output", "feed_forward.layer2"),
        conventions=NAN,
    )


def decoder_only() -> Target:
    return layer_target(
        "labml-decoder-only-layer",
        layer,
        call=CALL,
        kind="decoder_only",
        norm="pre",
        zero=("self_attn.output", "feed_forward.layer2"),
        conventions=NAN,
    )


def parts() -> Target:
    return components_target(
        "labml-parts",
        feed_forward=lambda d, d_ff: FeedForward(d, d_ff, 0.0),
        unembed=lambda d, v: Generator(v, d),
    )
