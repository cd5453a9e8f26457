"""What a target is: an implementation under test, reached through adapters at one or more
levels, with its declared conventions.

Levels (a target offers any subset):
- `attention`: a function (q, k, v, mask, causal) -> (output, weights or None) on tensors of
  shape (batch, heads, length, width);
- `mha`: a factory building a multi-head attention module of a given size;
- `model`: a factory building a whole model of a given shape and size.

Inputs the harness passes are batch-first. Boolean masks reach the target in the polarity
it declares (`Conventions.mask_polarity`), so a kernel whose masks mean "blocked" is checked
in its own convention, and a kernel that inverts its own declared polarity fails.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

import torch
from torch import Tensor

MaskPolarity = Literal["true_attends", "true_blocks"]
Alignment = Literal["top_left", "bottom_right"]
FullyMaskedRow = Literal["zeros", "nan", "finite", "unspecified"]
WeightsKind = Literal["per_head", "averaged", "none"]
ModelKind = Literal["encoder_decoder", "decoder_only", "encoder_only"]
ALL_DTYPES = ("float64", "float32", "bfloat16", "float16")


@dataclass(frozen=True)
class Conventions:
    """Choices real implementations make differently; a difference here is not a bug.

    fully_masked_row: what a query row with no visible key returns: "zeros", "nan", any
    "finite" values, or "unspecified" (the property is then not applicable).
    causal_alignment: None when the target only supports equal query and key lengths with a
    causal mask (e.g. a kernel that refuses the case).
    explanations: one line per convention that differs from the reference's, shown in the
    report (e.g. {"causal_alignment": "SDPA's is_causal is top-left aligned"}).
    """

    mask_polarity: MaskPolarity = "true_attends"
    causal_alignment: Alignment | None = "bottom_right"
    fully_masked_row: FullyMaskedRow = "zeros"
    weights: WeightsKind = "per_head"
    dtypes: tuple[str, ...] = ALL_DTYPES
    devices: tuple[str, ...] = ("cpu", "cuda")
    explanations: Mapping[str, str] = field(default_factory=dict)


class AttentionFn(Protocol):
    def __call__(
        self, q: Tensor, k: Tensor, v: Tensor, *, mask: Tensor | None, causal: bool
    ) -> tuple[Tensor, Tensor | None]:
        """q (b, h, Lq, d_k), k (b, h, Lk, d_k), v (b, h, Lk, d_v); mask bool (b, 1, Lq, Lk)
        in the declared polarity or None; returns output (b, h, Lq, d_v) and weights
        (b, h, Lq, Lk) or None."""
        ...


@dataclass(frozen=True)
class MHASpec:
    d_model: int
    n_heads: int
    dtype: torch.dtype
    device: torch.device
    seed: int


@dataclass(frozen=True)
class Projections:
    """Weights in the notes' convention: Q = X W_Q + b_Q, with W_Q of shape (d_model, d_model)
    whose columns i*d_k:(i+1)*d_k belong to head i; the same for K, V; out = Z W_O + b_O."""

    W_Q: Tensor
    W_K: Tensor
    W_V: Tensor
    W_O: Tensor
    b_Q: Tensor | None = None
    b_K: Tensor | None = None
    b_V: Tensor | None = None
    b_O: Tensor | None = None


class MHA(Protocol):
    def __call__(
        self, x_query: Tensor, x_kv: Tensor, *, key_padding: Tensor | None, causal: bool
    ) -> tuple[Tensor, Tensor | None]:
        """x (b, L, d_model); key_padding bool (b, Lk) in the declared polarity (True =
        may attend, or True = padded) or None; returns (b, Lq, d_model) and weights
        (b, h, Lq, Lk), (b, Lq, Lk) if averaged, or None."""
        ...

    def projections(self) -> Projections | None: ...


@dataclass(frozen=True)
class ModelSpec:
    kind: ModelKind
    vocab_size: int
    d_model: int
    n_heads: int
    d_ff: int
    n_layers: int  # per stack
    max_len: int
    positional: bool  # False: build the same model without positional encoding
    dtype: torch.dtype
    device: torch.device
    seed: int


class Model(Protocol):
    pad_id: int

    def logits(self, tokens: Tensor, src: Tensor | None = None) -> Tensor:
        """tokens (b, t) int64 -> logits (b, t, vocab); `src` (b, s) for encoder-decoder."""
        ...

    def incremental_logits(self, tokens: Tensor, src: Tensor | None = None) -> Tensor | None:
        """The same logits, fed one token at a time through the target's cache; None when
        the target has no incremental decoding."""
        ...


PositionalLayout = Literal["interleaved", "concat_t2t", "learned", "none"]


@dataclass(frozen=True)
class ComponentSpec:
    vocab_size: int
    d_model: int
    d_ff: int
    max_len: int
    dtype: torch.dtype
    device: torch.device
    seed: int


class Components(Protocol):
    """The building blocks of one model, each on its own. A target implements what it has;
    a method returning None (or a missing method) makes its properties not applicable.

    positional_layout: which sinusoid layout `positional_table` follows: "interleaved" (the
    paper: sin on even, cos on odd channels), "concat_t2t" (tensor2tensor: [sin | cos]),
    "learned" or "none". embedding_scale: the declared factor on token embeddings (1, or
    sqrt(d_model) as in the paper)."""

    positional_layout: PositionalLayout
    embedding_scale: float

    def embedding_matrix(self) -> Tensor | None:
        """M, shape (vocab, d_model)."""
        ...

    def embed(self, tokens: Tensor) -> Tensor | None:
        """Token embeddings alone, (b, t) -> (b, t, d_model), positions not added."""
        ...

    def positional_table(self, n_positions: int, start: int = 0) -> Tensor | None:
        """Rows start .. start + n_positions - 1 of the positional encoding, (n, d_model)."""
        ...

    def embed_with_positions(self, tokens: Tensor) -> Tensor | None:
        """What the first layer receives: embeddings with positions added, (b, t, d_model)."""
        ...

    def layer_norm(self, x: Tensor) -> Tensor | None:
        """One LayerNorm at its initial gain 1 and bias 0, over the last dim."""
        ...

    def feed_forward(self, x: Tensor) -> Tensor | None:
        """The position-wise FFN, (b, t, d_model) -> (b, t, d_model)."""
        ...

    def unembed(self, x: Tensor) -> Tensor | None:
        """Final vectors to vocabulary logits, (b, t, d_model) -> (b, t, vocab)."""
        ...


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    conventions: Conventions = field(default_factory=Conventions)
    attention: AttentionFn | None = None
    mha: Callable[[MHASpec], MHA] | None = None
    model: Callable[[ModelSpec], Model] | None = None
    model_kinds: tuple[ModelKind, ...] = ()
    components: Callable[[ComponentSpec], Components] | None = None
    # property id or glob -> (factor >= 1, written reason): every bound of the matching
    # properties is multiplied by factor, and the reason is shown in the report.
    loosen: Mapping[str, tuple[float, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for pattern, (factor, reason) in self.loosen.items():
            if not (factor >= 1.0 and reason.strip()):
                raise ValueError(
                    f"target {self.name!r}: loosen[{pattern!r}] needs a factor >= 1 "
                    "and a written reason"
                )
        if not (self.attention or self.mha or self.model or self.components):
            raise ValueError(
                f"target {self.name!r}: offers no adapter (attention, mha, model or components)"
            )
        if self.model is not None and not self.model_kinds:
            raise ValueError(f"target {self.name!r}: a model factory needs model_kinds")


def to_polarity(attends: Tensor | None, polarity: MaskPolarity) -> Tensor | None:
    """The harness's masks are True = may attend; convert to what the target declared."""
    if attends is None:
        return None
    return attends if polarity == "true_attends" else ~attends
