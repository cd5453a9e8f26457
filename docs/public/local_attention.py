"""lucidrains' local-attention `LocalAttention` as an attention-level target, with one window
wider than any sequence the harness draws (so it should equal full attention), no rotary
embedding. Its mask is a key padding mask (b, n) True = may attend, and q, k, v have one
length, so other masks and lengths are refused (not applicable). No constructor fits: SDPA's
signature takes a full (Lq, Lk) mask and causal per call; this one a key padding mask and
causal fixed when built. From the repository root:

    transformer-spec check docs.public.local_attention:target

Install: pip install -c constraints.txt local-attention   (1.11.2 tried)
"""

from local_attention.local_attention import LocalAttention  # type: ignore[import-untyped]
from torch import Tensor
from transformer_spec.properties import Conventions, Target
from transformer_spec.properties.targets import Unsupported

WINDOW = 64  # wider than the harness's sequences: one window holds the whole sequence


class LocalAttentionFn:
    def __init__(self) -> None:
        self.nets = {
            causal: LocalAttention(
                WINDOW, causal=causal, autopad=True, use_rotary_pos_emb=False
            ).eval()
            for causal in (False, True)
        }

    def __call__(
        self, q: Tensor, k: Tensor, v: Tensor, *, mask: Tensor | None, causal: bool
    ) -> tuple[Tensor, Tensor | None]:
        if q.shape[-2] != k.shape[-2]:
            raise Unsupported("LocalAttention takes queries and keys of one length")
        padding = None
        if mask is not None:
            padding = mask[:, 0, 0, :]  # (b, 1, Lq, Lk) -> (b, Lk) when every row is the same
            if not bool((mask == padding[:, None, None, :]).all()):
                raise Unsupported("LocalAttention takes a key padding mask (b, n), not a full one")
        out: Tensor = self.nets[causal](q, k, v, mask=padding)
        return out, None


def target() -> Target:
    return Target(
        name="local-attention",
        description=f"local_attention.LocalAttention(window_size={WINDOW}, autopad=True)",
        conventions=Conventions(
            weights="none",
            fully_masked_row="finite",
            explanations={
                "weights": "LocalAttention returns the output only",
                "fully_masked_row": "a row with no visible key has every score filled with "
                "-finfo.max, so it gets a finite average of its window's values",
            },
        ),
        attention=LocalAttentionFn(),
    )
