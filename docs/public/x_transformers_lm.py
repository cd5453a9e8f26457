"""x-transformers' decoder-only language model, `TransformerWrapper(attn_layers=Decoder(...))`,
as a model-level target, with its KV cache, its AutoregressiveWrapper's loss and greedy
generation. From the repository root:

    transformer-spec check docs.public.x_transformers_lm:target
    transformer-spec check docs.public.x_transformers_lm:target_rotary

Install: pip install -c constraints.txt x-transformers   (2.31.10 tried)
"""

import torch
from torch import Tensor
from transformer_spec.properties import Conventions, ModelSpec, Target
from transformer_spec.properties.targets import Unsupported
from x_transformers import (  # type: ignore[import-untyped]
    AutoregressiveWrapper,
    Decoder,
    TransformerWrapper,
)

PAD, START, END = 0, 1, 2


class XLM:
    pad_id, start_id, end_id = PAD, START, END

    def __init__(self, spec: ModelSpec, rotary: bool = False) -> None:
        if rotary and spec.d_model // spec.n_heads == 4:
            raise Unsupported(
                "RotaryEmbedding(2) divides by zero (docs/repro/x_transformers_rotary_dim_2.py)"
            )
        torch.manual_seed(spec.seed)
        decoder = Decoder(
            dim=spec.d_model,
            depth=spec.n_layers,
            heads=spec.n_heads,
            attn_dim_head=spec.d_model // spec.n_heads,
            ff_mult=spec.d_ff / spec.d_model,
            rotary_pos_emb=rotary and spec.positional,
        )
        self.net = TransformerWrapper(
            num_tokens=spec.vocab_size,
            max_seq_len=spec.max_len,
            attn_layers=decoder,
            use_abs_pos_emb=spec.positional and not rotary,
        )
        self.wrapper = AutoregressiveWrapper(self.net, ignore_index=PAD, pad_value=PAD)
        self.wrapper.to(device=spec.device, dtype=spec.dtype).eval()

    @torch.no_grad()
    def logits(self, tokens: Tensor, src: Tensor | None = None) -> Tensor:
        out: Tensor = self.net(tokens, mask=tokens != PAD)
        return out

    @torch.no_grad()
    def incremental_logits(self, tokens: Tensor, src: Tensor | None = None) -> Tensor:
        cache, steps = None, []
        for t in range(tokens.shape[1]):
            prefix = tokens[:, : t + 1]
            out, cache = self.net(
                prefix, mask=prefix != PAD, cache=cache, return_intermediates=True
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
        device = self.net.token_emb.emb.weight.device
        if prompt is None:
            prompt = torch.full((1, 1), START, dtype=torch.long, device=device)
        new = self.wrapper.generate(prompt, max_new_tokens, eos_token=END, temperature=0.0)
        return torch.cat([prompt, new], dim=1)

    def loss(self, tokens: Tensor, src: Tensor | None = None) -> Tensor:
        out: Tensor = self.wrapper(tokens, mask=tokens != PAD)
        return out

    def parameters(self) -> dict[str, Tensor]:
        return dict(self.net.named_parameters())

    def embedding_parameter(self) -> Tensor:
        weight: Tensor = self.net.token_emb.emb.weight
        return weight

    def load_pretrained_embedding(self, matrix: Tensor, *, freeze: bool) -> None:
        with torch.no_grad():
            self.embedding_parameter().copy_(matrix)
        self.embedding_parameter().requires_grad_(not freeze)


def _target(name: str, rotary: bool) -> Target:
    positions = "rotary" if rotary else "learned absolute"
    return Target(
        name=name,
        description=f"x_transformers TransformerWrapper(Decoder), pre-norm, {positions} positions",
        conventions=Conventions(
            statistics_dtype="float32",
            explanations={"statistics_dtype": "its Attend takes the softmax in float32"},
        ),
        model=lambda spec: XLM(spec, rotary),
        model_kinds=("decoder_only",),
    )


def target() -> Target:
    return _target("x-transformers-lm", rotary=False)


def target_rotary() -> Target:
    """Rotary position embedding (Decoder(rotary_pos_emb=True)) instead of a learned table."""
    return _target("x-transformers-lm-rotary", rotary=True)
