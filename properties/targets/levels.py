"""The adapter levels: the Protocol each level's object follows, the spec its factory is
called with, and `Unsupported`, which an adapter raises for an input its library refuses.

Levels (a target offers any subset):
- `attention`: a function (q, k, v, mask, causal) -> (output, weights or None) on tensors of
  shape (batch, heads, length, width);
- `mha`: a factory building a multi-head attention module of a given size;
- `model`: a factory building a whole model of a given shape and size, optionally with
  generation (`GenerativeModel`) and training (`TrainableModel`) methods;
- `layers`: a factory building one encoder or decoder layer;
- `components`: embedding, positional encoding, LayerNorm, FFN and un-embedding on their own;
- `vocabulary`: the string -> token -> id steps.

A factory may seed torch's global RNG from `spec.seed` to draw its weights (`seed_torch`);
the guard puts the RNG back. Inputs the harness passes are batch-first, and boolean masks
reach the target in the polarity it declares (`Conventions.mask_polarity`).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import torch
from torch import Tensor


class Unsupported(Exception):
    """Raised by an adapter when the library refuses an input it documents as unsupported
    (e.g. a backend with no kernel for it); the property is reported not applicable with
    this message, never as a pass. Another example is drawn after a refusal, unless
    `always=True` says the refusal does not depend on the example (the model cannot do this
    at all): the property then stops at once."""

    def __init__(self, reason: str, *, always: bool = False) -> None:
        super().__init__(reason)
        self.always = always


def seed_torch(seed: int) -> None:
    """torch.manual_seed for the devices the harness runs on (the CPU, and CUDA where there is
    one). torch.manual_seed also queues the seed for every accelerator the wheel was built for
    (XPU, MTIA, CUDA when absent), each with a formatted stack trace: 1.7 ms a call under the
    harness's deep stacks, a tenth of a `ci` cell spent in traceback.format_stack."""
    torch.default_generator.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)  # queued until CUDA starts, as torch.manual_seed does


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
    """n_kv_heads: key/value heads for grouped-query attention (beyond the notes), or None
    for one per query head. A module that cannot group its heads builds the usual
    d_model-wide W_K and W_V, and the grouped-query property is then not applicable."""

    d_model: int
    n_heads: int
    dtype: torch.dtype
    device: torch.device
    seed: int
    n_kv_heads: int | None = None


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
        (b, h, Lq, Lk), (b, Lq, Lk) if averaged, or None.

        The target's `mha_*` fields say which calls the harness makes: with
        mha_inputs="self", x_query and x_kv are the same tensor object; with mha_causal
        "always" (or "never"), causal is always True (False); with mha_key_padding=False,
        key_padding is always None."""
        ...

    def projections(self) -> Projections | None: ...


ModelKind = Literal["encoder_decoder", "decoder_only", "encoder_only"]


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
    # Beyond the notes; a target that cannot build what is asked raises Unsupported.
    n_kv_heads: int | None = None  # grouped key/value heads; None: one per query head
    window: int | None = None  # a sliding window (Conventions.window_span); None: no window
    relative_positions: bool = False  # True: positions only as offsets (rotary or ALiBi)


class Model(Protocol):
    @property
    def pad_id(self) -> int | None:
        """The <PAD> id; None (or absent): the model has no padding token. With one, the
        model hides <PAD> keys from every query (spec MASK-PAD-ZERO-WEIGHT). A model whose
        decoder takes <PAD> as an ordinary token (declared for the loss, say) says
        `masks_padding = False`: the decoder's input is then padded on the right only, which
        its causal mask hides. An encoder must hide <PAD> either way."""
        ...

    def logits(self, tokens: Tensor, src: Tensor | None = None) -> Tensor:
        """tokens (b, t) int64 -> logits (b, t, vocab); `src` (b, s) for encoder-decoder."""
        ...

    def incremental_logits(self, tokens: Tensor, src: Tensor | None = None) -> Tensor | None:
        """The same logits, fed one token at a time through the target's cache; None when
        the target has no incremental decoding."""
        ...

    # Beyond the notes: a model built for a spec that asks for n_kv_heads, window or
    # relative_positions says it built them by setting the same attributes to the spec's
    # values (model.window = spec.window, ...); one that does not is taken not to have
    # built them, and the properties that ask are not applicable (a factory written before
    # these fields existed ignores them, and must not fail for it).


class PositionedModel(Model, Protocol):
    """The optional method of a model that can be given its position ids (beyond the notes);
    without it the shift property is not applicable."""

    def logits_at(self, tokens: Tensor, start: int) -> Tensor | None:
        """A decoder-only model's logits with its first token at position `start` (position
        ids start .. start + t - 1); None when it cannot be given positions. Asked only of
        models built with relative_positions=True (spec EXT-RELATIVE-MODEL)."""
        ...


class GenerativeModel(Model, Protocol):
    """Optional methods of a model that generates (spec GEN-*). The harness looks for each by
    name; a model without one (or with the attribute None: declared absent) makes the
    properties that need it not applicable."""

    start_id: int
    end_id: int

    def generate(
        self,
        prompt: Tensor | None,
        src: Tensor | None,
        max_new_tokens: int,
        *,
        sample: bool,
        generator: torch.Generator | None,
    ) -> Tensor:
        """Append up to max_new_tokens tokens to `prompt` (b, p): greedily, or drawn from the
        softmax of the last position's logits when `sample` (using `generator`). A prompt of
        None means <START> alone (one per source item; one sequence without a source). A
        sequence ends with its first <END>; returns (b, p + n), n <= max_new_tokens."""
        ...


class TrainableModel(Model, Protocol):
    """Optional methods of a model that trains (spec TRAIN-*, EMB-PRETRAINED-INIT). A model
    whose `loss` is the harness's own cross-entropy (an adapter standing in for a module that
    computes none) sets `harness_loss = True`: the properties of the loss itself then do not
    apply, since they could not fail; the gradient properties still do."""

    def loss(self, tokens: Tensor, src: Tensor | None = None) -> Tensor:
        """Differentiable scalar: the mean cross-entropy of predicting tokens[:, 1:] from
        tokens[:, :-1] (teacher forcing), labels equal to <PAD> left out."""
        ...

    def parameters(self) -> Mapping[str, Tensor]:
        """Every parameter by name (the tensors themselves, so gradients show on them)."""
        ...

    def embedding_parameter(self) -> Tensor:
        """The token-embedding matrix M (vocab, d_model), the parameter itself."""
        ...

    def load_pretrained_embedding(self, matrix: Tensor, *, freeze: bool) -> None:
        """Start M from `matrix`; keep training it unless `freeze`."""
        ...


LayerKind = Literal["encoder", "decoder", "decoder_only"]
NormPlacement = Literal["post", "pre"]


@dataclass(frozen=True)
class LayerSpec:
    """One layer: "encoder" (self-attention, FFN), "decoder" (causal self-attention,
    cross-attention, FFN) or "decoder_only" (a decoder layer without cross-attention)."""

    kind: LayerKind
    norm: NormPlacement
    d_model: int
    n_heads: int
    d_ff: int
    dtype: torch.dtype
    device: torch.device
    seed: int


class Layer(Protocol):
    def __call__(
        self,
        x: Tensor,
        memory: Tensor | None = None,
        *,
        key_padding: Tensor | None = None,
        memory_padding: Tensor | None = None,
    ) -> Tensor:
        """x (b, t, d_model) -> (b, t, d_model); a decoder layer's self-attention is causal.
        memory (b, s, d_model) for a decoder layer; key_padding (b, t) and memory_padding
        (b, s) are bool in the declared polarity, or None."""
        ...

    def zero_sublayer_outputs(self) -> None:
        """Zero every sublayer's output projection: W^O and its bias in each attention, the
        second linear map and its bias in the FFN (spec NORM-RESIDUAL)."""
        ...


class Vocabulary(Protocol):
    """String -> token -> id. separator: what joins units into text (" " for words, "" for
    characters); units(): every known unit, special tokens left out."""

    pad_id: int
    unk_id: int
    separator: str

    def units(self) -> Sequence[str]: ...

    def encode(self, text: str) -> list[int]: ...

    def pad_batch(self, sequences: Sequence[Sequence[int]]) -> Tensor:
        """Right-pad the id sequences with <PAD> to a common length: (b, length) int64."""
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
    sqrt(d_model) as in the paper). A target may also set `layer_norm_eps` (a float): its
    LayerNorm is then checked with that eps exactly, where the eps placement shows."""

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

    def layer_norm_affine(self, x: Tensor, gain: Tensor, bias: Tensor) -> Tensor | None:
        """One LayerNorm with the given gain and bias (each (d_model,), in x's dtype) over the
        last dim: what a trained or fine-tuned model runs. None (or no such method) when the
        target cannot set them; at gain 1 and bias 0 it is `layer_norm`."""
        ...

    def feed_forward(self, x: Tensor) -> Tensor | None:
        """The position-wise FFN, (b, t, d_model) -> (b, t, d_model)."""
        ...

    def rms_norm(self, x: Tensor) -> Tensor | None:
        """One RMSNorm at its initial gain 1 over the last dim (beyond the notes). A target
        may set `rms_norm_eps` (a float): its eps is then checked exactly."""
        ...

    def gated_feed_forward(self, x: Tensor) -> Tensor | None:
        """A gated FFN (SwiGLU, GeGLU; beyond the notes), (b, t, d_model) -> (b, t, d_model),
        with `gated_activation` declared: "silu", "gelu" or "gelu_tanh"."""
        ...

    def rotary(self, x: Tensor, positions: Tensor) -> Tensor | None:
        """Rotary position embedding (beyond the notes) of x (b, h, t, d_k) at integer
        positions (t,), as applied to queries and keys. A target declares
        `rotary_pairing` ("half_split" or "interleaved"), `rotary_base` (a float) and
        `rotary_dim` (the rotated channels, an even int, or None for all)."""
        ...

    def gated_feed_forward_weights(self) -> tuple[Tensor, Tensor, Tensor] | None:
        """(W_gate, W_up, W_down) of `gated_feed_forward` in the notes' layout (x W): so that
        FFN(x) = (act(x W_gate) * (x W_up)) W_down."""
        ...

    def unembed(self, x: Tensor) -> Tensor | None:
        """Final vectors to vocabulary logits, (b, t, d_model) -> (b, t, vocab)."""
        ...

    def alibi_bias(self, n_heads: int, length: int) -> Tensor | None:
        """The ALiBi bias (beyond the notes) that `n_heads` heads add to the scores of a
        causal sequence of `length` tokens: (h, q, k) or (h, 1, k), the latter when it
        depends on the key's position only (as Bloom's does). Entries above the diagonal
        are not read. Slopes follow the paper (spec EXT-ALIBI-SLOPES)."""
        ...
