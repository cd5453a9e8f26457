"""x-transformers' multi-head `Attention` module (2.31.10) through `multihead_target`:
cross-attention through `context=`, key padding through `context_mask=` (True = may
attend), causal per call (`causal=`), weights from `return_intermediates=True`. With one
head its W_O is nn.Identity, which `projections` reads as the identity. The flash path
returns no weights. From the repository root:

    transformer-spec check docs.public.x_transformers_attention:target
    transformer-spec check docs.public.x_transformers_attention:target_flash

Install: pip install -c constraints.txt x-transformers
"""

from dataclasses import replace

from transformer_spec.properties import Call, Conventions, Target, multihead_target
from x_transformers.x_transformers import Attention  # type: ignore[import-untyped]

CALL = Call(
    query=0,
    key="context",
    padding="context_mask",
    causal="causal",
    weights="1.post_softmax_attn",
    extra={"return_intermediates": True},
)
PATHS = {"q": "to_q", "k": "to_k", "v": "to_v", "o": "to_out"}
F32 = Conventions(
    statistics_dtype="float32",
    explanations={"statistics_dtype": "softmax in float32 (F.softmax dtype=)"},
)


def target() -> Target:
    return multihead_target(
        "x-transformers-attention",
        lambda d, h: Attention(d, heads=h, dim_head=d // h),
        call=CALL,
        projections=PATHS,
        conventions=F32,
    )


def target_flash() -> Target:
    return multihead_target(
        "x-transformers-attention-flash",
        lambda d, h: Attention(d, heads=h, dim_head=d // h, flash=True),
        call=replace(CALL, weights=None),
        projections=PATHS,
    )


def target_grouped() -> Target:
    """Grouped-query attention (beyond the notes): `kv_heads=` key/value heads shared by the
    query heads, as x-transformers repeats them for each group."""
    return multihead_target(
        "x-transformers-attention-gqa",
        lambda d, h, g: Attention(d, heads=h, kv_heads=g, dim_head=d // h),
        call=CALL,
        projections=PATHS,
        conventions=F32,
        kv_heads=True,
    )
