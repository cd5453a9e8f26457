"""labml-nn's annotated `MultiHeadAttention` (0.5.1) through `multihead_target`: keyword
`query=`, `key=`, `value=`, sequence first, one mask of axes (queries, keys, batch) where
nonzero attends, causal only through that mask. A query with no visible key gives NaN.

    transformer-spec check docs.public.labml_mha:target

Install: pip install -c constraints.txt --no-deps labml-nn "labml==0.4.168"
"""

from labml_nn.transformers.mha import MultiHeadAttention  # type: ignore[import-untyped]
from transformer_spec.properties import Call, Conventions, Target, multihead_target

CALL = Call(
    query="query",
    key="key",
    value="value",
    mask="mask",
    mask_shape="q k b",
    causal="mask",
    layout="l b d",
)
NAN = Conventions(
    fully_masked_row="nan", explanations={"fully_masked_row": "softmax over a row of -inf: NaN"}
)
PATHS = {"q": "query.linear", "k": "key.linear", "v": "value.linear", "o": "output"}


def target() -> Target:
    return multihead_target(
        "labml-mha",
        lambda d, h: MultiHeadAttention(h, d, dropout_prob=0.0),
        call=CALL,
        projections=PATHS,
        conventions=NAN,
    )
