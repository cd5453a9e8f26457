"""bert-pytorch's `TransformerBlock` (0.0.1a4) through `layer_target`: pre-norm, one mask
broadcast to (b, h, q, k) where 0 blocks, and its own LayerNorm (unbiased standard
deviation, eps added to it, as the Annotated Transformer's).

    transformer-spec check docs.public.bert_layer:encoder

Install: pip install -c constraints.txt bert-pytorch
"""

from bert_pytorch.model.transformer import TransformerBlock  # type: ignore[import-untyped]
from transformer_spec.properties import Call, Conventions, Target, layer_target

LN = Conventions(
    layer_norm_variance="unbiased",
    layer_norm_eps="outside_sqrt",
    explanations={
        "layer_norm_variance": "x.std() (unbiased)",
        "layer_norm_eps": "(x - mean) / (std + eps)",
    },
)
CALL = Call(x=0, mask="mask", mask_shape="b 1 q k", mask_required=True)


def encoder() -> Target:
    return layer_target(
        "bert-layer",
        lambda d, h, d_ff: TransformerBlock(d, h, d_ff, dropout=0.0),
        call=CALL,
        kind="encoder",
        norm="pre",
        zero=("attention.output_linear", "feed_forward.w_2"),
        conventions=LN,
    )
