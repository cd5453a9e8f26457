"""labml-nn's annotated encoder-decoder Transformer (labml_nn.transformers.models: pre-norm
TransformerLayer, Encoder, Decoder, EmbeddingsWithPositionalEncoding, Generator) as a
model-level target. The modules are sequence first, (L, b), and take masks (Lq, Lk, b) True =
may attend; the library has no generation loop, loss or cache, so the adapter writes the
first two and has no incremental decoding. From the repository root:

    transformer-spec check docs.public.labml_encdec:target

Install: pip install -c constraints.txt --no-deps labml-nn "labml==0.4.168"   (0.5.1 tried)
"""

import torch
import torch.nn.functional as F
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
from torch import Tensor
from transformer_spec.properties import ModelSpec, Target

PAD, START, END = 0, 1, 2


class LabmlEncDec:
    pad_id, start_id, end_id = PAD, START, END

    def __init__(self, spec: ModelSpec) -> None:
        torch.manual_seed(spec.seed)
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
        self.net = EncoderDecoder(
            Encoder(layer(False), spec.n_layers),
            Decoder(layer(True), spec.n_layers),
            *embed,
            Generator(spec.vocab_size, d),
        )
        self.net.to(device=spec.device, dtype=spec.dtype).eval()

    def _logits(self, tokens: Tensor, src: Tensor | None) -> Tensor:
        assert src is not None, "an encoder-decoder model needs src"
        t = tokens.shape[1]
        src_mask = (src != PAD).T[None]  # (1, s, b): keys that are not padding
        causal = torch.ones(t, t, dtype=torch.bool, device=tokens.device).tril()[:, :, None]
        memory = self.net.encode(src.T, src_mask)
        out: Tensor = self.net.generator(self.net.decode(memory, src_mask, tokens.T, causal))
        return out.transpose(0, 1)

    @torch.no_grad()
    def logits(self, tokens: Tensor, src: Tensor | None = None) -> Tensor:
        return self._logits(tokens, src)

    def incremental_logits(self, tokens: Tensor, src: Tensor | None = None) -> None:
        return None  # no KV cache

    @torch.no_grad()
    def generate(
        self,
        prompt: Tensor | None,
        src: Tensor | None,
        max_new_tokens: int,
        *,
        sample: bool,
        generator: torch.Generator | None,
    ) -> Tensor:
        assert src is not None, "an encoder-decoder model needs src"
        if prompt is None:
            prompt = torch.full((src.shape[0], 1), START, dtype=torch.long, device=src.device)
        out, done = prompt, torch.zeros(src.shape[0], dtype=torch.bool, device=src.device)
        for _ in range(max_new_tokens):
            last = self._logits(out, src)[:, -1].float()
            if sample:
                chosen = torch.multinomial(last.softmax(-1), 1, generator=generator)[:, 0]
            else:
                chosen = last.argmax(-1)
            out = torch.cat([out, chosen.masked_fill(done, PAD)[:, None]], dim=1)
            done |= chosen == END
            if bool(done.all()):
                break
        return out

    def loss(self, tokens: Tensor, src: Tensor | None = None) -> Tensor:
        logits = self._logits(tokens[:, :-1], src)
        return F.cross_entropy(logits.transpose(1, 2), tokens[:, 1:], ignore_index=PAD)

    def parameters(self) -> dict[str, Tensor]:
        return dict(self.net.named_parameters())

    def embedding_parameter(self) -> Tensor:
        weight: Tensor = self.net.tgt_embed.linear.weight
        return weight

    def load_pretrained_embedding(self, matrix: Tensor, *, freeze: bool) -> None:
        with torch.no_grad():
            self.embedding_parameter().copy_(matrix)
        self.embedding_parameter().requires_grad_(not freeze)


def target() -> Target:
    return Target(
        name="labml-encdec",
        description="labml_nn.transformers.models.EncoderDecoder, pre-norm, sinusoidal",
        model=LabmlEncDec,
        model_kinds=("encoder_decoder",),
    )
