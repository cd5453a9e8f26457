"""Model configuration: frozen dataclasses that validate themselves on construction.

Every mistake raises ValueError (or TypeError for a wrong type) naming the field and what
was expected, before any tensor is allocated. Clause ids from spec/ are cited where a value
comes from the notes.
"""

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import torch

ModelShape = Literal["encoder_decoder", "decoder_only", "encoder_only"]
# rotary and alibi are beyond the notes (EXT-ROPE-*, EXT-ALIBI-*): no table is added to the
# embeddings; attention sees the positions instead.
Positional = Literal["sinusoidal", "sinusoidal_concat", "learned", "none", "rotary", "alibi"]
RotaryPairing = Literal["half_split", "interleaved"]
NormPlacement = Literal["post", "pre"]
NormKind = Literal["layer_norm", "rms_norm"]  # RMSNorm: beyond the notes (EXT-RMSNORM-*)
FFNKind = Literal["mlp", "swiglu", "geglu"]  # gated: beyond the notes (EXT-GLU-FORMULA)
Activation = Literal["relu", "gelu", "gelu_tanh"]
AttentionPath = Literal["math", "fused"]
CausalAlignment = Literal["top_left", "bottom_right"]

DTYPES: dict[str, torch.dtype] = {
    "float64": torch.float64,
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}


def parse_dtype(name: str | torch.dtype, *, argument: str = "dtype") -> torch.dtype:
    """Accept a supported torch.dtype or its name; anything else is a ValueError."""
    if isinstance(name, torch.dtype):
        if name in DTYPES.values():
            return name
        raise ValueError(f"{argument}: {name} is not supported; expected one of {list(DTYPES)}")
    if not isinstance(name, str) or name.removeprefix("torch.") not in DTYPES:
        raise ValueError(f"{argument}: {name!r} is not supported; expected one of {list(DTYPES)}")
    return DTYPES[name.removeprefix("torch.")]


def parse_device(name: str | torch.device, *, argument: str = "device") -> torch.device:
    """Accept 'cpu', 'cuda' or 'cuda:N' when that device exists on this machine."""
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as err:
        raise ValueError(
            f"{argument}: {name!r} is not a device; expected 'cpu' or 'cuda[:N]'"
        ) from err
    if device.type == "cpu":
        return device
    if device.type != "cuda":
        raise ValueError(
            f"{argument}: device type {device.type!r} is not supported; use cpu or cuda"
        )
    if not torch.cuda.is_available():
        raise ValueError(f"{argument}: {name!r} was asked for but this machine has no CUDA device")
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(
            f"{argument}: {name!r} does not exist; this machine has "
            f"{torch.cuda.device_count()} CUDA device(s)"
        )
    return device


def _choice(name: str, value: object, allowed: Any) -> None:
    options = get_args(allowed)
    if value not in options:
        raise ValueError(f"{name}: {value!r} is not one of {list(options)}")


def _positive_int(name: str, value: object, *, zero_ok: bool = False) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
    if value < 0 or (value == 0 and not zero_ok):
        raise ValueError(f"{name}: expected {'>= 0' if zero_ok else '> 0'}, got {value}")


@dataclass(frozen=True)
class SpecialTokens:
    """Ids of the special tokens (spec GEN-START-TOKEN, TRAIN-PAD-IGNORED, EMB-SPECIAL-TOKENS)."""

    pad: int = 0
    start: int = 1
    end: int = 2
    unk: int = 3

    def __post_init__(self) -> None:
        ids = dataclasses.asdict(self)
        for name, value in ids.items():
            _positive_int(f"special.{name}", value, zero_ok=True)
        if len(set(ids.values())) != len(ids):
            raise ValueError(f"special: token ids must be distinct, got {ids}")


@dataclass(frozen=True, kw_only=True)
class TransformerConfig:
    """One Transformer. Defaults are the original base model of the paper (a seq2seq model).

    `n_encoder_layers` / `n_decoder_layers` must be 0 for the shapes that lack that stack,
    so that a config never holds a number that silently means nothing.
    """

    vocab_size: int
    shape: ModelShape = "encoder_decoder"
    d_model: int = 512
    n_heads: int = 8
    n_kv_heads: int | None = None  # grouped-query attention (EXT-GQA-*); None: n_heads
    d_ff: int = 2048
    n_encoder_layers: int = 6
    n_decoder_layers: int = 6
    max_len: int = 512  # rows of the positions table
    positional: Positional = "sinusoidal"
    rotary_pairing: RotaryPairing = "half_split"  # of positional="rotary" (EXT-ROPE-FORMULA)
    rotary_base: float = 10000.0
    rotary_dim: int | None = None  # channels rotated per head; None: all d_k
    sliding_window: int | None = None  # a query sees its last w keys, itself included
    norm: NormPlacement = "post"  # the 2017 original is post-LN
    norm_kind: NormKind = "layer_norm"
    activation: Activation = "relu"  # of the "mlp" FFN
    ffn: FFNKind = "mlp"
    attention_path: AttentionPath = "math"
    tie_unembedding: bool = True  # share M between embedding and un-embedding
    unembedding_bias: bool = False
    bias: bool = True  # biases of the linear maps inside the layers
    scale_embedding: bool = True  # multiply token embeddings by sqrt(d_model), as the paper does
    dropout: float = 0.1
    layer_norm_eps: float = 1e-5
    special: SpecialTokens = field(default_factory=SpecialTokens)
    dtype: torch.dtype = torch.float32
    device: str = "cpu"

    def __post_init__(self) -> None:
        _choice("shape", self.shape, ModelShape)
        _choice("positional", self.positional, Positional)
        _choice("norm", self.norm, NormPlacement)
        _choice("activation", self.activation, Activation)
        _choice("norm_kind", self.norm_kind, NormKind)
        _choice("ffn", self.ffn, FFNKind)
        _choice("attention_path", self.attention_path, AttentionPath)
        _choice("rotary_pairing", self.rotary_pairing, RotaryPairing)
        for name in ("vocab_size", "d_model", "n_heads", "d_ff", "max_len"):
            _positive_int(name, getattr(self, name))
        for name in ("n_encoder_layers", "n_decoder_layers"):
            _positive_int(name, getattr(self, name), zero_ok=True)
        self._check_stacks()
        if self.d_model % self.n_heads:
            raise ValueError(
                f"d_model: {self.d_model} is not divisible by n_heads={self.n_heads}; "
                "multi-head attention needs d_model = n_heads * d_k"
            )
        self._check_beyond_notes()
        if self.positional == "sinusoidal_concat" and self.d_model < 4:
            raise ValueError(
                f"d_model: the concatenated sinusoid layout needs d_model >= 4 (it divides by "
                f"d_model // 2 - 1 timescale steps), got {self.d_model}"
            )
        if not (isinstance(self.dropout, float | int) and 0.0 <= self.dropout < 1.0):
            raise ValueError(f"dropout: expected a probability in [0, 1), got {self.dropout!r}")
        if not (isinstance(self.layer_norm_eps, float) and self.layer_norm_eps > 0):
            raise ValueError(f"layer_norm_eps: expected a float > 0, got {self.layer_norm_eps!r}")
        if not isinstance(self.special, SpecialTokens):
            raise TypeError(f"special: expected SpecialTokens, got {type(self.special).__name__}")
        too_big = {
            k: v for k, v in dataclasses.asdict(self.special).items() if v >= self.vocab_size
        }
        if too_big:
            raise ValueError(f"special: ids {too_big} are outside vocab_size={self.vocab_size}")
        # A dtype may be given by name ("bfloat16"); it is stored as the torch.dtype.
        object.__setattr__(self, "dtype", parse_dtype(self.dtype, argument="dtype"))
        parse_device(self.device, argument="device")

    def _check_beyond_notes(self) -> None:
        """Grouped heads, rotary, ALiBi and windows: each value means something here."""
        if self.n_kv_heads is not None:
            _positive_int("n_kv_heads", self.n_kv_heads)
            if self.n_heads % self.n_kv_heads:
                raise ValueError(
                    f"n_kv_heads: {self.n_kv_heads} does not divide n_heads={self.n_heads}; "
                    "each key/value head serves a whole group of query heads"
                )
        if not (isinstance(self.rotary_base, float | int) and self.rotary_base > 1):
            raise ValueError(f"rotary_base: expected a number > 1, got {self.rotary_base!r}")
        if self.rotary_dim is not None:
            _positive_int("rotary_dim", self.rotary_dim)
            if self.rotary_dim % 2 or self.rotary_dim > self.d_k:
                raise ValueError(
                    f"rotary_dim: {self.rotary_dim} must be even and at most d_k={self.d_k}"
                )
        if self.positional != "rotary" and (
            self.rotary_dim is not None or self.rotary_pairing != "half_split"
        ):
            raise ValueError("rotary_dim, rotary_pairing: only apply with positional='rotary'")
        if self.positional == "rotary" and self.d_k % 2:
            raise ValueError(f"positional: rotary turns channel pairs; d_k={self.d_k} is odd")
        if self.sliding_window is not None:
            _positive_int("sliding_window", self.sliding_window)
        if self.shape != "decoder_only" and (
            self.sliding_window is not None or self.positional == "alibi"
        ):
            raise ValueError(
                "sliding_window, positional='alibi': defined here for causal decoder-only "
                f"models (as in Mistral and the ALiBi paper), not for shape={self.shape!r}"
            )

    @property
    def has_position_table(self) -> bool:
        """A table of max_len rows is added to the embeddings (rotary and ALiBi have none)."""
        return self.positional in ("sinusoidal", "sinusoidal_concat", "learned")

    @property
    def relative_positions(self) -> bool:
        """Positions reach the model only as offsets between query and key (rotary, ALiBi)."""
        return self.positional in ("rotary", "alibi")

    @property
    def kv_heads(self) -> int:
        return self.n_heads if self.n_kv_heads is None else self.n_kv_heads

    def _check_stacks(self) -> None:
        needs = {
            "encoder_decoder": ("n_encoder_layers", "n_decoder_layers"),
            "decoder_only": ("n_decoder_layers",),
            "encoder_only": ("n_encoder_layers",),
        }[self.shape]
        for name in ("n_encoder_layers", "n_decoder_layers"):
            value = getattr(self, name)
            if name in needs and value == 0:
                raise ValueError(f"{name}: a {self.shape} model needs at least one layer")
            if name not in needs and value != 0:
                raise ValueError(f"{name}: must be 0 for a {self.shape} model, got {value}")

    @property
    def d_k(self) -> int:
        """Width of one head (spec MHA-DMODEL-EQ-H-DK)."""
        return self.d_model // self.n_heads

    @property
    def attention_scale(self) -> float:
        """1 / sqrt(d_k) (spec SCALE-SQRT-DK)."""
        return 1.0 / math.sqrt(self.d_k)

    def replace(self, **changes: Any) -> "TransformerConfig":
        return dataclasses.replace(self, **changes)


def base_config(**overrides: Any) -> TransformerConfig:
    """The original base model: 6 + 6 layers, d_model 512, 8 heads of 64, d_ff 2048.

    37000 is the shared BPE vocabulary of the paper's English-German model.
    """
    return TransformerConfig(vocab_size=37000, **overrides)


def gpt2_small_config(**overrides: Any) -> TransformerConfig:
    """GPT-2 small: 12 pre-LN decoder layers, d_model 768, 12 heads of 64, learned positions,
    GELU (tanh form), un-embedding tied to the token embedding and without bias.
    124,439,808 parameters with 50257 tokens and 1024 positions.
    """
    values: dict[str, Any] = dict(
        vocab_size=50257,
        shape="decoder_only",
        d_model=768,
        n_heads=12,
        d_ff=3072,
        n_encoder_layers=0,
        n_decoder_layers=12,
        max_len=1024,
        positional="learned",
        norm="pre",
        activation="gelu_tanh",
        tie_unembedding=True,
        unembedding_bias=False,
        scale_embedding=False,
    )
    values.update(overrides)
    return TransformerConfig(**values)


def llama_tiny_config(**overrides: Any) -> TransformerConfig:
    """A tiny Llama-like decoder (beyond the notes): pre-norm RMSNorm, SwiGLU, rotary
    positions (half-split pairs, base 10000), grouped-query attention with 2 key/value heads
    for 4 query heads, no biases, an untied un-embedding, unscaled embeddings."""
    values: dict[str, Any] = dict(
        vocab_size=256,
        shape="decoder_only",
        d_model=64,
        n_heads=4,
        n_kv_heads=2,
        d_ff=172,
        n_encoder_layers=0,
        n_decoder_layers=2,
        max_len=128,
        positional="rotary",
        norm="pre",
        norm_kind="rms_norm",
        ffn="swiglu",
        bias=False,
        tie_unembedding=False,
        scale_embedding=False,
        dropout=0.0,
        layer_norm_eps=1e-6,
    )
    values.update(overrides)
    return TransformerConfig(**values)


def mistral_tiny_config(**overrides: Any) -> TransformerConfig:
    """The tiny Llama-like decoder with Mistral's sliding window: each query sees its last
    16 keys (itself included)."""
    return llama_tiny_config(**{"sliding_window": 16, **overrides})


PRESETS = {
    "base": base_config,
    "gpt2-small": gpt2_small_config,
    "llama-tiny": llama_tiny_config,
    "mistral-tiny": mistral_tiny_config,
}
