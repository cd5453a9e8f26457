"""The RMSNorm and gated MLP of four Hugging Face architectures (Llama, Mistral, Qwen2:
SwiGLU; Gemma: GeGLU with tanh GELU, gain stored as 1 + weight) plugged in through
`components_target`, Llama's rotary embedding (half-split pairs, base 10000), and the ALiBi
biases of Bloom and MPT. Their RMSNorms and rotary tables compute in float32 (declared)."""

from collections.abc import Callable
from types import SimpleNamespace

import torch
from torch import Tensor, nn
from transformer_spec.properties import Conventions, Target, components_target
from transformers import LlamaConfig
from transformers.models.gemma.modeling_gemma import GemmaMLP, GemmaRMSNorm
from transformers.models.llama.modeling_llama import (
    LlamaMLP,
    LlamaRMSNorm,
    LlamaRotaryEmbedding,
    apply_rotary_pos_emb,
)
from transformers.models.mistral.modeling_mistral import MistralMLP, MistralRMSNorm
from transformers.models.qwen2.modeling_qwen2 import Qwen2MLP, Qwen2RMSNorm

F32 = Conventions(
    statistics_dtype="float32",
    explanations={"statistics_dtype": "the RMSNorm and the rotary angles compute in float32"},
)


def _parts(
    name: str,
    norm: Callable[..., nn.Module],
    mlp: Callable[[SimpleNamespace], nn.Module],
    hf_act: str = "silu",
    act: str = "silu",
    pairing: str = "half_split",
) -> Target:
    def config(d: int, d_ff: int) -> SimpleNamespace:  # what the MLPs read of their config
        return SimpleNamespace(
            hidden_size=d, intermediate_size=d_ff, hidden_act=hf_act, mlp_bias=False
        )

    return components_target(
        name,
        rotary=_llama_rotary if name.startswith("hf-llama") else None,
        rotary_pairing=pairing,  # type: ignore[arg-type]
        norm=lambda d: norm(d, eps=1e-6),
        norm_kind="rms_norm",
        norm_eps=1e-6,
        feed_forward=lambda d, d_ff: mlp(config(d, d_ff)),
        gated=("gate_proj", "up_proj", "down_proj"),
        gated_activation=act,  # type: ignore[arg-type]
        conventions=F32,
    )


def _llama_rotary(_: int) -> Callable[[Tensor, Tensor], Tensor]:
    """Llama's rotary embedding for the head width of each call, as its attention applies it."""

    def rotate(x: Tensor, positions: Tensor) -> Tensor:
        d = x.shape[-1]
        config = LlamaConfig(
            hidden_size=d, num_attention_heads=1, num_key_value_heads=1, head_dim=d
        )
        cos, sin = LlamaRotaryEmbedding(config).to(x.device)(x, positions[None])
        rotated: Tensor = apply_rotary_pos_emb(x, x, cos, sin)[0]
        return rotated

    return rotate


def llama() -> Target:
    return _parts("hf-llama-parts", LlamaRMSNorm, LlamaMLP)


def mistral() -> Target:
    return _parts("hf-mistral-parts", MistralRMSNorm, MistralMLP)


def qwen2() -> Target:
    return _parts("hf-qwen2-parts", Qwen2RMSNorm, Qwen2MLP)


def gemma() -> Target:
    return _parts("hf-gemma-parts", GemmaRMSNorm, GemmaMLP, "gelu_pytorch_tanh", "gelu_tanh")


def gemma_declared_silu() -> Target:
    """Gemma's GeGLU declared as SwiGLU: the gated formula must fail."""
    return _parts("hf-gemma-declared-silu", GemmaRMSNorm, GemmaMLP, "gelu_pytorch_tanh", "silu")


def llama_declared_interleaved() -> Target:
    """Llama's half-split rotary declared interleaved: the rotary formula must fail."""
    return _parts("hf-llama-declared-interleaved", LlamaRMSNorm, LlamaMLP, pairing="interleaved")


def bloom_alibi() -> Target:
    """Bloom's ALiBi (Falcon's with alibi=True is the same function): slope_h * j by the
    key's position j, which the softmax cannot tell from -slope_h * (i - j)."""
    from transformers.models.bloom.modeling_bloom import build_alibi_tensor

    def alibi(n_heads: int, length: int) -> Tensor:
        ones = torch.ones(1, length)
        return build_alibi_tensor(ones, n_heads, torch.float32).view(n_heads, 1, length)

    return components_target("hf-bloom-alibi", alibi=alibi)


def mpt_alibi() -> Target:
    """MPT's ALiBi, slopes from the next power of two up (the same slopes as the paper's)."""
    from transformers.models.mpt.modeling_mpt import build_mpt_alibi_tensor

    def alibi(n_heads: int, length: int) -> Tensor:
        bias: Tensor = build_mpt_alibi_tensor(n_heads, length)  # type: ignore[no-untyped-call]
        return bias.view(n_heads, 1, length)

    return components_target("hf-mpt-alibi", alibi=alibi)
