"""Executable properties of spec/ clauses, the adapters through which targets are plugged in,
and the conformance runner. Importing this package is light: property modules are loaded
when a run selects them (`registry.load_all`)."""

from .adapters import attention_function_target as attention_function_target
from .adapters import hf_target as hf_target
from .adapters import mha_module_target as mha_module_target
from .adapters import self_attention_target as self_attention_target
from .adapters.language_model import lm_target as lm_target
from .targets import MHA as MHA
from .targets import AttentionFn as AttentionFn
from .targets import Components as Components
from .targets import ComponentSpec as ComponentSpec
from .targets import Conventions as Conventions
from .targets import FixedModel as FixedModel
from .targets import MHASpec as MHASpec
from .targets import Model as Model
from .targets import ModelSpec as ModelSpec
from .targets import Projections as Projections
from .targets import Target as Target
from .targets import Unsupported as Unsupported
