"""labml-nn's annotated Transformer parts at the layers and components levels: the pre-norm
`TransformerLayer` (encoder, decoder, decoder-only), `EmbeddingsWithPositionalEncoding`
(sinusoidal, interleaved, token embeddings times sqrt(d_model)), `FeedForward`, the
`Generator` and the nn.LayerNorm the layers use. Sequence first, masks (Lq, Lk, b) True = may
attend. No constructor exists for the layers and components levels. From the repository
root:

    transformer-spec check docs.public.labml_parts:target

Install: pip install -c constraints.txt --no-deps labml-nn "labml==0.4.168"   (0.5.1 tried)
"""

import copy
import math

import torch
from labml_nn.transformers.feed_forward import FeedForward  # type: ignore[import-untyped]
from labml_nn.transformers.mha import MultiHeadAttention  # type: ignore[import-untyped]
from labml_nn.transformers.models import (  # type: ignore[import-untyped]
    EmbeddingsWithPositionalEncoding,
    Generator,
    TransformerLayer,
)
from torch import Tensor, nn
from transformer_spec.properties import ComponentSpec, Conventions, Target
from transformer_spec.properties.targets import LayerSpec, PositionalLayout, Unsupported


class LabmlLayer:
    def __init__(self, spec: LayerSpec) -> None:
        torch.manual_seed(spec.seed)
        d, h = spec.d_model, spec.n_heads
        self.kind = spec.kind
        self.net = TransformerLayer(
            d_model=d,
            self_attn=MultiHeadAttention(h, d, dropout_prob=0.0),
            src_attn=MultiHeadAttention(h, d, dropout_prob=0.0) if spec.kind == "decoder" else None,
            feed_forward=FeedForward(d, spec.d_ff, dropout=0.0),
            dropout_prob=0.0,
        )
        self.net.to(device=spec.device, dtype=spec.dtype).eval()

    @torch.no_grad()
    def __call__(
        self,
        x: Tensor,
        memory: Tensor | None = None,
        *,
        key_padding: Tensor | None = None,
        memory_padding: Tensor | None = None,
    ) -> Tensor:
        (b, t, _), device = x.shape, x.device
        mask = torch.ones(t, t, b, dtype=torch.bool, device=device)
        if key_padding is not None:
            mask = mask & key_padding.T[None]
        if self.kind != "encoder":
            mask = mask & torch.ones(t, t, dtype=torch.bool, device=device).tril()[:, :, None]
        src = None if memory is None else memory.transpose(0, 1)
        src_mask = None if memory_padding is None else memory_padding.T[None]
        out: Tensor = self.net(x=x.transpose(0, 1), mask=mask, src=src, src_mask=src_mask)
        return out.transpose(0, 1)

    @torch.no_grad()
    def zero_sublayer_outputs(self) -> None:
        attentions = [self.net.self_attn, self.net.src_attn]
        for linear in [a.output for a in attentions if a is not None] + [
            self.net.feed_forward.layer2
        ]:
            linear.weight.zero_()
            linear.bias.zero_()


class LabmlComponents:
    positional_layout: PositionalLayout = "interleaved"

    def __init__(self, spec: ComponentSpec) -> None:
        torch.manual_seed(spec.seed)
        self.embedding_scale = math.sqrt(spec.d_model)
        if spec.d_model % 2:  # its table raises a shape error for an odd d_model
            self.embeddings = None
        else:
            with_positions = EmbeddingsWithPositionalEncoding(
                spec.d_model, spec.vocab_size, spec.max_len
            )
            without_positions = copy.deepcopy(with_positions)  # same weights, table zeroed
            without_positions.positional_encodings.zero_()
            self.embeddings = (with_positions, without_positions)
        self.norm = nn.LayerNorm([spec.d_model])  # what TransformerLayer uses
        self.ffn = FeedForward(spec.d_model, spec.d_ff, dropout=0.0)
        self.generator = Generator(spec.vocab_size, spec.d_model)
        for m in (*(self.embeddings or ()), self.norm, self.ffn, self.generator):
            m.to(device=spec.device, dtype=spec.dtype).eval()

    def _embeddings(
        self,
    ) -> tuple[EmbeddingsWithPositionalEncoding, EmbeddingsWithPositionalEncoding]:
        if self.embeddings is None:
            raise Unsupported("labml's sinusoidal table needs an even d_model")
        return self.embeddings

    def embedding_matrix(self) -> Tensor:
        m: Tensor = self._embeddings()[0].linear.weight.detach()
        return m

    @torch.no_grad()
    def embed(self, tokens: Tensor) -> Tensor:
        out: Tensor = self._embeddings()[1](tokens.T)
        return out.transpose(0, 1)

    def positional_table(self, n_positions: int, start: int = 0) -> Tensor:
        table: Tensor = self._embeddings()[0].positional_encodings[start : start + n_positions, 0]
        return table.detach()

    @torch.no_grad()
    def embed_with_positions(self, tokens: Tensor) -> Tensor:
        out: Tensor = self._embeddings()[0](tokens.T)
        return out.transpose(0, 1)

    @torch.no_grad()
    def layer_norm(self, x: Tensor) -> Tensor:
        out: Tensor = self.norm(x)
        return out

    @torch.no_grad()
    def feed_forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.ffn(x)
        return out

    @torch.no_grad()
    def unembed(self, x: Tensor) -> Tensor:
        out: Tensor = self.generator(x)
        return out


def target() -> Target:
    return Target(
        name="labml-parts",
        description="labml_nn.transformers.models parts: TransformerLayer, embeddings, FFN",
        conventions=Conventions(
            fully_masked_row="nan",
            explanations={
                "fully_masked_row": "softmax over a row of -inf gives NaN; the attention does "
                "not treat a query with no visible key"
            },
        ),
        layers=LabmlLayer,
        layer_kinds=("encoder", "decoder", "decoder_only"),
        layer_norms=("pre",),
        components=LabmlComponents,
    )
