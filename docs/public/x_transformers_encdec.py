"""x-transformers' encoder-decoder `XTransformer` through `lm_target` (kind encoder_decoder),
with the decoder's KV cache; the harness provides generation (greedy and sampled with its own
generator), the loss and the training hooks. From the repository root:

    transformer-spec check docs.public.x_transformers_encdec:target

Install: pip install -c constraints.txt x-transformers   (2.31.10 tried)
"""

import torch
from torch import Tensor, nn
from transformer_spec.properties import Conventions, ModelSpec, Target, lm_target
from x_transformers import XTransformer  # type: ignore[import-untyped]

PAD = 0


class SrcTokensToLogits(nn.Module):
    """module(src, tokens) -> logits: XTransformer's own forward returns the loss."""

    def __init__(self, net: XTransformer) -> None:
        super().__init__()
        self.net = net

    def memory(self, src: Tensor) -> Tensor:
        out: Tensor = self.net.encoder(src, mask=src != PAD, return_embeddings=True)
        return out

    def forward(self, src: Tensor, tokens: Tensor) -> Tensor:
        out: Tensor = self.net.decoder.net(
            tokens, context=self.memory(src), context_mask=src != PAD
        )
        return out


def build(spec: ModelSpec) -> SrcTokensToLogits:
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
    return SrcTokensToLogits(
        XTransformer(dim=spec.d_model, pad_value=PAD, ignore_index=PAD, **kwargs)
    )


def incremental(module: nn.Module, tokens: Tensor, src: Tensor | None) -> Tensor:
    """One token at a time through the decoder's KV cache (return_intermediates=True)."""
    assert isinstance(module, SrcTokensToLogits) and src is not None
    memory, cache, steps = module.memory(src), None, []
    for t in range(tokens.shape[1]):
        out, cache = module.net.decoder.net(
            tokens[:, : t + 1],
            context=memory,
            context_mask=src != PAD,
            cache=cache,
            return_intermediates=True,
        )
        steps.append(out[:, -1:])
    return torch.cat(steps, dim=1)


def target() -> Target:
    return lm_target(
        "x-transformers-encdec",
        build,
        kind="encoder_decoder",
        description="x_transformers XTransformer (Encoder + Decoder with cross-attention)",
        conventions=Conventions(
            statistics_dtype="float32",
            explanations={"statistics_dtype": "its Attend takes the softmax in float32"},
        ),
        pad_id=PAD,
        embedding="net.decoder.net.token_emb.emb.weight",  # the encoder's and to_logits too
        incremental=incremental,
        positional_off=True,
    )
