"""perceiver-pytorch's `Attention` (0.11.0) through `multihead_target`: cross-attention
through `context=`, a key padding mask `mask=` (True = may attend), no causal form; k and v
fused in `to_kv` (k first). A query with no visible key averages every value (finite).

    transformer-spec check docs.public.perceiver_attention:target

Install: pip install -c constraints.txt perceiver-pytorch
"""

from perceiver_pytorch.perceiver_pytorch import Attention  # type: ignore[import-untyped]
from transformer_spec.properties import Call, Conventions, Target, multihead_target

CALL = Call(query=0, key="context", padding="mask")
FINITE = Conventions(
    fully_masked_row="finite", explanations={"fully_masked_row": "-finfo.max fill: a uniform row"}
)
PATHS = {"q": "to_q", "kv": "to_kv", "o": "to_out"}


def target() -> Target:
    return multihead_target(
        "perceiver-attention",
        lambda d, h: Attention(d, heads=h, dim_head=d // h),
        call=CALL,
        projections=PATHS,
        conventions=FINITE,
    )
