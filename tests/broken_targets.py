"""Deliberately broken targets for the checker's own tests: each is the reference with one
bug, plugged in the way a user plugs in their own code (MODULE:FACTORY)."""

import math

from torch import Tensor
from transformer_spec.properties import Target

from transformer_spec import reference as R


def _attention(*, causal_mask: bool = True, scale: bool = True, mix_batch: bool = False):  # type: ignore[no-untyped-def]
    def attend(
        q: Tensor, k: Tensor, v: Tensor, *, mask: Tensor | None, causal: bool
    ) -> tuple[Tensor, Tensor]:
        c = (
            R.causal_mask(q.shape[-2], k.shape[-2], device=q.device)
            if causal and causal_mask
            else None
        )
        full = R.combine_masks(mask, c)
        out, w = R.scaled_dot_product_attention(q, k, v, mask=full, scale=None if scale else 1.0)
        if mix_batch and q.shape[0] > 1:
            out = out + 0.1 * out.roll(1, dims=0)
        return out, w

    return attend


def no_causal_mask() -> Target:
    return Target(
        name="no-causal-mask",
        description="ignores the causal flag",
        attention=_attention(causal_mask=False),
    )


def no_scale() -> Target:
    return Target(
        name="no-scale", description="forgets 1/sqrt(d_k)", attention=_attention(scale=False)
    )


def mixes_batch() -> Target:
    return Target(
        name="mixes-batch",
        description="adds a tenth of the neighbouring batch item",
        attention=_attention(mix_batch=True),
    )


def raises() -> Target:
    raise RuntimeError("cannot build the model")


def not_a_target() -> object:
    return math.pi
