"""torchscale's `MultiheadAttention` (0.3.0) through `multihead_target`: positional query,
key, value; `key_padding_mask` (b, k) True = padding; an additive `attn_mask` (q, k) for
causal; returns (output, weights (h, b, q, k)); softmax in float32.

    transformer-spec check docs.public.torchscale_mha:target

Install: pip install -c constraints.txt torchscale   (torchscale.component imports alone)
"""

from torchscale.architecture.config import EncoderConfig  # type: ignore[import-untyped]
from torchscale.component.multihead_attention import MultiheadAttention  # type: ignore[import-untyped]
from transformer_spec.properties import Call, Conventions, Target, multihead_target

CALL = Call(
    query=0,
    key=1,
    value=2,
    padding="key_padding_mask",
    padding_polarity="true_blocks",
    mask="attn_mask",
    mask_shape="q k",
    mask_form="additive",
    causal="mask",
    weights=1,
    weights_shape="h b q k",
)
CONV = Conventions(
    statistics_dtype="float32",
    fully_masked_row="nan",
    explanations={
        "statistics_dtype": "softmax in float32",
        "fully_masked_row": "-inf everywhere: NaN",
    },
)
PATHS = {"q": "q_proj", "k": "k_proj", "v": "v_proj", "o": "out_proj"}


def target() -> Target:
    return multihead_target(
        "torchscale-mha",
        lambda d, h: MultiheadAttention(EncoderConfig(), d, h, dropout=0.0, self_attention=True),
        call=CALL,
        projections=PATHS,
        conventions=CONV,
    )
