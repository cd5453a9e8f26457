"""bert-pytorch's `MultiHeadedAttention` (0.0.1a4) through `multihead_target`: positional
query, key, value; one mask broadcast to (b, h, q, k) where 0 blocks (filled with -1e9, so a
query with no visible key averages every value: finite); causal only through the mask.

    transformer-spec check docs.public.bert_mha:target

Install: pip install -c constraints.txt bert-pytorch
"""

from bert_pytorch.model.attention import MultiHeadedAttention  # type: ignore[import-untyped]
from transformer_spec.properties import Call, Conventions, Target, multihead_target

CALL = Call(query=0, key=1, value=2, mask="mask", mask_shape="b 1 q k", causal="mask")
FINITE = Conventions(
    fully_masked_row="finite", explanations={"fully_masked_row": "-1e9 fill: a uniform row"}
)
PATHS = {
    "q": "linear_layers.0",
    "k": "linear_layers.1",
    "v": "linear_layers.2",
    "o": "output_linear",
}


def target() -> Target:
    return multihead_target(
        "bert-mha",
        lambda d, h: MultiHeadedAttention(h, d),
        call=CALL,
        projections=PATHS,
        conventions=FINITE,
    )
