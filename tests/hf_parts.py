"""The RMSNorm and gated MLP of four Hugging Face architectures (Llama, Mistral, Qwen2:
SwiGLU; Gemma: GeGLU with tanh GELU, gain stored as 1 + weight) plugged in through
`components_target`. Their RMSNorms compute in float32 (declared)."""

from collections.abc import Callable
from types import SimpleNamespace

from torch import nn
from transformer_spec.properties import Conventions, Target, components_target
from transformers.models.gemma.modeling_gemma import GemmaMLP, GemmaRMSNorm
from transformers.models.llama.modeling_llama import LlamaMLP, LlamaRMSNorm
from transformers.models.mistral.modeling_mistral import MistralMLP, MistralRMSNorm
from transformers.models.qwen2.modeling_qwen2 import Qwen2MLP, Qwen2RMSNorm

F32 = Conventions(
    statistics_dtype="float32",
    explanations={"statistics_dtype": "the RMSNorm computes in float32 whatever the build"},
)


def _parts(
    name: str,
    norm: Callable[..., nn.Module],
    mlp: Callable[[SimpleNamespace], nn.Module],
    hf_act: str = "silu",
    act: str = "silu",
) -> Target:
    def config(d: int, d_ff: int) -> SimpleNamespace:  # what the MLPs read of their config
        return SimpleNamespace(
            hidden_size=d, intermediate_size=d_ff, hidden_act=hf_act, mlp_bias=False
        )

    return components_target(
        name,
        norm=lambda d: norm(d, eps=1e-6),
        norm_kind="rms_norm",
        norm_eps=1e-6,
        feed_forward=lambda d, d_ff: mlp(config(d, d_ff)),
        gated=("gate_proj", "up_proj", "down_proj"),
        gated_activation=act,  # type: ignore[arg-type]
        conventions=F32,
    )


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
