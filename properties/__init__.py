"""Executable properties of spec/ clauses, the adapters through which targets are plugged in,
and the conformance runner. Importing this package is light: property modules are loaded
when a run selects them (`registry.load_all`)."""

from transformer_spec.properties.targets.adapters import (
    attention_function_target as attention_function_target,
)
from transformer_spec.properties.targets.adapters import hf_target as hf_target
from transformer_spec.properties.targets.adapters import mha_module_target as mha_module_target
from transformer_spec.properties.targets.adapters import (
    self_attention_target as self_attention_target,
)
from transformer_spec.properties.targets.adapters.language_model import lm_target as lm_target
from transformer_spec.properties.targets.protocols import MHA as MHA
from transformer_spec.properties.targets.protocols import AttentionFn as AttentionFn
from transformer_spec.properties.targets.protocols import Components as Components
from transformer_spec.properties.targets.protocols import ComponentSpec as ComponentSpec
from transformer_spec.properties.targets.protocols import Conventions as Conventions
from transformer_spec.properties.targets.protocols import FixedModel as FixedModel
from transformer_spec.properties.targets.protocols import MHASpec as MHASpec
from transformer_spec.properties.targets.protocols import Model as Model
from transformer_spec.properties.targets.protocols import ModelSpec as ModelSpec
from transformer_spec.properties.targets.protocols import Projections as Projections
from transformer_spec.properties.targets.protocols import Target as Target
from transformer_spec.properties.targets.protocols import Unsupported as Unsupported
