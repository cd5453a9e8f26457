"""x-transformers' attention kernel `Attend` (the function inside its Attention module) as an
attention-level target. No constructor fits: Attend takes mask=/causal= and returns (out,
Intermediates), not SDPA's attn_mask=/is_causal= and output. From the repository root:

    transformer-spec check docs.public.x_transformers_attend:target        # einsum path
    transformer-spec check docs.public.x_transformers_attend:target_flash  # flash=True (SDPA)

Install: pip install -c constraints.txt x-transformers   (2.31.10 tried)
"""

from torch import Tensor
from transformer_spec.properties import Conventions, Target
from x_transformers.attend import Attend  # type: ignore[import-untyped]

FLOAT32_SOFTMAX = {
    "statistics_dtype": "the einsum path takes its softmax in float32 (F.softmax(dtype=float32))"
}


class AttendFn:
    """Attend takes q, k, v (b, h, L, d), a bool mask True = may attend, and causal=; it
    returns (out, Intermediates) with the post-softmax weights (einsum path only)."""

    def __init__(self, attend: Attend) -> None:
        self.attend = attend.eval()

    def __call__(
        self, q: Tensor, k: Tensor, v: Tensor, *, mask: Tensor | None, causal: bool
    ) -> tuple[Tensor, Tensor | None]:
        out, intermediates = self.attend(q, k, v, mask=mask, causal=causal)
        return out, intermediates.post_softmax_attn


def target() -> Target:
    return Target(
        name="x-transformers-attend",
        description="x_transformers.attend.Attend(), einsum path",
        conventions=Conventions(statistics_dtype="float32", explanations=FLOAT32_SOFTMAX),
        attention=AttendFn(Attend()),
    )


def target_flash() -> Target:
    return Target(
        name="x-transformers-attend-flash",
        description="x_transformers.attend.Attend(flash=True): torch SDPA inside",
        conventions=Conventions(
            weights="none",
            explanations={"weights": "the flash path returns no attention weights"},
        ),
        attention=AttendFn(Attend(flash=True)),
    )
