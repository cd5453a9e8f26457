"""Executable properties of spec/ clauses, the adapters through which targets are plugged in,
and the conformance runner. Importing this package is light: property modules are loaded
when a run selects them (`registry.load_all`).

`__all__` is the public API: the constructors (each `constructor(name, what, *, call=...,
conventions=..., description=...)`), `Call` (how the code is called), `Conventions` (what it
chooses differently from the notes), `Target` and the Protocols of each level for code that
fits none of the constructors. The README's examples use these names only (a test checks)."""

from transformer_spec.properties.targets.adapters import Call as Call
from transformer_spec.properties.targets.adapters import (
    attention_function_target as attention_function_target,
)
from transformer_spec.properties.targets.adapters import attention_target as attention_target
from transformer_spec.properties.targets.adapters import components_target as components_target
from transformer_spec.properties.targets.adapters import hf_target as hf_target
from transformer_spec.properties.targets.adapters import layer_target as layer_target
from transformer_spec.properties.targets.adapters import lm_target as lm_target
from transformer_spec.properties.targets.adapters import mha_module_target as mha_module_target
from transformer_spec.properties.targets.adapters import multihead_target as multihead_target
from transformer_spec.properties.targets.adapters import (
    self_attention_target as self_attention_target,
)
from transformer_spec.properties.targets.protocols import MHA as MHA
from transformer_spec.properties.targets.protocols import AttentionFn as AttentionFn
from transformer_spec.properties.targets.protocols import Components as Components
from transformer_spec.properties.targets.protocols import ComponentSpec as ComponentSpec
from transformer_spec.properties.targets.protocols import Conventions as Conventions
from transformer_spec.properties.targets.protocols import FixedModel as FixedModel
from transformer_spec.properties.targets.protocols import Layer as Layer
from transformer_spec.properties.targets.protocols import LayerSpec as LayerSpec
from transformer_spec.properties.targets.protocols import MHASpec as MHASpec
from transformer_spec.properties.targets.protocols import Model as Model
from transformer_spec.properties.targets.protocols import ModelSpec as ModelSpec
from transformer_spec.properties.targets.protocols import Projections as Projections
from transformer_spec.properties.targets.protocols import Target as Target
from transformer_spec.properties.targets.protocols import Unsupported as Unsupported

__all__ = [
    "MHA",
    "AttentionFn",
    "Call",
    "ComponentSpec",
    "Components",
    "Conventions",
    "FixedModel",
    "Layer",
    "LayerSpec",
    "MHASpec",
    "Model",
    "ModelSpec",
    "Projections",
    "Target",
    "Unsupported",
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
