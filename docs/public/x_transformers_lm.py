"""x-transformers' decoder-only language model, `TransformerWrapper(attn_layers=Decoder(...))`,
through `lm_target`: its padding mask (`mask=`, True = keep), its KV cache, and its
`AutoregressiveWrapper`'s own loss and generation (greedy, and sampled from torch's global
RNG, which the harness seeds from its generator and restores). From the repository root:

    transformer-spec check docs.public.x_transformers_lm:target
    transformer-spec check docs.public.x_transformers_lm:target_rotary

Install: pip install -c constraints.txt x-transformers   (2.31.10 tried)
"""

import torch
from torch import Tensor, nn
from transformer_spec.properties import Conventions, ModelSpec, Target, Unsupported, lm_target
from x_transformers import (  # type: ignore[import-untyped]
    AutoregressiveWrapper,
    Decoder,
    TransformerWrapper,
)

PAD, END = 0, 2


def build(spec: ModelSpec, rotary: bool) -> TransformerWrapper:
    if rotary and spec.d_model // spec.n_heads == 4:
        raise Unsupported(
            "RotaryEmbedding(2) divides by zero (docs/repro/x_transformers_rotary_dim_2.py)"
        )
    decoder = Decoder(
        dim=spec.d_model,
        depth=spec.n_layers,
        heads=spec.n_heads,
        attn_dim_head=spec.d_model // spec.n_heads,
        ff_mult=spec.d_ff / spec.d_model,
        rotary_pos_emb=rotary and spec.positional,
    )
    return TransformerWrapper(
        num_tokens=spec.vocab_size,
        max_seq_len=spec.max_len,
        attn_layers=decoder,
        use_abs_pos_emb=spec.positional and not rotary,
    )


def _wrapped(module: nn.Module) -> AutoregressiveWrapper:
    """In the module's mode: its generate puts a fresh wrapper's (training) mode back."""
    return AutoregressiveWrapper(module, ignore_index=PAD, pad_value=PAD).train(module.training)


def loss(module: nn.Module, tokens: Tensor, src: Tensor | None) -> Tensor:
    """AutoregressiveWrapper's loss: tokens[:, 1:] from tokens[:, :-1], <PAD> labels ignored."""
    out: Tensor = _wrapped(module)(tokens, mask=tokens != PAD)
    return out


def generate(
    module: nn.Module,
    prompt: Tensor,
    src: Tensor | None,
    n: int,
    *,
    sample: bool,
    generator: torch.Generator | None,
) -> Tensor:
    """Its generate returns the new tokens; temperature 0 is greedy, 1 with no top-k filter
    (its default keeps the top 10%) samples from softmax(logits)."""
    new = _wrapped(module).generate(
        prompt,
        n,
        eos_token=END,
        temperature=1.0 if sample else 0.0,
        filter_logits_fn=lambda logits, **_: logits,
    )
    return torch.cat([prompt, new], dim=1)


def incremental(module: nn.Module, tokens: Tensor, src: Tensor | None) -> Tensor:
    """One token at a time through the library's KV cache (return_intermediates=True)."""
    cache, steps = None, []
    for t in range(tokens.shape[1]):
        prefix = tokens[:, : t + 1]
        out, cache = module(prefix, mask=prefix != PAD, cache=cache, return_intermediates=True)
        steps.append(out[:, -1:])
    return torch.cat(steps, dim=1)


def _target(name: str, rotary: bool) -> Target:
    positions = "rotary" if rotary else "learned absolute"
    return lm_target(
        name,
        lambda spec: build(spec, rotary),
        description=f"x_transformers TransformerWrapper(Decoder), pre-norm, {positions} positions",
        conventions=Conventions(
            statistics_dtype="float32",
            explanations={"statistics_dtype": "its Attend takes the softmax in float32"},
        ),
        pad_id=PAD,
        padding=("mask", "true_attends"),
        loss=loss,
        generate=generate,
        generate_rng="global",
        embedding="token_emb.emb.weight",  # its to_logits is (vocab, d_model) too
        incremental=incremental,
        positional_off=True,
    )


def target() -> Target:
    return _target("x-transformers-lm", rotary=False)


def target_rotary() -> Target:
    """Rotary position embedding (Decoder(rotary_pos_emb=True)) instead of a learned table."""
    return _target("x-transformers-lm-rotary", rotary=True)
