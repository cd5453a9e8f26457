"""x-transformers' encoder-decoder `XTransformer` as a model-level target, with the decoder's
KV cache, its loss and greedy generation. From the repository root:

    transformer-spec check docs.public.x_transformers_encdec:target

Install: pip install -c constraints.txt x-transformers   (2.31.10 tried)
"""

import torch
from torch import Tensor
from transformer_spec.properties import Conventions, ModelSpec, Target
from transformer_spec.properties.targets import Unsupported
from x_transformers import XTransformer  # type: ignore[import-untyped]

PAD, START, END = 0, 1, 2


class XEncDec:
    pad_id, start_id, end_id = PAD, START, END

    def __init__(self, spec: ModelSpec) -> None:
        torch.manual_seed(spec.seed)
        stack = {
            "num_tokens": spec.vocab_size,
            "max_seq_len": spec.max_len,
            "depth": spec.n_layers,
            "heads": spec.n_heads,
            "attn_dim_head": spec.d_model // spec.n_heads,
            "ff_mult": spec.d_ff / spec.d_model,
            "use_abs_pos_emb": spec.positional,
        }
        kwargs = {f"{side}_{k}": v for side in ("enc", "dec") for k, v in stack.items()}
        self.net = XTransformer(dim=spec.d_model, pad_value=PAD, ignore_index=PAD, **kwargs)
        self.net.to(device=spec.device, dtype=spec.dtype).eval()

    def _encode(self, src: Tensor | None) -> Tensor:
        assert src is not None, "an encoder-decoder model needs src"
        out: Tensor = self.net.encoder(src, mask=src != PAD, return_embeddings=True)
        return out

    @torch.no_grad()
    def logits(self, tokens: Tensor, src: Tensor | None = None) -> Tensor:
        memory = self._encode(src)
        out: Tensor = self.net.decoder.net(tokens, context=memory, context_mask=src != PAD)
        return out

    @torch.no_grad()
    def incremental_logits(self, tokens: Tensor, src: Tensor | None = None) -> Tensor:
        memory, cache, steps = self._encode(src), None, []
        for t in range(tokens.shape[1]):
            out, cache = self.net.decoder.net(
                tokens[:, : t + 1],
                context=memory,
                context_mask=src != PAD,
                cache=cache,
                return_intermediates=True,
            )
            steps.append(out[:, -1:])
        return torch.cat(steps, dim=1)

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
        if sample:
            raise Unsupported("x-transformers samples from torch's global RNG (no generator)")
        assert src is not None, "an encoder-decoder model needs src"
        if prompt is None:
            prompt = torch.full((src.shape[0], 1), START, dtype=torch.long, device=src.device)
        new = self.net.generate(
            src, prompt, max_new_tokens, mask=src != PAD, eos_token=END, temperature=0.0
        )
        return torch.cat([prompt, new], dim=1)

    def loss(self, tokens: Tensor, src: Tensor | None = None) -> Tensor:
        assert src is not None, "an encoder-decoder model needs src"
        out: Tensor = self.net(src, tokens, mask=src != PAD)
        return out

    def parameters(self) -> dict[str, Tensor]:
        return dict(self.net.named_parameters())

    def embedding_parameter(self) -> Tensor:
        weight: Tensor = self.net.decoder.net.token_emb.emb.weight
        return weight

    def load_pretrained_embedding(self, matrix: Tensor, *, freeze: bool) -> None:
        with torch.no_grad():
            self.embedding_parameter().copy_(matrix)
        self.embedding_parameter().requires_grad_(not freeze)


def target() -> Target:
    return Target(
        name="x-transformers-encdec",
        description="x_transformers XTransformer (Encoder + Decoder with cross-attention)",
        conventions=Conventions(
            statistics_dtype="float32",
            explanations={"statistics_dtype": "its Attend takes the softmax in float32"},
        ),
        model=XEncDec,
        model_kinds=("encoder_decoder",),
    )
