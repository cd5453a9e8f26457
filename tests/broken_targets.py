"""Deliberately broken targets for the checker's own tests: each is the reference attention
with one bug, plugged in the way a user plugs in their own code (MODULE:FACTORY).

MUTANTS maps each factory name to the properties that must catch it: together they show
that every attention-level property fails on some real bug."""

import math
from collections.abc import Callable

import torch
from torch import Tensor
from transformer_spec.properties import Target

from transformer_spec import reference as R

Attn = Callable[..., tuple[Tensor, Tensor | None]]


def _reference(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, causal: bool, scale: float | None = None
) -> tuple[Tensor, Tensor]:
    c = R.causal_mask(q.shape[-2], k.shape[-2], device=q.device) if causal else None
    return R.scaled_dot_product_attention(q, k, v, mask=R.combine_masks(mask, c), scale=scale)


def _target(name: str, attend: Attn) -> Target:
    return Target(name=name, description=name.replace("-", " "), attention=attend)


def no_causal_mask() -> Target:
    return _target(
        "no-causal-mask", lambda q, k, v, *, mask, causal: _reference(q, k, v, mask, False)
    )


def no_scale() -> Target:
    return _target(
        "no-scale", lambda q, k, v, *, mask, causal: _reference(q, k, v, mask, causal, 1.0)
    )


def scale_one_over_dk() -> Target:
    return _target(
        "scale-one-over-dk",
        lambda q, k, v, *, mask, causal: _reference(q, k, v, mask, causal, 1 / q.shape[-1]),
    )


def mixes_batch() -> Target:
    def attend(
        q: Tensor, k: Tensor, v: Tensor, *, mask: Tensor | None, causal: bool
    ) -> tuple[Tensor, Tensor]:
        out, w = _reference(q, k, v, mask, causal)
        return out + 0.1 * out.roll(1, dims=0), w

    return _target("mixes-batch", attend)


def softmax_over_queries() -> Target:
    def attend(
        q: Tensor, k: Tensor, v: Tensor, *, mask: Tensor | None, causal: bool
    ) -> tuple[Tensor, Tensor]:
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
        w = torch.softmax(scores, dim=-2)
        return w @ v, w

    return _target("softmax-over-queries", attend)


def weights_not_normalised() -> Target:
    def attend(
        q: Tensor, k: Tensor, v: Tensor, *, mask: Tensor | None, causal: bool
    ) -> tuple[Tensor, Tensor]:
        out, w = _reference(q, k, v, mask, causal)
        return out * 1.25, w * 1.25

    return _target("weights-not-normalised", attend)


def position_bias() -> Target:
    """Adds a bias that grows with the key index: attention is no longer position-free."""

    def attend(
        q: Tensor, k: Tensor, v: Tensor, *, mask: Tensor | None, causal: bool
    ) -> tuple[Tensor, Tensor]:
        bias = 0.5 * torch.arange(k.shape[-2], device=q.device, dtype=q.dtype)
        return _reference(q, k + 0 * k, v + bias[:, None], mask, causal)

    return _target("position-bias", attend)


def inverted_polarity() -> Target:
    """Declares True = may attend but treats True as blocked."""

    def attend(
        q: Tensor, k: Tensor, v: Tensor, *, mask: Tensor | None, causal: bool
    ) -> tuple[Tensor, Tensor]:
        return _reference(q, k, v, None if mask is None else ~mask, causal)

    return _target("inverted-polarity", attend)


def mask_after_softmax() -> Target:
    """Zeroes masked weights after the softmax without renormalising."""

    def attend(
        q: Tensor, k: Tensor, v: Tensor, *, mask: Tensor | None, causal: bool
    ) -> tuple[Tensor, Tensor]:
        _, w = _reference(q, k, v, None, False)
        full = R.combine_masks(
            mask, R.causal_mask(q.shape[-2], k.shape[-2], device=q.device) if causal else None
        )
        if full is not None:
            w = w * full
        return w @ v, w

    return _target("mask-after-softmax", attend)


def nan_on_fully_masked_rows() -> Target:
    """Declares zeros for rows with no visible key, returns NaN."""

    def attend(
        q: Tensor, k: Tensor, v: Tensor, *, mask: Tensor | None, causal: bool
    ) -> tuple[Tensor, Tensor]:
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
        full = R.combine_masks(
            mask, R.causal_mask(q.shape[-2], k.shape[-2], device=q.device) if causal else None
        )
        if full is not None:
            scores = scores.masked_fill(~full, -math.inf)
        w = torch.softmax(scores, dim=-1)
        return w @ v, w

    return _target("nan-on-fully-masked-rows", attend)


def top_left_declared_bottom_right() -> Target:
    """Uses top-left causal alignment while declaring bottom-right."""

    def attend(
        q: Tensor, k: Tensor, v: Tensor, *, mask: Tensor | None, causal: bool
    ) -> tuple[Tensor, Tensor]:
        c = (
            R.causal_mask(q.shape[-2], k.shape[-2], alignment="top_left", device=q.device)
            if causal
            else None
        )
        return R.scaled_dot_product_attention(q, k, v, mask=R.combine_masks(mask, c))

    return _target("top-left-declared-bottom-right", attend)


def raises() -> Target:
    raise RuntimeError("cannot build the model")


def not_a_target() -> object:
    return math.pi


# factory -> properties that must fail on it
MUTANTS: dict[str, tuple[str, ...]] = {
    "no_causal_mask": (
        "masking.causal_no_future_leak",
        "masking.causal_weights_lower_triangular",
        "masking.padding_and_causal_combine",
    ),
    "no_scale": (
        "attention.matches_float64_formula",
        "scaling.score_variance_is_one",
        "scaling.softmax_does_not_saturate",
    ),
    "scale_one_over_dk": ("attention.matches_float64_formula", "scaling.score_variance_is_one"),
    "mixes_batch": ("attention.batch_items_independent",),
    "softmax_over_queries": (
        "attention.weights_are_distributions",
        "attention.softmax_is_per_query_row",
    ),
    "weights_not_normalised": (
        "attention.weights_are_distributions",
        "attention.output_in_convex_hull_of_values",
    ),
    "position_bias": ("attention.keys_and_values_are_a_set", "attention.permutation_equivariant"),
    "inverted_polarity": (
        "masking.masked_keys_get_zero_weight",
        "masking.masked_content_has_no_effect",
    ),
    "mask_after_softmax": ("masking.masked_content_has_no_effect",),
    "nan_on_fully_masked_rows": ("masking.fully_masked_rows_follow_policy",),
    "top_left_declared_bottom_right": ("masking.causal_alignment_as_declared",),
}


def loosened() -> Target:
    """A wrong scale hidden behind a huge, but declared and reported, loosening."""
    return Target(
        name="loosened",
        description="scale 1/d_k with a loosened tolerance",
        attention=scale_one_over_dk().attention,
        loosen={"attention.matches_float64_formula": (1e6, "the kernel approximates exp")},
    )
