"""The three model shapes: encoder-decoder, decoder-only and encoder-only (spec ARCH-*).

Each is embedding (+ positions) -> layers -> un-embedding. Token ids are validated before
any tensor work: integer dtype, (batch, seq), on the model's device, inside the vocabulary,
not longer than the positions table.
"""

from dataclasses import dataclass, field

import torch
from jaxtyping import Float, Int
from torch import Tensor, nn

from .config import TransformerConfig
from .embedding import TokenEmbedding
from .layers import Decoder, DecoderLayerCache, Encoder
from .masks import keep_tokens, padding_mask
from .positional import PositionalEncoding

_LOW_PRECISION = (torch.float16, torch.bfloat16)


class Embedder(nn.Module):
    """Token embedding plus positional encoding (added, same width), then dropout."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.tokens = TokenEmbedding(
            config.vocab_size, config.d_model, scale=config.scale_embedding
        )
        self.positions = PositionalEncoding(config.positional, config.max_len, config.d_model)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, tokens: Int[Tensor, "b n"], offset: int = 0) -> Float[Tensor, "b n d_model"]:
        out: Tensor = self.drop(self.positions(self.tokens(tokens), offset))
        return out


class UnEmbedding(nn.Module):
    """Linear map to vocabulary scores; softmax of those is the distribution over tokens:
    UnEmbed(x) = softmax(x W + b) (spec UNEMB-*). Here W is stored as (vocab, d_model), the
    layout of the embedding matrix M, so that the two can be tied."""

    def __init__(self, d_model: int, vocab_size: int, *, bias: bool) -> None:
        super().__init__()
        self.W = nn.Linear(d_model, vocab_size, bias=bias)

    def forward(self, x: Float[Tensor, "*batch d_model"]) -> Float[Tensor, "*batch vocab"]:
        out: Tensor = self.W(x)
        return out

    def distribution(self, x: Float[Tensor, "*batch d_model"]) -> Float[Tensor, "*batch vocab"]:
        return probabilities(self(x))


def probabilities(logits: Float[Tensor, "*batch vocab"]) -> Float[Tensor, "*batch vocab"]:
    acc = torch.float32 if logits.dtype in _LOW_PRECISION else logits.dtype
    return torch.softmax(logits, dim=-1, dtype=acc).to(logits.dtype)


@dataclass
class KVCache:
    """Per decoder layer keys/values, plus which decoded tokens are real (not <PAD>)."""

    layers: list[DecoderLayerCache]
    keep: Tensor | None = field(default=None)

    @property
    def length(self) -> int:
        return 0 if self.keep is None else self.keep.shape[1]

    def extend(self, keep: Tensor) -> Tensor:
        self.keep = keep if self.keep is None else torch.cat([self.keep, keep], dim=1)
        return self.keep


class Model(nn.Module):
    """What the three shapes share: config, embedding, un-embedding, input checks."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        if not isinstance(config, TransformerConfig):
            raise TypeError(f"config: expected TransformerConfig, got {type(config).__name__}")
        self.config = config
        self.embed = Embedder(config)
        self.unembed = UnEmbedding(config.d_model, config.vocab_size, bias=config.unembedding_bias)
        if config.tie_unembedding:
            self.unembed.W.weight = self.embed.tokens.M

    def _place(self) -> None:
        self.to(device=self.config.device, dtype=self.config.dtype)

    @property
    def device(self) -> torch.device:
        return self.embed.tokens.M.device

    def check_tokens(self, name: str, tokens: object, *, offset: int = 0) -> None:
        """ValueError/TypeError naming `name` for anything but valid token ids."""
        cfg = self.config
        if not isinstance(tokens, Tensor):
            raise TypeError(f"{name}: expected a Tensor of token ids, got {type(tokens).__name__}")
        if tokens.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"{name}: expected int64 or int32 token ids, got {tokens.dtype}")
        if tokens.dim() != 2 or tokens.shape[1] == 0:
            raise ValueError(
                f"{name}: expected shape (batch, seq) with seq >= 1, got {tuple(tokens.shape)}"
            )
        if tokens.device != self.device:
            raise ValueError(f"{name}: on {tokens.device} but the model is on {self.device}")
        if cfg.has_position_table and offset + tokens.shape[1] > cfg.max_len:
            raise ValueError(
                f"{name}: sequence reaches position {offset + tokens.shape[1]} but the positions "
                f"table has max_len={cfg.max_len}"
            )
        if torch.compiler.is_compiling():
            # The range check reads two values back from the device: under torch.compile that
            # is a graph break (and a sync) in every step, so a compiled model skips it; an id
            # out of range then fails in the embedding lookup instead.
            return
        lo, hi = int(tokens.min()), int(tokens.max())
        if lo < 0 or hi >= cfg.vocab_size:
            bad = lo if lo < 0 else hi
            raise ValueError(
                f"{name}: token id {bad} is outside the vocabulary [0, {cfg.vocab_size})"
            )

    def new_cache(self) -> KVCache:
        n = self.config.n_decoder_layers
        if n == 0:
            raise ValueError("cache: an encoder-only model has no decoder to cache")
        return KVCache(layers=[DecoderLayerCache() for _ in range(n)])


class EncoderDecoderModel(Model):
    """The original: the encoder reads the source, the decoder writes the target, attending
    to the encoder output in every layer. Source and target share one vocabulary/embedding."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__(config)
        self.encoder = Encoder(config)
        self.decoder = Decoder(config, cross_attention=True)
        self._place()

    def encode(self, src: Int[Tensor, "b s"]) -> tuple[Float[Tensor, "b s d_model"], Tensor]:
        """Encoder output H^E and the source's non-<PAD> positions."""
        self.check_tokens("src", src)
        keep = keep_tokens(src, self.config.special.pad)
        return self.encoder(self.embed(src), padding_mask(keep)), keep

    def decode(
        self,
        tgt: Int[Tensor, "b t"],
        memory: Float[Tensor, "b s d_model"],
        src_keep: Tensor,
        *,
        cache: KVCache | None = None,
    ) -> Float[Tensor, "b t vocab"]:
        offset = cache.length if cache is not None else 0
        self.check_tokens("tgt", tgt, offset=offset)
        if tgt.shape[0] != memory.shape[0]:
            raise ValueError(
                f"tgt: batch {tgt.shape[0]} differs from the source batch {memory.shape[0]}"
            )
        keep = keep_tokens(tgt, self.config.special.pad)
        keep = cache.extend(keep) if cache is not None else keep
        h = self.decoder(
            self.embed(tgt, offset),
            memory,
            self_mask=padding_mask(keep),
            memory_mask=padding_mask(src_keep),
            cache=cache.layers if cache is not None else None,
            offset=offset,
        )
        out: Tensor = self.unembed(h)
        return out

    def forward(
        self, src: Int[Tensor, "b s"], tgt: Int[Tensor, "b t"]
    ) -> Float[Tensor, "b t vocab"]:
        memory, src_keep = self.encode(src)
        return self.decode(tgt, memory, src_keep)


class DecoderOnlyModel(Model):
    """GPT-style: causal self-attention and feed-forward only, no encoder."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__(config)
        self.decoder = Decoder(config, cross_attention=False)
        self._place()

    def forward(
        self, tokens: Int[Tensor, "b t"], *, cache: KVCache | None = None, start: int = 0
    ) -> Float[Tensor, "b t vocab"]:
        """`start`: the position of the first token ever fed (0 unless the sequence is a
        window of a longer one); a cache's tokens follow it."""
        if not isinstance(start, int) or start < 0:
            raise ValueError(f"start: expected a position >= 0, got {start!r}")
        offset = start + (cache.length if cache is not None else 0)
        self.check_tokens("tokens", tokens, offset=offset)
        keep = keep_tokens(tokens, self.config.special.pad)
        keep = cache.extend(keep) if cache is not None else keep
        h = self.decoder(
            self.embed(tokens, offset),
            self_mask=padding_mask(keep),
            cache=cache.layers if cache is not None else None,
            offset=offset,
        )
        out: Tensor = self.unembed(h)
        return out


class EncoderOnlyModel(Model):
    """BERT-style: all-to-all self-attention; a distribution over tokens at every position."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__(config)
        self.encoder = Encoder(config)
        self._place()

    def encode(self, tokens: Int[Tensor, "b s"]) -> Float[Tensor, "b s d_model"]:
        self.check_tokens("tokens", tokens)
        keep = keep_tokens(tokens, self.config.special.pad)
        out: Tensor = self.encoder(self.embed(tokens), padding_mask(keep))
        return out

    def forward(self, tokens: Int[Tensor, "b s"]) -> Float[Tensor, "b s vocab"]:
        out: Tensor = self.unembed(self.encode(tokens))
        return out


AnyModel = EncoderDecoderModel | DecoderOnlyModel | EncoderOnlyModel


def build_model(config: TransformerConfig) -> AnyModel:
    """The model of config.shape, on config.device in config.dtype."""
    if not isinstance(config, TransformerConfig):
        raise TypeError(f"config: expected TransformerConfig, got {type(config).__name__}")
    if config.shape == "encoder_decoder":
        return EncoderDecoderModel(config)
    if config.shape == "decoder_only":
        return DecoderOnlyModel(config)
    return EncoderOnlyModel(config)


def count_parameters(model: nn.Module) -> int:
    """Trainable and frozen parameters, each shared tensor once (tied weights count once)."""
    return sum(p.numel() for p in model.parameters())
