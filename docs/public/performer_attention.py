"""performer-pytorch's `CrossAttention` and `SelfAttention` (1.1.4, FAVOR+ random features)
through `multihead_target`, declared approximate: cross-attention through `context=`, key
padding through `context_mask=` (True = may attend); `target_causal` is a causal
SelfAttention with `mask=`. Its formula
error is reported, not failed; its structure is checked as for exact attention.

    transformer-spec check docs.public.performer_attention:target

Install: pip install -c constraints.txt performer-pytorch
"""

from collections.abc import Callable

from performer_pytorch import CrossAttention, SelfAttention  # type: ignore[import-untyped]
from torch import nn
from transformer_spec.properties import Call, Conventions, Target, multihead_target

APPROX = Conventions(
    exactness="approximate",
    fully_masked_row="unspecified",
    causal_alignment=None,
    explanations={
        "exactness": "FAVOR+ positive random features (64)",
        "fully_masked_row": "0 / 0",
        "causal_alignment": "prefix sums over one sequence",
    },
)
PATHS = {"q": "to_q", "k": "to_k", "v": "to_v", "o": "to_out"}


def build(cls: type, causal: bool) -> Callable[[int, int], nn.Module]:
    return lambda d, h: cls(d, heads=h, dim_head=d // h, nb_features=64, causal=causal)


def target() -> Target:
    return multihead_target(
        "performer",
        build(CrossAttention, False),
        call=Call(query=0, key="context", padding="context_mask"),
        projections=PATHS,
        conventions=APPROX,
    )


def target_causal() -> Target:
    return multihead_target(
        "performer-causal",
        build(SelfAttention, True),
        call=Call(x=0, padding="mask", causal="always"),
        projections=PATHS,
        conventions=APPROX,
    )
