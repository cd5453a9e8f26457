"""axial-attention's `SelfAttention` (0.6.1, the module AxialAttention applies per axis)
through `multihead_target`: cross-attention through `kv=`, no mask, no causal form.

    transformer-spec check docs.public.axial_attention:target

Install: pip install -c constraints.txt axial-attention
"""

from axial_attention.axial_attention import SelfAttention  # type: ignore[import-untyped]
from transformer_spec.properties import Call, Target, multihead_target

PATHS = {"q": "to_q", "kv": "to_kv", "o": "to_out"}


def target() -> Target:
    return multihead_target(
        "axial-attention",
        lambda d, h: SelfAttention(d, heads=h),
        call=Call(query=0, key="kv"),
        projections=PATHS,
    )
