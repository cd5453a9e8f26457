"""labml-nn's annotated encoder-decoder Transformer (labml_nn.transformers.models: pre-norm
TransformerLayer, Encoder, Decoder, EmbeddingsWithPositionalEncoding, Generator) through
`lm_target` (kind encoder_decoder). The modules are sequence first, (L, b), and take masks
(Lq, Lk, b) True = may attend, so a small module turns (src, tokens) into logits; the library
has no generation loop, loss or cache: the harness provides the first two, and incremental
decoding is not applicable. From the repository root:

    transformer-spec check docs.public.labml_encdec:target

Install: pip install -c constraints.txt --no-deps labml-nn "labml==0.4.168"   (0.5.1 tried)
"""

import torch
from labml_nn.transformers.feed_forward import FeedForward  # type: ignore[import-untyped]
from labml_nn.transformers.mha import MultiHeadAttention  # type: ignore[import-untyped]
from labml_nn.transformers.models import (  # type: ignore[import-untyped]
    Decoder,
    EmbeddingsWithPositionalEncoding,
    Encoder,
    EncoderDecoder,
    Generator,
    TransformerLayer,
)
from torch import Tensor, nn
from transformer_spec.properties import ModelSpec, Target, lm_target

PAD = 0


class BatchFirst(nn.Module):
    """module(src, tokens) -> logits (b, t, vocab), with the masks built: src keys that are
    not <PAD>, and the causal triangle over the target."""

    def __init__(self, net: EncoderDecoder) -> None:
        super().__init__()
        self.net = net

    def forward(self, src: Tensor, tokens: Tensor) -> Tensor:
        t = tokens.shape[1]
        src_mask = (src != PAD).T[None]  # (1, s, b): keys that are not padding
        causal = torch.ones(t, t, dtype=torch.bool, device=tokens.device).tril()[:, :, None]
        memory = self.net.encode(src.T, src_mask)
        out: Tensor = self.net.generator(self.net.decode(memory, src_mask, tokens.T, causal))
        return out.transpose(0, 1)


def build(spec: ModelSpec) -> BatchFirst:
    d, h = spec.d_model, spec.n_heads

    def layer(cross: bool) -> TransformerLayer:
        return TransformerLayer(
            d_model=d,
            self_attn=MultiHeadAttention(h, d, dropout_prob=0.0),
            src_attn=MultiHeadAttention(h, d, dropout_prob=0.0) if cross else None,
            feed_forward=FeedForward(d, spec.d_ff, dropout=0.0),
            dropout_prob=0.0,
        )

    embed = [EmbeddingsWithPositionalEncoding(d, spec.vocab_size, spec.max_len) for _ in "st"]
    if not spec.positional:
        for e in embed:
            e.positional_encodings.zero_()
    return BatchFirst(
        EncoderDecoder(
            Encoder(layer(False), spec.n_layers),
            Decoder(layer(True), spec.n_layers),
            *embed,
            Generator(spec.vocab_size, d),
        )
    )


def target() -> Target:
    return lm_target(
        "labml-encdec",
        build,
        kind="encoder_decoder",
        description="labml_nn.transformers.models.EncoderDecoder, pre-norm, sinusoidal",
        pad_id=PAD,
        embedding="net.tgt_embed.linear.weight",  # src_embed and the generator are (vocab, d) too
        positional_off=True,
    )
