"""Targets written against 0.1's declarations (tests/test_declarations.py): a decoder model
that declares pad_id and nothing about masking, as the Model protocol once asked. Its
decoder takes <PAD> as an ordinary token (no padding mask in its self-attention), which is
correct for a model that is never given left padding."""

from torch import Tensor
from transformer_spec.properties.targets.builtin import ReferenceModel
from transformer_spec.properties.targets.levels import ModelSpec
from transformer_spec.properties.targets.protocols import Target

from . import broken_models


class PadIdOnly:
    """The reference decoder without a padding mask in its self-attention, declaring its
    pad_id only (as 0.1's protocol asked); `masks_padding` is set when given."""

    def __init__(self, spec: ModelSpec, masks: bool | None = None) -> None:
        inner = broken_models.decoder_padding_ignored().model
        assert inner is not None
        self.inner = inner(spec)
        assert isinstance(self.inner, ReferenceModel)
        self.pad_id = self.inner.pad_id
        if masks is not None:
            self.masks_padding = masks

    def logits(self, tokens: Tensor, src: Tensor | None = None) -> Tensor:
        return self.inner.logits(tokens, src)

    def incremental_logits(self, tokens: Tensor, src: Tensor | None = None) -> None:
        return None


def _target(name: str, description: str, masks: bool | None) -> Target:
    return Target(
        name=name,
        description=description,
        model=lambda spec: PadIdOnly(spec, masks),
        model_kinds=("decoder_only",),
    )


def pad_id_only() -> Target:
    return _target("pad-id-only", "0.1-style decoder: pad_id declared, masking not", None)


def declares_masking() -> Target:
    """The same model, declaring (wrongly) that it hides <PAD> keys."""
    return _target("declares-masking", "masks_padding = True, but no padding mask", True)


def declares_ordinary_pad() -> Target:
    return _target("declares-ordinary-pad", "pad_id and masks_padding = False", False)
