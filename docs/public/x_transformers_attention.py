"""x-transformers' multi-head `Attention` module as an mha-level target (cross-attention
through `context=`, key padding through `context_mask=` True = may attend, causal per call).
No constructor fits: cross-attention with a per-call causal flag is neither
nn.MultiheadAttention's signature nor one-input forward(x) of one causal form, and with one
head its W_O is nn.Identity, not an nn.Linear to name. From the repository root:

    transformer-spec check docs.public.x_transformers_attention:target
    transformer-spec check docs.public.x_transformers_attention:target_flash

Install: pip install -c constraints.txt x-transformers   (2.31.10 tried)
"""

from collections.abc import Callable

import torch
from torch import Tensor, nn
from transformer_spec.properties import MHA, Conventions, MHASpec, Projections, Target
from x_transformers.x_transformers import Attention  # type: ignore[import-untyped]


class AttentionMHA:
    def __init__(self, spec: MHASpec, flash: bool) -> None:
        torch.manual_seed(spec.seed)
        d_k = spec.d_model // spec.n_heads
        self.net = Attention(spec.d_model, dim_head=d_k, heads=spec.n_heads, flash=flash)
        self.net.to(device=spec.device, dtype=spec.dtype).eval()
        self.d_model, self.dtype, self.device = spec.d_model, spec.dtype, spec.device

    @torch.no_grad()
    def __call__(
        self, x_query: Tensor, x_kv: Tensor, *, key_padding: Tensor | None, causal: bool
    ) -> tuple[Tensor, Tensor | None]:
        out, intermediates = self.net(
            x_query,
            context=x_kv,
            context_mask=key_padding,
            causal=causal,
            return_intermediates=True,
        )
        return out, intermediates.post_softmax_attn

    def projections(self) -> Projections:
        n, eye = self.net, torch.eye(self.d_model, dtype=self.dtype, device=self.device)
        # with one head of width d_model, x-transformers leaves out W_O (to_out = Identity)
        w_o = eye if isinstance(n.to_out, nn.Identity) else n.to_out.weight.detach().T
        w_q, w_k, w_v = (layer.weight.detach().T for layer in (n.to_q, n.to_k, n.to_v))
        return Projections(W_Q=w_q, W_K=w_k, W_V=w_v, W_O=w_o)


def _target(name: str, flash: bool, conventions: Conventions) -> Target:
    build: Callable[[MHASpec], MHA] = lambda spec: AttentionMHA(spec, flash)  # noqa: E731
    return Target(
        name=name,
        description=f"x_transformers Attention(flash={flash})",
        conventions=conventions,
        mha=build,
    )


def target() -> Target:
    float32_softmax = {
        "statistics_dtype": "the einsum path takes its softmax in float32 (F.softmax dtype=)"
    }
    conventions = Conventions(statistics_dtype="float32", explanations=float32_softmax)
    return _target("x-transformers-attention", False, conventions)


def target_flash() -> Target:
    no_weights = {"weights": "the flash path returns no attention weights"}
    return _target(
        "x-transformers-attention-flash", True, Conventions(weights="none", explanations=no_weights)
    )
