"""Executable properties of spec/ clauses, the adapters through which targets are plugged in,
and the conformance runner. Importing this package is light (no torch): the Plan and the
pytest plugin live in it, and they are read before anything heavy is imported. The public
names below are imported on first use (PEP 562).

`__all__` is the public API: the constructors (each `constructor(name, what, *, call=...,
conventions=..., description=...)`), `Call` (how the code is called), `Conventions` (what it
chooses differently from the notes), `Target` and the Protocols of each level for code that
fits none of the constructors. The README's examples use these names only (a test checks)."""

from typing import TYPE_CHECKING

from transformer_spec._lazy import exports

if TYPE_CHECKING:
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
    from transformer_spec.properties.targets.conventions import Conventions as Conventions
    from transformer_spec.properties.targets.levels import MHA as MHA
    from transformer_spec.properties.targets.levels import AttentionFn as AttentionFn
    from transformer_spec.properties.targets.levels import Components as Components
    from transformer_spec.properties.targets.levels import ComponentSpec as ComponentSpec
    from transformer_spec.properties.targets.levels import Layer as Layer
    from transformer_spec.properties.targets.levels import LayerSpec as LayerSpec
    from transformer_spec.properties.targets.levels import MHASpec as MHASpec
    from transformer_spec.properties.targets.levels import Model as Model
    from transformer_spec.properties.targets.levels import ModelSpec as ModelSpec
    from transformer_spec.properties.targets.levels import Projections as Projections
    from transformer_spec.properties.targets.levels import Unsupported as Unsupported
    from transformer_spec.properties.targets.protocols import FixedModel as FixedModel
    from transformer_spec.properties.targets.protocols import Target as Target

_WHERE = {
    "Call": "transformer_spec.properties.targets.adapters",
    "attention_function_target": "transformer_spec.properties.targets.adapters",
    "attention_target": "transformer_spec.properties.targets.adapters",
    "components_target": "transformer_spec.properties.targets.adapters",
    "hf_target": "transformer_spec.properties.targets.adapters",
    "layer_target": "transformer_spec.properties.targets.adapters",
    "lm_target": "transformer_spec.properties.targets.adapters",
    "mha_module_target": "transformer_spec.properties.targets.adapters",
    "multihead_target": "transformer_spec.properties.targets.adapters",
    "self_attention_target": "transformer_spec.properties.targets.adapters",
    "Conventions": "transformer_spec.properties.targets.conventions",
    "MHA": "transformer_spec.properties.targets.levels",
    "AttentionFn": "transformer_spec.properties.targets.levels",
    "Components": "transformer_spec.properties.targets.levels",
    "ComponentSpec": "transformer_spec.properties.targets.levels",
    "Layer": "transformer_spec.properties.targets.levels",
    "LayerSpec": "transformer_spec.properties.targets.levels",
    "MHASpec": "transformer_spec.properties.targets.levels",
    "Model": "transformer_spec.properties.targets.levels",
    "ModelSpec": "transformer_spec.properties.targets.levels",
    "Projections": "transformer_spec.properties.targets.levels",
    "Unsupported": "transformer_spec.properties.targets.levels",
    "FixedModel": "transformer_spec.properties.targets.protocols",
    "Target": "transformer_spec.properties.targets.protocols",
}


__getattr__, __dir__ = exports(__name__, _WHERE, globals())


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
