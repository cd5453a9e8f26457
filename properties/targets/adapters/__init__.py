"""Third-party implementations as targets: torch SDPA per backend, torch.nn's attention
modules, layers and models, and (with the `hf` extra) Hugging Face models. Each adapter
declares the library's conventions with a one-line explanation of every difference from the
reference's.

The public constructors, each `constructor(name, what, *, call=..., conventions=...,
description=...)` and re-exported by transformer_spec.properties:
- `attention_target`: an attention function, called as a `Call` describes (modules.py);
- `multihead_target`: a multi-head attention module (modules.py);
- `layer_target`: one encoder or decoder layer (parts.py);
- `components_target`: embedding, positional table, norm, FFN, un-embedding (parts.py);
- `lm_target`: a language model, tokens -> logits (language_model.py);
- `hf_target`: a Hugging Face transformers model class (hf.py; `hf:CLASSNAME`).
Kept for code written before `Call`: `attention_function_target` (SDPA's signature),
`mha_module_target` (nn.MultiheadAttention's), `self_attention_target` (`forward(x)`)."""

from collections.abc import Callable

from transformer_spec.properties.targets.adapters import hf, sdpa, torch_nn
from transformer_spec.properties.targets.adapters.call import Call as Call
from transformer_spec.properties.targets.adapters.hf import hf_target as hf_target
from transformer_spec.properties.targets.adapters.language_model import lm_target as lm_target
from transformer_spec.properties.targets.adapters.modules import (
    attention_target as attention_target,
)
from transformer_spec.properties.targets.adapters.modules import (
    multihead_target as multihead_target,
)
from transformer_spec.properties.targets.adapters.parts import (
    components_target as components_target,
)
from transformer_spec.properties.targets.adapters.parts import layer_target as layer_target
from transformer_spec.properties.targets.adapters.sdpa import (
    attention_function_target as attention_function_target,
)
from transformer_spec.properties.targets.adapters.self_attention import (
    self_attention_target as self_attention_target,
)
from transformer_spec.properties.targets.adapters.torch_nn import (
    mha_module_target as mha_module_target,
)
from transformer_spec.properties.targets.protocols import Target

THIRD_PARTY: dict[str, Callable[[], Target]] = {**sdpa.TARGETS, **torch_nn.TARGETS, **hf.TARGETS}

__all__ = [
    "THIRD_PARTY",
    "Call",
    "attention_function_target",
    "attention_target",
    "components_target",
    "hf_target",
    "layer_target",
    "lm_target",
    "mha_module_target",
    "multihead_target",
    "self_attention_target",
]
