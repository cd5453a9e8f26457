"""What a target is: an implementation under test, reached through adapters at one or more
levels, with its declared conventions.

Levels (a target offers any subset):
- `attention`: a function (q, k, v, mask, causal) -> (output, weights or None) on tensors of
  shape (batch, heads, length, width);
- `mha`: a factory building a multi-head attention module of a given size;
- `model`: a factory building a whole model of a given shape and size, optionally with
  generation (`GenerativeModel`) and training (`TrainableModel`) methods;
- `layers`: a factory building one encoder or decoder layer;
- `components`: embedding, positional encoding, LayerNorm, FFN and un-embedding on their own;
- `vocabulary`: the string -> token -> id steps.

Every call goes through the harness's guard (guard.py), which diagnoses a target that
changes global torch state, modifies its inputs, hangs or returns the wrong thing. A factory
may seed torch's global RNG from `spec.seed` to draw its weights; the guard puts the RNG back.

Inputs the harness passes are batch-first. Boolean masks reach the target in the polarity
it declares (`Conventions.mask_polarity`), so a kernel whose masks mean "blocked" is checked
in its own convention, and a kernel that inverts its own declared polarity fails.
"""

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, get_args

import torch
from torch import Tensor
from transformer_spec.reference.config import DTYPES

MaskPolarity = Literal["true_attends", "true_blocks"]
Alignment = Literal["top_left", "bottom_right"]
FullyMaskedRow = Literal["zeros", "nan", "finite", "unspecified"]
WeightsKind = Literal["per_head", "averaged", "none"]
ScoreScale = Literal["1/sqrt(d_k)", "none"] | float
StatisticsDtype = Literal["build", "float32"]
LayerNormVariance = Literal["biased", "unbiased"]
LayerNormEps = Literal["inside_sqrt", "outside_sqrt"]
Exactness = Literal["exact", "approximate"]
WindowSpan = Literal["w", "w+1"]
KVHeadGroups = Literal["consecutive", "strided"]
ModelKind = Literal["encoder_decoder", "decoder_only", "encoder_only"]
MHAInputs = Literal["cross", "self"]
MHACausal = Literal["argument", "always", "never"]
ALL_DTYPES = tuple(DTYPES)


@dataclass(frozen=True)
class Conventions:
    """Choices real implementations make differently; a difference here is not a bug.

    fully_masked_row: what a query row with no visible key returns: "zeros", "nan", any
    "finite" values, or "unspecified" (the property is then not applicable).
    causal_alignment: None when the target only supports equal query and key lengths with a
    causal mask (e.g. a kernel that refuses the case).
    deterministic: False when two identical calls may give different outputs (dropout left
    on, atomics); the harness then neither repeats calls to compare them nor minds the
    target drawing from torch's global RNG.
    score_scale: what the scores q.k are multiplied by before the softmax: "1/sqrt(d_k)"
    (the notes), "none" (T5-style: the scale is folded into the weights' initialisation) or
    a given positive constant. Checked in the declared form: the expected values use it.
    statistics_dtype: "float32" when the softmax and the LayerNorm statistics are computed in
    float32 whatever the build's dtype (many libraries do so on purpose). A float64 build is
    then checked at float32's tolerance, and a 16-bit build as before.
    layer_norm_variance: "biased" (divide by d_model, the notes) or "unbiased" (d_model - 1);
    layer_norm_eps: "inside_sqrt" ((x - mean) / sqrt(var + eps), the notes) or
    "outside_sqrt" ((x - mean) / (std + eps), as the Annotated Transformer does).
    exactness: "approximate" for attention that approximates the softmax on purpose (random
    features, locality hashing, linear attention, Nystrom landmarks): the properties that
    compare with the exact formula report the error they measure instead of failing, and
    every structural property (padding, causal leaks, permutations, batch independence)
    is checked as for exact attention.
    window_span: what a sliding window of w lets a query see: "w" keys, itself and the w - 1
    before it (Mistral's report, Hugging Face's sliding_window), or "w+1", itself and the w
    before it (FlashAttention's window_size=(w, 0)).
    kv_head_groups: which query heads share a key/value head under grouped-query attention:
    "consecutive" (heads j*group .. (j+1)*group - 1 share head j: the GQA paper, Llama's
    repeat_kv, repeat_interleave) or "strided" (head i reads head i mod g: a tiled repeat,
    as x-transformers does; a checkpoint in the consecutive layout needs its heads permuted).
    explanations: one line per convention that differs from the reference's, shown in the
    report (e.g. {"causal_alignment": "SDPA's is_causal is top-left aligned"}).
    """

    mask_polarity: MaskPolarity = "true_attends"
    causal_alignment: Alignment | None = "bottom_right"
    fully_masked_row: FullyMaskedRow = "zeros"
    weights: WeightsKind = "per_head"
    deterministic: bool = True
    score_scale: ScoreScale = "1/sqrt(d_k)"
    statistics_dtype: StatisticsDtype = "build"
    layer_norm_variance: LayerNormVariance = "biased"
    layer_norm_eps: LayerNormEps = "inside_sqrt"
    exactness: Exactness = "exact"
    window_span: WindowSpan = "w"
    kv_head_groups: KVHeadGroups = "consecutive"
    dtypes: tuple[str, ...] = ALL_DTYPES
    devices: tuple[str, ...] = ("cpu", "cuda")
    explanations: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_values(self)
        unknown = set(self.explanations) - set(CONVENTION_FIELDS)
        if unknown:
            raise ValueError(
                f"conventions: explanations for unknown fields {sorted(unknown)}; "
                f"known: {list(CONVENTION_FIELDS)}"
            )
        unexplained = [f for f in self.differences() if not self.explanations.get(f, "").strip()]
        if unexplained:
            raise ValueError(
                f"conventions: {unexplained} differ from the reference's; give each a "
                "one-line explanation in `explanations`"
            )

    def differences(self) -> list[str]:
        """The convention fields declared differently from the reference's."""
        reference = _REFERENCE_VALUES
        return [f for f in CONVENTION_FIELDS if getattr(self, f) != reference[f]]

    def scale(self, d_k: int) -> float:
        """The factor on q.k for this width, as declared."""
        if self.score_scale == "1/sqrt(d_k)":
            return 1.0 / math.sqrt(d_k)
        return 1.0 if self.score_scale == "none" else float(self.score_scale)


# The fields a property can check "as declared", and the reference's value of each.
CONVENTION_FIELDS = (
    "mask_polarity",
    "causal_alignment",
    "fully_masked_row",
    "weights",
    "deterministic",
    "score_scale",
    "statistics_dtype",
    "layer_norm_variance",
    "layer_norm_eps",
    "exactness",
    "window_span",
    "kv_head_groups",
)
_REFERENCE_VALUES: dict[str, object] = {
    "mask_polarity": "true_attends",
    "causal_alignment": "bottom_right",
    "fully_masked_row": "zeros",
    "weights": "per_head",
    "deterministic": True,
    "score_scale": "1/sqrt(d_k)",
    "statistics_dtype": "build",
    "layer_norm_variance": "biased",
    "layer_norm_eps": "inside_sqrt",
    "exactness": "exact",
    "window_span": "w",
    "kv_head_groups": "consecutive",
}
# The values each Literal field accepts; a typo is an error, never a silent default.
_CHOICES: dict[str, tuple[object, ...]] = {
    "mask_polarity": get_args(MaskPolarity),
    "causal_alignment": (*get_args(Alignment), None),
    "fully_masked_row": get_args(FullyMaskedRow),
    "weights": get_args(WeightsKind),
    "deterministic": (True, False),
    "statistics_dtype": get_args(StatisticsDtype),
    "layer_norm_variance": get_args(LayerNormVariance),
    "layer_norm_eps": get_args(LayerNormEps),
    "exactness": get_args(Exactness),
    "window_span": get_args(WindowSpan),
    "kv_head_groups": get_args(KVHeadGroups),
}


def _check_values(c: "Conventions") -> None:
    for name, choices in _CHOICES.items():
        if getattr(c, name) not in choices:
            raise ValueError(
                f"conventions: {name}={getattr(c, name)!r} is not one of {list(choices)}"
            )
    scale = c.score_scale
    if isinstance(scale, str):
        ok = scale in ("1/sqrt(d_k)", "none")
    else:
        ok = isinstance(scale, int | float) and not isinstance(scale, bool)
        ok = ok and math.isfinite(scale) and scale > 0
    if not ok:
        raise ValueError(
            f"conventions: score_scale={scale!r} is not '1/sqrt(d_k)', 'none' or a positive number"
        )
    unknown = [d for d in c.dtypes if d not in ALL_DTYPES]
    if unknown:
        raise ValueError(f"conventions: unknown dtypes {unknown}; known: {list(ALL_DTYPES)}")


class DeclarationTypeError(TypeError, ValueError):
    """A declaration of the wrong type (a non-callable factory or hook): a TypeError, as in
    every constructor, and a ValueError for code written when some constructors raised that."""


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


BEYOND_FIELDS = ("n_kv_heads", "window", "relative_positions")


def asked_beyond(spec: ModelSpec) -> dict[str, object]:
    """The fields beyond the notes that `spec` asks for (those not at their defaults)."""
    defaults = {"n_kv_heads": None, "window": None, "relative_positions": False}
    return {f: getattr(spec, f) for f in BEYOND_FIELDS if getattr(spec, f) != defaults[f]}


def built_beyond(model: object, spec: ModelSpec) -> None:
    """Say that `model` built what `spec` asks beyond the notes (the attributes above)."""
    for field_name, value in asked_beyond(spec).items():
        setattr(model, field_name, value)


class DeclarationWarning(FutureWarning):
    """A target relies on a declaration whose meaning changes in the next minor version: it
    keeps its old meaning until then, and every report names the declaration to add. (The
    runner puts each one into the result's `warnings`; the CLI prints them under the cell.)"""


def masks_padding(model: object) -> bool:
    """False when the model declares <PAD> an ordinary token (`masks_padding = False`);
    True when it says nothing. For an encoder (whose padding properties a pad_id has always
    switched on); a decoder's left padding asks `pads_left`."""
    return getattr(model, "masks_padding", None) is not False


def pads_left(model: object) -> bool:
    """Whether a decoder's padding properties may pad on the left: the model hides <PAD>
    keys from every query. Its `masks_padding` when it declares one. A model that declares
    `pad_id` and says nothing keeps the meaning a pad_id had in 0.1 for one minor version
    (0.2): right padding only, with a DeclarationWarning; from 0.3 it will mean left padding
    too. Without a pad_id there is no padding to place (True)."""
    declared = getattr(model, "masks_padding", None)
    pad_id = getattr(model, "pad_id", None)
    if declared is None and pad_id is not None:
        named = getattr(model, "__wrapped__", model)  # the model's own class, not a proxy's
        warnings.warn(
            f"{type(named).__name__} declares pad_id={pad_id!r} but not masks_padding: its "
            "decoder is padded on the right only, as in 0.1. From 0.3 a pad_id alone will "
            "promise that <PAD> keys are hidden from every query, and the left-padding "
            "properties will pad on the left. Declare masks_padding = True if the model "
            "hides <PAD> keys, masks_padding = False if it takes <PAD> as an ordinary token, "
            "or pad_id = None if it has no padding token.",
            DeclarationWarning,
            stacklevel=2,
        )
        return False
    return declared is not False


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


# The shortest context and smallest vocabulary a fixed model needs: the model properties draw
# sequences of up to 9 tokens (8 and a <START>) and up to 8 distinct real ids after the four
# special ones.
FIXED_MIN_LEN = 10
FIXED_MIN_VOCAB = 12


@dataclass(frozen=True)
class FixedModel:
    """One already-built model (a trained checkpoint, say), described by what the
    properties need to draw inputs for it: its kind, vocabulary size, context length and
    width. The factory is then called with this shape in the run's dtype and device (so a
    loader that casts with `.to(spec.device, spec.dtype)` also gives the float64 copy), and
    never asked for another size, another seed or no positional encoding: properties that
    need one are not applicable. Ids 0-3 are taken as the special tokens and the inputs as
    ids 4 .. vocab_size - 1. n_heads, d_ff and n_layers are passed on as stated (0: not
    stated)."""

    kind: ModelKind
    vocab_size: int
    max_len: int
    d_model: int
    n_heads: int = 0
    d_ff: int = 0
    n_layers: int = 0

    def __post_init__(self) -> None:
        if self.kind not in get_args(ModelKind):
            raise ValueError(
                f"fixed model: kind={self.kind!r}; expected one of {get_args(ModelKind)}"
            )
        if self.vocab_size < FIXED_MIN_VOCAB:
            raise ValueError(
                f"fixed model: vocab_size={self.vocab_size}; the model properties need at "
                f"least {FIXED_MIN_VOCAB} (4 special ids and 8 real ones)"
            )
        if self.max_len < FIXED_MIN_LEN:
            raise ValueError(
                f"fixed model: max_len={self.max_len}; the model properties need a context "
                f"of at least {FIXED_MIN_LEN} positions"
            )
        if self.d_model < 1:
            raise ValueError(f"fixed model: d_model={self.d_model}; expected >= 1")

    def spec(self, dtype: torch.dtype, device: torch.device) -> ModelSpec:
        return ModelSpec(
            kind=self.kind,
            vocab_size=self.vocab_size,
            d_model=self.d_model,
            n_heads=self.n_heads,
            d_ff=self.d_ff,
            n_layers=self.n_layers,
            max_len=self.max_len,
            positional=True,
            dtype=dtype,
            device=device,
            seed=0,
        )


@dataclass(frozen=True)
class Contract:
    """What one method of an adapter level promises, as the guard checks it on every call.

    returns: the types the result may have (a wrong type is an `output` fault; None: not
    checked, the properties that use the result say what is wrong with it); pure: no
    side effects and no RNG argument, so the guard makes the first calls twice and they must
    agree bit for bit (unless the target declares deterministic=False); recorded: the calls
    are kept for the pictures of a failing example; result: the promise in words."""

    returns: tuple[type, ...] | None
    pure: bool
    result: str
    recorded: bool = False


_MAYBE = (Tensor, type(None))
# Every method of every Protocol above, as the guard names its calls: LEVEL for a callable
# level, LEVEL.METHOD otherwise (a test keeps this table and the Protocols the same).
CONTRACTS: dict[str, Contract] = {
    "attention": Contract((tuple,), True, "(output (b, h, Lq, d_v), weights or None)", True),
    "mha": Contract((tuple,), True, "(output (b, Lq, d_model), weights or None)"),
    "mha.projections": Contract(None, False, "Projections or None"),
    "model.logits": Contract((Tensor,), True, "logits (b, t, vocab)"),
    "model.incremental_logits": Contract(_MAYBE, True, "logits (b, t, vocab) or None"),
    "model.logits_at": Contract(_MAYBE, True, "logits (b, t, vocab) or None"),
    "model.generate": Contract((Tensor,), False, "tokens (b, p + n), n <= max_new_tokens"),
    "model.loss": Contract((Tensor,), False, "a differentiable scalar"),
    "model.parameters": Contract(None, False, "every parameter by name"),
    "model.embedding_parameter": Contract((Tensor,), False, "M (vocab, d_model), the parameter"),
    "model.load_pretrained_embedding": Contract(None, False, "nothing (M is set)"),
    "layer": Contract((Tensor,), True, "x (b, t, d_model)"),
    "layer.zero_sublayer_outputs": Contract(None, False, "nothing (weights zeroed)"),
    "vocabulary.units": Contract(None, False, "every unit, specials left out"),
    "vocabulary.encode": Contract(None, False, "ids"),
    "vocabulary.pad_batch": Contract((Tensor,), False, "ids (b, length) int64"),
    "components.embedding_matrix": Contract(_MAYBE, False, "M (vocab, d_model) or None"),
    "components.embed": Contract(_MAYBE, True, "(b, t, d_model) or None"),
    "components.positional_table": Contract(_MAYBE, True, "(n, d_model) or None", True),
    "components.embed_with_positions": Contract(_MAYBE, True, "(b, t, d_model) or None"),
    "components.layer_norm": Contract(_MAYBE, True, "x's shape, or None"),
    "components.layer_norm_affine": Contract(_MAYBE, True, "x's shape, or None"),
    "components.feed_forward": Contract(_MAYBE, True, "(b, t, d_model) or None"),
    "components.rms_norm": Contract(_MAYBE, True, "x's shape, or None"),
    "components.gated_feed_forward": Contract(_MAYBE, True, "(b, t, d_model) or None"),
    "components.rotary": Contract(_MAYBE, True, "x's shape, or None"),
    "components.alibi_bias": Contract(_MAYBE, True, "(h, q, k) or (h, 1, k), or None"),
    "components.gated_feed_forward_weights": Contract(None, False, "3 weights or None"),
    "components.unembed": Contract(_MAYBE, True, "(b, t, vocab) or None"),
}
# The level each Protocol is reached at (as the guard names it).
PROTOCOL_LEVELS: dict[str, tuple[type, ...]] = {
    "attention": (AttentionFn,),
    "mha": (MHA,),
    "model": (Model, GenerativeModel, TrainableModel, PositionedModel),
    "layer": (Layer,),
    "vocabulary": (Vocabulary,),
    "components": (Components,),
}
# Each level's field of Target (what a target offers it with), which is also the name the
# registry's needs and the kill matrix's reach use for the level.
LEVEL_FIELDS: dict[str, str] = {
    "attention": "attention",
    "mha": "mha",
    "model": "model",
    "layer": "layers",
    "vocabulary": "vocabulary",
    "components": "components",
}


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
    layers: Callable[[LayerSpec], Layer] | None = None
    layer_kinds: tuple[LayerKind, ...] = ()
    layer_norms: tuple[NormPlacement, ...] = ("post",)  # the placements `layers` can build
    vocabulary: Callable[[], Vocabulary] | None = None
    # property id or glob -> (factor >= 1, written reason): every bound of the matching
    # properties is multiplied by factor, and the reason is shown in the report.
    loosen: Mapping[str, tuple[float, str]] = field(default_factory=dict)
    # How the `mha` module can be called; every multi-head property adapts to it, and one
    # that cannot is not applicable, with the reason.
    # mha_inputs: "cross" (x_query and x_kv separate, lengths may differ) or "self" (one
    #   input, as forward(x): the harness passes one tensor as both, lengths equal);
    # mha_causal: "argument" (the `causal` flag is honoured), "always" (causal on every call,
    #   as nanoGPT's CausalSelfAttention) or "never" (no causal mask, as an encoder's);
    # mha_key_padding: False when the module takes no key padding mask.
    mha_inputs: MHAInputs = "cross"
    mha_causal: MHACausal = "argument"
    mha_key_padding: bool = True
    # What the `model` factory can build. model_d_ff_ratio: the model's FFN width is this
    #   multiple of d_model whatever ModelSpec.d_ff says (GPT-style code fixes it at 4), so
    #   the harness passes d_ff = ratio * d_model (None: any d_ff, the harness uses 2x);
    # model_positional_off: the factory honours ModelSpec.positional=False (builds the
    #   model without positional encoding); the properties that need it are otherwise not
    #   applicable;
    # model_fixed: one already-built model of this shape, never resized (see FixedModel).
    model_d_ff_ratio: int | None = None
    model_positional_off: bool = True
    model_fixed: FixedModel | None = None

    def __post_init__(self) -> None:
        for pattern, (factor, reason) in self.loosen.items():
            if not (factor >= 1.0 and reason.strip()):
                raise ValueError(
                    f"target {self.name!r}: loosen[{pattern!r}] needs a factor >= 1 "
                    "and a written reason"
                )
        levels = (self.attention, self.mha, self.model, self.components, self.layers)
        if all(level is None for level in levels) and self.vocabulary is None:
            raise ValueError(
                f"target {self.name!r}: offers no adapter "
                "(attention, mha, model, components, layers or vocabulary)"
            )
        if self.model is not None and not self.model_kinds:
            raise ValueError(f"target {self.name!r}: a model factory needs model_kinds")
        if self.layers is not None and not (self.layer_kinds and self.layer_norms):
            raise ValueError(
                f"target {self.name!r}: a layer factory needs layer_kinds and layer_norms"
            )
        self._check_mha_form()
        self._check_model_form()

    def _check_model_form(self) -> None:
        declared = (self.model_d_ff_ratio, self.model_positional_off, self.model_fixed)
        if self.model is None and declared != (None, True, None):
            raise ValueError(
                f"target {self.name!r}: model_d_ff_ratio, model_positional_off and "
                "model_fixed describe the model factory, and the target offers none (model=None)"
            )
        ratio = self.model_d_ff_ratio
        if ratio is not None and not (isinstance(ratio, int) and ratio >= 1):
            raise ValueError(
                f"target {self.name!r}: model_d_ff_ratio={ratio!r}; expected a whole number >= 1"
            )
        fixed = self.model_fixed
        if fixed is not None and self.model_kinds != (fixed.kind,):
            raise ValueError(
                f"target {self.name!r}: model_kinds={self.model_kinds} but the fixed model is "
                f"{fixed.kind!r}; declare model_kinds=({fixed.kind!r},)"
            )

    def _check_mha_form(self) -> None:
        for name, allowed in (("mha_inputs", MHAInputs), ("mha_causal", MHACausal)):
            if getattr(self, name) not in get_args(allowed):
                raise ValueError(
                    f"target {self.name!r}: {name}={getattr(self, name)!r}; expected one of "
                    f"{list(get_args(allowed))}"
                )
        if not isinstance(self.mha_key_padding, bool):
            raise ValueError(
                f"target {self.name!r}: mha_key_padding={self.mha_key_padding!r}; expected "
                "True or False"
            )
        form = (self.mha_inputs, self.mha_causal, self.mha_key_padding)
        if self.mha is None and form != ("cross", "argument", True):
            raise ValueError(
                f"target {self.name!r}: mha_inputs, mha_causal and mha_key_padding describe "
                "the multi-head module, and the target offers none (mha=None)"
            )
        if self.mha_inputs == "cross" and self.mha_causal == "always":
            raise ValueError(
                f"target {self.name!r}: mha_causal='always' needs mha_inputs='self'; a "
                "cross-attention module is causal only on request (mha_causal='argument') "
                "or never"
            )


def to_polarity(attends: Tensor | None, polarity: MaskPolarity) -> Tensor | None:
    """The harness's masks are True = may attend; convert to what the target declared."""
    if attends is None:
        return None
    return attends if polarity == "true_attends" else ~attends
