"""Calling a target's attention function the same way from every property."""

from torch import Tensor
from transformer_spec.properties.harness.registry import Context
from transformer_spec.properties.targets.protocols import to_polarity


def attend(
    ctx: Context,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    attends: Tensor | None = None,
    *,
    causal: bool = False,
) -> tuple[Tensor, Tensor | None]:
    """Run the target's attention with a 'may attend' mask converted to its declared polarity;
    check the weights' shape (the guard checks the output's type, shape, dtype and device)."""
    fn = ctx.target.attention
    assert fn is not None
    out, weights = fn(
        q, k, v, mask=to_polarity(attends, ctx.target.conventions.mask_polarity), causal=causal
    )
    if weights is not None and tuple(weights.shape) != (*q.shape[:-1], k.shape[-2]):
        raise AssertionError(
            f"attention weights have shape {tuple(weights.shape)}, "
            f"expected {(*q.shape[:-1], k.shape[-2])}"
        )
    return out, weights


def need_weights(weights: Tensor | None) -> Tensor:
    if weights is None:
        raise AssertionError("the target declared attention weights but returned None")
    return weights
