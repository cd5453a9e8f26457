"""Third-party implementations as targets: torch SDPA per backend, torch.nn's attention
modules, layers and models, and (with the `hf` extra) Hugging Face models. Each adapter
declares the library's conventions with a one-line explanation of every difference from the
reference's.

The public constructors, for code of one of these shapes (each re-exported by
transformer_spec.properties):
- `attention_function_target`: a function with SDPA's signature (sdpa.py);
- `mha_module_target`: a module with nn.MultiheadAttention's call signature (torch_nn.py);
- `self_attention_target`: a module with `forward(x)` (self_attention.py);
- `hf_target`: a Hugging Face transformers model class by name (hf.py; `hf:CLASSNAME`)."""

from collections.abc import Callable

from transformer_spec.properties.targets.adapters import hf, sdpa, torch_nn
from transformer_spec.properties.targets.adapters.hf import hf_target as hf_target
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
    "attention_function_target",
    "hf_target",
    "mha_module_target",
    "self_attention_target",
]
