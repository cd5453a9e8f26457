"""Self-attention modules with `forward(x) -> y` as multi-head targets, without glue code:
nanoGPT's and GPT-2's CausalSelfAttention (always causal, fused `c_attn`), an encoder's or a
ViT's attention (never causal), each with its projections found by attribute path.

```python
target = self_attention_target("my-attention", CausalSelfAttention, causal="always")
```

How the projections map to the notes' (Projections): an nn.Linear stores `weight` (out, in)
and computes x weight^T + bias, so the notes' W_Q (d_model, d_model), applied as x W_Q, is
weight^T. A fused projection (d_model -> 3 d_model) holds q, k and v one after the other, in
the order `split` names ("qkv" for nanoGPT's `q, k, v = c_attn(x).split(d_model, dim=2)`).
Head i owns columns i*d_k:(i+1)*d_k of W_Q, which is what the usual head split
`.view(b, L, h, d_k).transpose(1, 2)` gives it; a module that splits heads any other way
does not compute the notes' formula, and multihead.equals_concat_of_heads_then_W_O says so.

The module is called under torch.no_grad(), in eval mode, as `module(x)`, or as
`module(x, **{padding: key_padding})` when it takes a key padding mask (`padding` names the
keyword; the mask is (b, L) bool in the declared Conventions.mask_polarity). It returns the
output alone, or (output, weights) when it returns its weights (Conventions.weights other
than "none": (b, h, L, L) per head, (b, L, L) averaged).
"""

from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor, nn
from transformer_spec.properties.targets.protocols import (
    MHA,
    Conventions,
    MHASpec,
    Projections,
    Target,
    WeightsKind,
    seed_torch,
)

ModuleFactory = Callable[[int, int], nn.Module]  # (d_model, n_heads) -> module
_NO_WEIGHTS = "forward(x) returns the output alone, no attention weights"


def _linear(module: nn.Module, path: str, shape: tuple[int, int], argument: str) -> nn.Linear:
    try:
        layer = module.get_submodule(path)
    except AttributeError:
        raise ValueError(
            f"{argument}: the module ({type(module).__name__}) has no submodule {path!r}"
        ) from None
    if not isinstance(layer, nn.Linear):
        raise TypeError(f"{argument}: {path!r} is a {type(layer).__name__}, expected an nn.Linear")
    if tuple(layer.weight.shape) != shape:
        raise ValueError(
            f"{argument}: {path!r} has weight of shape {tuple(layer.weight.shape)}, expected "
            f"(out, in) = {shape}"
        )
    return layer


def _t(w: Tensor) -> Tensor:
    return w.detach().T


def _b(b: Tensor | None) -> Tensor | None:
    return None if b is None else b.detach()


class SelfAttentionMHA:
    """A `forward(x)` module behind the harness's multi-head protocol (targets.MHA)."""

    def __init__(
        self,
        spec: MHASpec,
        factory: ModuleFactory,
        *,
        qkv: str | tuple[str, str, str],
        split: str,
        out: str,
        causal: Literal["always", "never"],
        padding: str | None,
        weights: WeightsKind,
    ) -> None:
        seed_torch(spec.seed)
        self.module = factory(spec.d_model, spec.n_heads)
        self.module.to(device=spec.device, dtype=spec.dtype).eval()
        self.d_model = spec.d_model
        self.qkv, self.split, self.out = qkv, split, out
        self.causal, self.padding, self.weights = causal, padding, weights
        self.projections()  # a wrong path or shape is reported now, by the factory

    @torch.no_grad()
    def __call__(
        self, x_query: Tensor, x_kv: Tensor, *, key_padding: Tensor | None, causal: bool
    ) -> tuple[Tensor, Tensor | None]:
        if x_query is not x_kv:
            raise ValueError("a self-attention module takes one input: x_query is x_kv")
        if causal != (self.causal == "always"):
            raise ValueError(f"the module is {self.causal} causal; causal={causal} requested")
        if key_padding is not None and self.padding is None:
            raise ValueError("the module takes no key padding mask")
        kwargs = {} if key_padding is None else {str(self.padding): key_padding}
        result = self.module(x_query, **kwargs)
        if isinstance(result, tuple):
            out, weights = result[0], result[1] if len(result) > 1 else None
        else:
            out, weights = result, None
        return out, None if self.weights == "none" else weights

    def projections(self) -> Projections:
        d, m = self.d_model, self.module
        if isinstance(self.qkv, str):
            fused = _linear(m, self.qkv, (3 * d, d), "qkv")
            parts = dict(zip(self.split, fused.weight.chunk(3), strict=True))
            bias = fused.bias
            biases = (
                dict.fromkeys("qkv")
                if bias is None
                else dict(zip(self.split, bias.chunk(3), strict=True))
            )
            q, k, v = (parts[c] for c in "qkv")
            bq, bk, bv = (biases[c] for c in "qkv")
        else:
            layers = [_linear(m, path, (d, d), "qkv") for path in self.qkv]
            q, k, v = (layer.weight for layer in layers)
            bq, bk, bv = (layer.bias for layer in layers)
        o = _linear(m, self.out, (d, d), "out")
        return Projections(
            W_Q=_t(q),
            W_K=_t(k),
            W_V=_t(v),
            W_O=_t(o.weight),
            b_Q=_b(bq),
            b_K=_b(bk),
            b_V=_b(bv),
            b_O=_b(o.bias),
        )


def self_attention(
    factory: ModuleFactory,
    *,
    causal: Literal["always", "never"],
    qkv: str | tuple[str, str, str] = "c_attn",
    split: str = "qkv",
    out: str = "c_proj",
    padding: str | None = None,
    weights: WeightsKind = "none",
) -> Callable[[MHASpec], MHA]:
    """The `mha` factory of a target whose module is `factory(d_model, n_heads)`.

    qkv: the attribute path of the fused q, k, v projection (an nn.Linear d_model ->
    3 d_model), or the paths of three separate ones, in the order q, k, v (e.g.
    ("q_proj", "k_proj", "v_proj")); split: the order of q, k and v in the fused one; out:
    the output projection's path ("c_proj", "out_proj", "proj")."""
    if causal not in ("always", "never"):
        raise ValueError(f"causal: {causal!r}, expected 'always' or 'never'")
    if sorted(split) != ["k", "q", "v"]:
        raise ValueError(f"split: {split!r}, expected an order of 'q', 'k', 'v' such as 'qkv'")
    if not isinstance(qkv, str) and len(qkv) != 3:
        raise ValueError(f"qkv: {qkv!r}, expected one path or three (q, k, v)")
    if weights not in ("per_head", "averaged", "none"):
        raise ValueError(f"weights: {weights!r}, expected 'per_head', 'averaged' or 'none'")

    def build(spec: MHASpec) -> MHA:
        return SelfAttentionMHA(
            spec,
            factory,
            qkv=qkv,
            split=split,
            out=out,
            causal=causal,
            padding=padding,
            weights=weights,
        )

    return build


def self_attention_target(
    name: str,
    factory: ModuleFactory,
    *,
    causal: Literal["always", "never"],
    qkv: str | tuple[str, str, str] = "c_attn",
    split: str = "qkv",
    out: str = "c_proj",
    padding: str | None = None,
    conventions: Conventions | None = None,
    description: str = "",
) -> Target:
    """A target for a self-attention module (see `self_attention`), declared
    mha_inputs="self" with its causal form and whether it takes padding. `conventions`
    default: the reference's, with no weights; a module that returns its weights, or masks
    in the other polarity, declares them here."""
    conv = conventions or Conventions(weights="none", explanations={"weights": _NO_WEIGHTS})
    return Target(
        name=name,
        description=description or f"{name}: self-attention, forward(x), {causal} causal",
        conventions=conv,
        mha=self_attention(
            factory,
            causal=causal,
            qkv=qkv,
            split=split,
            out=out,
            padding=padding,
            weights=conv.weights,
        ),
        mha_inputs="self",
        mha_causal=causal,
        mha_key_padding=padding is not None,
    )
