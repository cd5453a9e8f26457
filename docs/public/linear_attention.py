"""linear-attention-transformer's `SelfAttention` (0.19.1, "efficient attention":
softmax over the width of q, over the positions of k) through `multihead_target`, declared
approximate: cross-attention with `receives_context=True` through `context=` and
`context_mask=`; `target_causal` is built causal (cumulative sums), with `input_mask=`.

    transformer-spec check docs.public.linear_attention:target

Install: pip install -c constraints.txt linear-attention-transformer
"""

from linear_attention_transformer.linear_attention_transformer import SelfAttention  # type: ignore[import-untyped]
from transformer_spec.properties import Call, Conventions, Target, multihead_target

APPROX = Conventions(
    exactness="approximate",
    fully_masked_row="unspecified",
    causal_alignment=None,
    explanations={
        "exactness": "linear (efficient) attention, not the softmax of q.k",
        "fully_masked_row": "no rule",
        "causal_alignment": "cumulative sums over one sequence",
    },
)
PATHS = {"q": "to_q", "k": "to_k", "v": "to_v", "o": "to_out"}


def target() -> Target:
    return multihead_target(
        "linear-attention",
        lambda d, h: SelfAttention(d, heads=h, receives_context=True),
        call=Call(query=0, key="context", padding="context_mask"),
        projections=PATHS,
        conventions=APPROX,
    )


def target_causal() -> Target:
    return multihead_target(
        "linear-attention-causal",
        lambda d, h: SelfAttention(d, heads=h, causal=True),
        call=Call(x=0, padding="input_mask", causal="always"),
        projections=PATHS,
        conventions=APPROX,
    )
