"""The reference as built-in targets: `reference-math` (the formula, the ground truth) and
`reference-fused` (torch SDPA), each at attention, multi-head and whole-model level."""

import functools
import math
import weakref
from collections.abc import Sequence

import torch
from torch import Tensor
from transformer_spec.properties.targets.conventions import Conventions
from transformer_spec.properties.targets.declarations import built_beyond
from transformer_spec.properties.targets.levels import (
    ComponentSpec,
    LayerSpec,
    MHASpec,
    ModelSpec,
    PositionalLayout,
    Projections,
    seed_torch,
)
from transformer_spec.properties.targets.model_pool import ModelPool, _copy
from transformer_spec.properties.targets.protocols import Target
from transformer_spec.reference.config import CausalAlignment, Positional

from transformer_spec import reference as R


class ReferenceAttention:
    """The reference attention function behind the harness's attention-level protocol."""

    def __init__(self, path: str, alignment: CausalAlignment = "bottom_right") -> None:
        self.path, self.alignment = path, alignment

    def __call__(
        self, q: Tensor, k: Tensor, v: Tensor, *, mask: Tensor | None, causal: bool
    ) -> tuple[Tensor, Tensor | None]:
        q_len, k_len = q.shape[-2], k.shape[-2]
        c = (
            R.causal_mask(q_len, k_len, alignment=self.alignment, device=q.device)
            if causal
            else None
        )
        full = R.combine_masks(mask, c)
        if self.path == "math":
            out, weights = R.scaled_dot_product_attention(q, k, v, mask=full)
            return out, weights
        return R.fused_attention(q, k, v, mask=full), None


class ReferenceMHA:
    def __init__(
        self, spec: MHASpec, path: str, alignment: CausalAlignment = "bottom_right"
    ) -> None:
        seed_torch(spec.seed)
        self.module = R.MultiHeadAttention(
            spec.d_model,
            spec.n_heads,
            path=path,  # type: ignore[arg-type]
            causal_alignment=alignment,
            n_kv_heads=spec.n_kv_heads,
        )
        self.module.to(device=spec.device, dtype=spec.dtype).eval()

    @torch.no_grad()
    def __call__(
        self, x_query: Tensor, x_kv: Tensor, *, key_padding: Tensor | None, causal: bool
    ) -> tuple[Tensor, Tensor | None]:
        mask = R.padding_mask(key_padding) if key_padding is not None else None
        out, weights = self.module(
            x_query, x_kv, mask=mask, causal=causal, need_weights=self.module.path == "math"
        )
        return out, weights

    def projections(self) -> Projections:
        m = self.module
        return Projections(
            W_Q=m.W_Q.weight.T,
            W_K=m.W_K.weight.T,
            W_V=m.W_V.weight.T,
            W_O=m.W_O.weight.T,
            b_Q=m.W_Q.bias,
            b_K=m.W_K.bias,
            b_V=m.W_V.bias,
            b_O=m.W_O.bias,
        )


class ReferenceModel:
    def __init__(self, spec: ModelSpec, path: str, pool: "ModelPool | None" = None) -> None:
        layers = {
            "encoder_decoder": (spec.n_layers, spec.n_layers),
            "decoder_only": (0, spec.n_layers),
            "encoder_only": (spec.n_layers, 0),
        }[spec.kind]
        config = R.TransformerConfig(
            vocab_size=spec.vocab_size,
            shape=spec.kind,
            d_model=spec.d_model,
            n_heads=spec.n_heads,
            d_ff=spec.d_ff,
            n_encoder_layers=layers[0],
            n_decoder_layers=layers[1],
            max_len=spec.max_len,
            positional=_positional(spec),
            n_kv_heads=spec.n_kv_heads,
            sliding_window=spec.window,
            dropout=0.1,  # inert in eval mode, where the harness runs it (a leak shows)
            attention_path=path,  # type: ignore[arg-type]
            dtype=spec.dtype,
            device=str(spec.device),
        )
        reused = pool.take((spec, path)) if pool is not None else None
        if reused is None:
            seed_torch(spec.seed)
            self.model: R.AnyModel = R.build_model(config).eval()
        else:
            self.model = reused[0]
        if pool is not None:  # back to the pool when nothing holds this model any more
            built = _copy(self.model) if reused is None else reused[1]
            weakref.finalize(self, pool.give, (spec, path), self.model, built)
        self.pad_id = config.special.pad
        self.masks_padding = True  # the reference hides <PAD> keys from every query
        self.start_id, self.end_id = config.special.start, config.special.end
        built_beyond(self, spec)

    @torch.no_grad()
    def logits(self, tokens: Tensor, src: Tensor | None = None) -> Tensor:
        if isinstance(self.model, R.EncoderDecoderModel):
            assert src is not None, "an encoder-decoder model needs src"
            out: Tensor = self.model(src, tokens)
        else:
            out = self.model(tokens)
        return out

    @torch.no_grad()
    def incremental_logits(self, tokens: Tensor, src: Tensor | None = None) -> Tensor | None:
        if isinstance(self.model, R.EncoderOnlyModel):
            return None
        return R.incremental_logits(self.model, tokens, src=src)

    @torch.no_grad()
    def logits_at(self, tokens: Tensor, start: int) -> Tensor | None:
        if not isinstance(self.model, R.DecoderOnlyModel):
            return None
        out: Tensor = self.model(tokens, start=start)
        return out

    def generate(
        self,
        prompt: Tensor | None,
        src: Tensor | None,
        max_new_tokens: int,
        *,
        sample: bool,
        generator: torch.Generator | None,
    ) -> Tensor:
        if prompt is None and src is None:  # a decoder-only model: one sequence
            prompt = torch.full((1, 1), self.start_id, device=self.model.device)
        return R.generate(
            self.model,
            max_new_tokens=max_new_tokens,
            prompt=prompt,
            src=src,
            sample=sample,
            generator=generator,
        )

    def loss(self, tokens: Tensor, src: Tensor | None = None) -> Tensor:
        return R.teacher_forced_loss(self.model, tokens, src=src)

    def parameters(self) -> dict[str, Tensor]:
        return dict(self.model.named_parameters())

    def embedding_parameter(self) -> Tensor:
        m: Tensor = self.model.embed.tokens.M
        return m

    def load_pretrained_embedding(self, matrix: Tensor, *, freeze: bool) -> None:
        self.model.embed.tokens.load_pretrained(matrix, freeze=freeze)


def _positional(spec: ModelSpec) -> Positional:
    """Sinusoids as the notes have them; rotary (the Llama family's) when only relative
    positions are asked for; none for the position-free properties."""
    if not spec.positional:
        return "none"
    return "rotary" if spec.relative_positions else "sinusoidal"


class ReferenceLayer:
    """One reference encoder or decoder layer (attention path `path`), in eval mode."""

    def __init__(self, spec: LayerSpec, path: str) -> None:
        config = R.TransformerConfig(
            vocab_size=8,
            d_model=spec.d_model,
            n_heads=spec.n_heads,
            d_ff=spec.d_ff,
            norm=spec.norm,
            dropout=0.1,  # inert in eval mode
            attention_path=path,  # type: ignore[arg-type]
        )
        seed_torch(spec.seed)
        layer = (
            R.EncoderLayer(config)
            if spec.kind == "encoder"
            else R.DecoderLayer(config, cross_attention=spec.kind == "decoder")
        )
        self.layer = layer.to(device=spec.device, dtype=spec.dtype).eval()
        self.norm_placement = spec.norm

    @torch.no_grad()
    def __call__(
        self,
        x: Tensor,
        memory: Tensor | None = None,
        *,
        key_padding: Tensor | None = None,
        memory_padding: Tensor | None = None,
    ) -> Tensor:
        mask = R.padding_mask(key_padding) if key_padding is not None else None
        if isinstance(self.layer, R.EncoderLayer):
            out: Tensor = self.layer(x, mask)
            return out
        memory_mask = R.padding_mask(memory_padding) if memory_padding is not None else None
        out = self.layer(x, memory, self_mask=mask, memory_mask=memory_mask)
        return out

    @torch.no_grad()
    def zero_sublayer_outputs(self) -> None:
        for module in self.layer.modules():
            if isinstance(module, R.MultiHeadAttention):
                zero_linear(module.W_O)
            elif isinstance(module, R.FeedForward):
                zero_linear(module.W_2)


def zero_linear(linear: torch.nn.Linear) -> None:
    linear.weight.zero_()
    if linear.bias is not None:
        linear.bias.zero_()


# A small fixed word list: the reference vocabulary is built from units, not trained.
_WORDS = [
    "the",
    "a",
    "cat",
    "dog",
    "sat",
    "on",
    "mat",
    "ran",
    "to",
    "big",
    "small",
    "red",
    "blue",
    "and",
    "is",
    "was",
    "it",
]


class ReferenceVocabulary:
    separator = " "

    def __init__(self) -> None:
        self.vocab = R.Vocabulary(_WORDS)
        self.pad_id, self.unk_id = self.vocab.special.pad, self.vocab.special.unk

    def units(self) -> list[str]:
        return list(_WORDS)

    def encode(self, text: str) -> list[int]:
        return self.vocab.encode(text)

    def pad_batch(self, sequences: Sequence[Sequence[int]]) -> Tensor:
        return self.vocab.pad_batch(sequences)


_PE_KIND: dict[PositionalLayout, Positional] = {
    "interleaved": "sinusoidal",
    "concat_t2t": "sinusoidal_concat",
    "learned": "learned",
    "none": "none",
}


class ReferenceComponents:
    """The reference's embedding, positional encoding, LayerNorm, FFN and un-embedding, each
    built on its own (float64 tables cast once, as the model does)."""

    def __init__(self, spec: ComponentSpec, layout: PositionalLayout = "interleaved") -> None:
        seed_torch(spec.seed)
        self.spec = spec
        self.positional_layout: PositionalLayout = layout
        # The paper's embedding scale sqrt(d_model) (section 3.4), declared so it is checked.
        self.embedding_scale = math.sqrt(spec.d_model)
        self.embedding = R.TokenEmbedding(spec.vocab_size, spec.d_model, scale=True).to(
            spec.device, spec.dtype
        )
        self.positions = R.PositionalEncoding(_PE_KIND[layout], spec.max_len, spec.d_model).to(
            spec.device, spec.dtype
        )
        self.norm = R.LayerNorm(spec.d_model).to(spec.device, spec.dtype)
        self.layer_norm_eps = self.norm.eps  # declared, so its placement is checked exactly
        self.ffn = R.FeedForward(spec.d_model, spec.d_ff).to(spec.device, spec.dtype)
        # Beyond the notes: RMSNorm and SwiGLU, as Llama-like models use them.
        self.rms = R.RMSNorm(spec.d_model).to(spec.device, spec.dtype)
        self.rms_norm_eps = self.rms.eps
        self.gated = R.GatedFeedForward(spec.d_model, spec.d_ff).to(spec.device, spec.dtype)
        self.gated_activation = "silu"
        self.rotary_pairing, self.rotary_base, self.rotary_dim = "half_split", 10000.0, None
        self.unembedding = R.UnEmbedding(spec.d_model, spec.vocab_size, bias=True).to(
            spec.device, spec.dtype
        )
        self.d_model, self.dtype, self.device = spec.d_model, spec.dtype, spec.device

    def embedding_matrix(self) -> Tensor:
        m: Tensor = self.embedding.M.detach()
        return m

    @torch.no_grad()
    def embed(self, tokens: Tensor) -> Tensor:
        out: Tensor = self.embedding(tokens)
        return out

    def positional_table(self, n_positions: int, start: int = 0) -> Tensor | None:
        """From the reference's own formula of the table it built, at offset `start`
        (float64, rounded once)."""
        if self.positions.kind == "sinusoidal":
            table = R.sinusoidal_interleaved(n_positions, self.d_model, start=start)
        elif self.positions.kind == "sinusoidal_concat":
            table = R.sinusoidal_concat(n_positions, self.d_model, start_index=start)
        elif self.positions.table is not None:
            table = self.positions.table[start : start + n_positions].detach()
        else:
            return None
        return table.to(self.device, self.dtype)

    @torch.no_grad()
    def embed_with_positions(self, tokens: Tensor) -> Tensor:
        out: Tensor = self.positions(self.embedding(tokens))
        return out

    @torch.no_grad()
    def layer_norm(self, x: Tensor) -> Tensor:
        out: Tensor = self.norm(x)
        return out

    @torch.no_grad()
    def layer_norm_affine(self, x: Tensor, gain: Tensor, bias: Tensor) -> Tensor:
        """A fresh LayerNorm like `self.norm`, its parameters set to gain and bias."""
        norm = R.LayerNorm(self.d_model, eps=self.norm.eps).to(self.device, self.dtype)
        norm.gain.copy_(gain)
        norm.bias.copy_(bias)
        out: Tensor = norm(x)
        return out

    @torch.no_grad()
    def feed_forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.ffn(x)
        return out

    @torch.no_grad()
    def unembed(self, x: Tensor) -> Tensor:
        out: Tensor = self.unembedding(x)
        return out

    @torch.no_grad()
    def rms_norm(self, x: Tensor) -> Tensor:
        out: Tensor = self.rms(x)
        return out

    @torch.no_grad()
    def gated_feed_forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.gated(x)
        return out

    @torch.no_grad()
    def rotary(self, x: Tensor, positions: Tensor) -> Tensor:
        return R.apply_rotary(x, positions, pairing="half_split", base=10000.0)

    def alibi_bias(self, n_heads: int, length: int) -> Tensor:
        return R.alibi_bias(n_heads, length, length, device=self.spec.device).to(self.spec.dtype)

    def gated_feed_forward_weights(self) -> tuple[Tensor, Tensor, Tensor]:
        g = self.gated
        return g.W_gate.weight.detach().T, g.W_up.weight.detach().T, g.W_down.weight.detach().T


def reference_target(path: str) -> Target:
    conventions = (
        Conventions()
        if path == "math"
        else Conventions(
            weights="none",
            explanations={"weights": "the fused path calls torch SDPA, which returns no weights"},
        )
    )
    return Target(
        name=f"reference-{path}",
        description=f"transformer_spec.reference, attention_path={path!r}",
        conventions=conventions,
        attention=ReferenceAttention(path),
        mha=lambda spec: ReferenceMHA(spec, path),
        model=functools.partial(ReferenceModel, path=path, pool=ModelPool()),
        model_kinds=("encoder_decoder", "decoder_only", "encoder_only"),
        components=ReferenceComponents,
        layers=lambda spec: ReferenceLayer(spec, path),
        layer_kinds=("encoder", "decoder", "decoder_only"),
        layer_norms=("post", "pre"),
        vocabulary=ReferenceVocabulary,
    )


def reference_top_left() -> Target:
    """The reference's math path declaring top-left causal alignment, the causal mask's other
    branch, which the two built-in targets (bottom-right) never run: attention and multi-head
    levels (the models align bottom-right). Not a table target; the mutation run checks it
    (tools/mutation_suite.py), and so can anyone as
    `transformer_spec.properties.targets.builtin:reference_top_left`."""
    return Target(
        name="reference-top-left",
        description="transformer_spec.reference, math path, causal_alignment='top_left'",
        conventions=Conventions(
            causal_alignment="top_left",
            explanations={
                "causal_alignment": "query i sees keys 0..i (torch SDPA's is_causal): the "
                "reference's other causal mask, run here so that it is checked"
            },
        ),
        attention=ReferenceAttention("math", "top_left"),
        mha=lambda spec: ReferenceMHA(spec, "math", "top_left"),
    )


BUILTIN_TARGETS = {
    name: lambda name=name: reference_target(name.split("-")[1])
    for name in ("reference-math", "reference-fused")
}
