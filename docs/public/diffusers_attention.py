"""diffusers' `Attention` (0.42.1, default processor AttnProcessor2_0) through
`multihead_target`: cross-attention through `encoder_hidden_states=`, one boolean
`attention_mask` (b, q, k) True = may attend, causal through that mask. `target_is_causal`
builds it with `is_causal=True`, which the default processor ignores (a bug: see
docs/repro/diffusers_is_causal_ignored.py).

    transformer-spec check docs.public.diffusers_attention:target

Install: pip install -c constraints.txt diffusers
"""

from diffusers.models.attention_processor import Attention  # type: ignore[import-untyped]
from transformer_spec.properties import Call, Conventions, Target, multihead_target

CALL = Call(
    query=0, key="encoder_hidden_states", mask="attention_mask", mask_shape="b q k", causal="mask"
)
ZEROS = Conventions(
    fully_masked_row="unspecified",
    explanations={"fully_masked_row": "SDPA's: NaN or zeros by backend"},
)
PATHS = {"q": "to_q", "k": "to_k", "v": "to_v", "o": "to_out.0"}


def target() -> Target:
    return multihead_target(
        "diffusers-attention",
        lambda d, h: Attention(d, heads=h, dim_head=d // h),
        call=CALL,
        projections=PATHS,
        conventions=ZEROS,
    )


def target_is_causal() -> Target:
    return multihead_target(
        "diffusers-attention-is-causal",
        lambda d, h: Attention(d, heads=h, dim_head=d // h, is_causal=True),
        call=Call(x=0, causal="always"),
        projections=PATHS,
    )
