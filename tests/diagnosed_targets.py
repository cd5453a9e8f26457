"""Targets for the diagnostics' tests: the reference with one twist each (a deep exception,
prints, a refusal of every example, one model kind that crashes)."""

from dataclasses import replace

from torch import Tensor
from transformer_spec.properties import Target
from transformer_spec.properties.targets.builtin import reference_target
from transformer_spec.properties.targets.levels import ModelSpec, Unsupported

from .broken_targets import _reference

Out = tuple[Tensor, Tensor | None]


def _softmax_kernel(scores: Tensor) -> Tensor:
    raise RuntimeError("kernel exploded in the softmax")


def raises_deep() -> Target:
    """Causal calls reach a helper that raises: the report shows the helper's frame."""

    def attend(q: Tensor, k: Tensor, v: Tensor, *, mask: Tensor | None, causal: bool) -> Out:
        if causal:
            _softmax_kernel(q @ k.transpose(-2, -1))
        return _reference(q, k, v, mask, causal)

    return Target(name="raises-deep", description="raises inside a helper", attention=attend)


def chatty() -> Target:
    """Prints on every call and leaks one future key on causal calls (so it fails)."""

    def attend(q: Tensor, k: Tensor, v: Tensor, *, mask: Tensor | None, causal: bool) -> Out:
        print(f"kernel called with q {tuple(q.shape)}")
        out, weights = _reference(q, k, v, mask, causal)
        return (out + v.sum(-2, keepdim=True) * 1e-2 if causal else out), weights

    return Target(name="chatty", description="prints on every call", attention=attend)


def refuses_everything(always: bool = True) -> Target:
    def attend(q: Tensor, k: Tensor, v: Tensor, *, mask: Tensor | None, causal: bool) -> Out:
        raise Unsupported("this kernel is not built for this machine", always=always)

    return Target(name="refuses", description="refuses every call", attention=attend)


def refuses_odd_widths() -> Target:
    """Refuses, with one message, every call whose d_k is odd: the examples it accepts
    must still be checked, however many refusals come first."""

    def attend(q: Tensor, k: Tensor, v: Tensor, *, mask: Tensor | None, causal: bool) -> Out:
        if q.shape[-1] % 2:
            raise Unsupported("odd head widths are not supported")
        return _reference(q, k, v, mask, causal)

    return Target(name="refuses-odd", description="refuses odd d_k", attention=attend)


def encoder_decoder_crashes() -> Target:
    """The reference's models, with an encoder-decoder build that crashes when called."""
    reference = reference_target("math")
    build = reference.model
    assert build is not None

    def model(spec: ModelSpec) -> object:
        if spec.kind == "encoder_decoder":
            raise RuntimeError("cross-attention is not wired yet")
        return build(spec)

    return replace(
        reference,
        name="encoder-decoder-crashes",
        model=model,  # type: ignore[arg-type]
        model_kinds=("decoder_only", "encoder_decoder"),
    )
