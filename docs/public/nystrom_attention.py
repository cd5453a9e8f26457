"""nystrom-attention's `NystromAttention` (0.0.14, Nystrom landmarks, residual convolution
off) through `multihead_target`, declared approximate: self-attention only, a key padding
mask `mask=` (True = may attend) passed on every call (the sequence is padded to a multiple
of the landmarks, and only a mask hides that padding), no causal form.

    transformer-spec check docs.public.nystrom_attention:target

Install: pip install -c constraints.txt nystrom-attention
"""

from nystrom_attention import NystromAttention  # type: ignore[import-untyped]
from transformer_spec.properties import Call, Conventions, Target, multihead_target

APPROX = Conventions(
    exactness="approximate",
    fully_masked_row="unspecified",
    explanations={
        "exactness": "Nystrom approximation, 4 landmarks, 6 pseudo-inverse iterations",
        "fully_masked_row": "no rule",
    },
)
CALL = Call(x=0, mask="mask", mask_shape="b k", mask_required=True, output=None)
PATHS = {"qkv": "to_qkv", "o": "to_out.0"}


def target() -> Target:
    return multihead_target(
        "nystrom",
        lambda d, h: NystromAttention(d, dim_head=d // h, heads=h, num_landmarks=4, residual=False),
        call=CALL,
        projections=PATHS,
        conventions=APPROX,
    )
