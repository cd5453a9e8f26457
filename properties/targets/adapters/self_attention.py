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

Kept for code written before `Call`: the target is `multihead_target` with
`Call(x=0, causal=..., padding=...)` and the projections by path (modules.py). The module
is called under torch.no_grad(), in eval mode, as `module(x)`, or as
`module(x, **{padding: key_padding})` when it takes a key padding mask (`padding` names the
keyword; the mask is (b, L) bool in the declared Conventions.mask_polarity). It returns the
output alone, or (output, weights) when it returns its weights (Conventions.weights other
than "none": (b, h, L, L) per head, (b, L, L) averaged).
"""

from collections.abc import Callable
from dataclasses import replace
from typing import Literal

from torch import nn
from transformer_spec.properties.targets.adapters.call import Call
from transformer_spec.properties.targets.adapters.modules import multihead_target
from transformer_spec.properties.targets.conventions import Conventions
from transformer_spec.properties.targets.protocols import Target

ModuleFactory = Callable[[int, int], nn.Module]  # (d_model, n_heads) -> module
_NO_WEIGHTS = "forward(x) returns the output alone, no attention weights"


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
    """A target for a self-attention module `factory(d_model, n_heads)` called as
    `module(x)` (or `module(x, **{padding: key_padding})`).

    qkv: the attribute path of the fused q, k, v projection (an nn.Linear d_model ->
    3 d_model), or the paths of three separate ones, in the order q, k, v (e.g.
    ("q_proj", "k_proj", "v_proj")); split: the order of q, k and v in the fused one; out:
    the output projection's path ("c_proj", "out_proj", "proj"). `conventions` default:
    the reference's, with no weights; a module that returns (output, weights) declares its
    weights there, and a padding mask in the other polarity its mask_polarity."""
    if causal not in ("always", "never"):
        raise ValueError(f"causal: {causal!r}, expected 'always' or 'never'")
    if sorted(split) != ["k", "q", "v"]:
        raise ValueError(f"split: {split!r}, expected an order of 'q', 'k', 'v' such as 'qkv'")
    if not isinstance(qkv, str) and len(qkv) != 3:
        raise ValueError(f"qkv: {qkv!r}, expected one path or three (q, k, v)")
    conv = conventions or Conventions(weights="none", explanations={"weights": _NO_WEIGHTS})
    weights = conv.weights
    if weights not in ("per_head", "averaged", "none"):
        raise ValueError(f"weights: {weights!r}, expected 'per_head', 'averaged' or 'none'")
    paths = {split: qkv} if isinstance(qkv, str) else dict(zip("qkv", qkv, strict=True))
    call = Call(
        x=0,
        causal=causal,
        padding=padding,
        padding_polarity=conv.mask_polarity,
        weights=None if weights == "none" else 1,
        weights_shape="b q k" if weights == "averaged" else "b h q k",
    )
    explanations = {k: v for k, v in conv.explanations.items() if k != "mask_polarity"}
    return multihead_target(
        name,
        factory,
        call=call,
        projections={**paths, "o": out},
        conventions=replace(conv, mask_polarity="true_attends", explanations=explanations),
        description=description or f"{name}: self-attention, forward(x), {causal} causal",
    )
