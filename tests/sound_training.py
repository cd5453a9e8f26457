"""Correct training targets that once drew false alarms, and their broken twins.

- `softmax_in_float32`, `variance_in_float32`, `loss_in_float32`: the reference model (math
  path) whose attention softmax, LayerNorm statistics or cross-entropy is computed in
  float32 whatever the build's dtype (as libraries with a float32 fast path do). Nothing is
  cut: the float64 build's loss only carries float32 rounding, which a finite difference
  at a small step divides by the step.
- `untied_head`: the reference model with an un-embedding of its own (not tied to M),
  initialised like Hugging Face's (std 0.02), so that the largest gradient is the head's,
  far above an embedding row's.

Each broken twin adds one bug that the training properties must still catch:
`softmax_in_float32_embedding_detached` (a cut path) and `untied_head_pretrained_frozen` (the
embedding frozen when fine-tuning is asked)."""

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformer_spec.properties import Target
from transformer_spec.properties.targets.builtin import ReferenceModel
from transformer_spec.properties.targets.levels import Model, ModelKind, ModelSpec

from transformer_spec import reference as R

GENERATIVE: tuple[ModelKind, ...] = ("encoder_decoder", "decoder_only")
_plain_softmax = torch.softmax


def _softmax32(x: Tensor, dim: int, dtype: torch.dtype | None = None) -> Tensor:
    return _plain_softmax(x.float(), dim).to(x.dtype if dtype is None else dtype)


@contextlib.contextmanager
def _softmax_patched() -> Iterator[None]:
    torch.softmax = _softmax32  # type: ignore[assignment]
    try:
        yield
    finally:
        torch.softmax = _plain_softmax


class _Softmax32(ReferenceModel):
    """Every softmax of the forward pass (the attention weights) in float32."""

    def logits(self, tokens: Tensor, src: Tensor | None = None) -> Tensor:
        with _softmax_patched():
            return super().logits(tokens, src)

    def incremental_logits(self, tokens: Tensor, src: Tensor | None = None) -> Tensor | None:
        with _softmax_patched():
            return super().incremental_logits(tokens, src)

    def loss(self, tokens: Tensor, src: Tensor | None = None) -> Tensor:
        with _softmax_patched():
            return super().loss(tokens, src)


class _LayerNorm32(R.LayerNorm):
    def forward(self, x: Tensor) -> Tensor:
        xs = x.float()
        mean = xs.mean(dim=-1, keepdim=True).to(x.dtype)
        rstd = torch.rsqrt(xs.var(dim=-1, keepdim=True, unbiased=False) + self.eps).to(x.dtype)
        return (x - mean) * rstd * self.gain + self.bias


class _Variance32(ReferenceModel):
    """Every LayerNorm takes its mean and variance in float32."""

    def __init__(self, spec: ModelSpec, path: str) -> None:
        super().__init__(spec, path)
        for m in self.model.modules():
            if isinstance(m, R.LayerNorm):
                m.__class__ = _LayerNorm32


class _Loss32(ReferenceModel):
    """The cross-entropy of the logits taken in float32 (returned in float64 by a float64
    build)."""

    def loss(self, tokens: Tensor, src: Tensor | None = None) -> Tensor:
        model = self.model
        if isinstance(model, R.EncoderDecoderModel):
            assert src is not None, "an encoder-decoder model needs src"
            logits: Tensor = model(src, tokens[:, :-1])
        else:
            logits = model(tokens[:, :-1])
        loss = F.cross_entropy(
            logits.flatten(0, 1).float(), tokens[:, 1:].flatten(), ignore_index=self.pad_id
        )
        return loss.double() if logits.dtype == torch.float64 else loss


class _Untied(ReferenceModel):
    """The un-embedding gets its own weight, drawn from the spec's seed."""

    def __init__(self, spec: ModelSpec, path: str) -> None:
        super().__init__(spec, path)
        g = torch.Generator().manual_seed(spec.seed + 1)
        W = torch.randn(spec.vocab_size, spec.d_model, generator=g, dtype=torch.float64)
        W = (0.02 * W).to(spec.device, spec.dtype)
        self.model.unembed.W.weight = nn.Parameter(W)


class _Detached(_Softmax32):
    def __init__(self, spec: ModelSpec, path: str) -> None:
        super().__init__(spec, path)
        self.model.embed.tokens.register_forward_hook(lambda _m, _a, out: out.detach())


class _UntiedFrozen(_Untied):
    def load_pretrained_embedding(self, matrix: Tensor, *, freeze: bool) -> None:
        super().load_pretrained_embedding(matrix, freeze=True)


def _target(name: str, cls: type[ReferenceModel]) -> Target:
    def build(spec: ModelSpec) -> Model:
        return cls(spec, "math")

    return Target(
        name=name, description=name.replace("-", " "), model=build, model_kinds=GENERATIVE
    )


def softmax_in_float32() -> Target:
    """The attention softmax in float32 in every build, float64 included."""
    return _target("softmax-in-float32", _Softmax32)


def variance_in_float32() -> Target:
    """LayerNorm's mean and variance in float32 in every build, float64 included."""
    return _target("variance-in-float32", _Variance32)


def loss_in_float32() -> Target:
    """The cross-entropy in float32 in every build, float64 included."""
    return _target("loss-in-float32", _Loss32)


def untied_head() -> Target:
    """An un-embedding with its own weight matrix."""
    return _target("untied-head", _Untied)


def softmax_in_float32_embedding_detached() -> Target:
    """softmax_in_float32 with the token embeddings detached before the layers."""
    return _target("softmax-in-float32-embedding-detached", _Detached)


def untied_head_pretrained_frozen() -> Target:
    """untied_head whose pretrained embedding is frozen even when fine-tuning is asked."""
    return _target("untied-head-pretrained-frozen", _UntiedFrozen)
