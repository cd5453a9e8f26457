"""Targets: what a target is (the Protocols of each adapter level and their contracts, in
`protocols`, re-exported here), the built-in reference targets (`builtin`), the
third-party adapters and constructors (`adapters`), the seeded bugs
of the reference (`mutants`) and how a target is found by name (`loading`)."""

from .protocols import ALL_DTYPES as ALL_DTYPES
from .protocols import CONTRACTS as CONTRACTS
from .protocols import CONVENTION_FIELDS as CONVENTION_FIELDS
from .protocols import FIXED_MIN_LEN as FIXED_MIN_LEN
from .protocols import FIXED_MIN_VOCAB as FIXED_MIN_VOCAB
from .protocols import LEVEL_FIELDS as LEVEL_FIELDS
from .protocols import MHA as MHA
from .protocols import PROTOCOL_LEVELS as PROTOCOL_LEVELS
from .protocols import Alignment as Alignment
from .protocols import AttentionFn as AttentionFn
from .protocols import Components as Components
from .protocols import ComponentSpec as ComponentSpec
from .protocols import Contract as Contract
from .protocols import Conventions as Conventions
from .protocols import FixedModel as FixedModel
from .protocols import FullyMaskedRow as FullyMaskedRow
from .protocols import GenerativeModel as GenerativeModel
from .protocols import Layer as Layer
from .protocols import LayerKind as LayerKind
from .protocols import LayerNormEps as LayerNormEps
from .protocols import LayerNormVariance as LayerNormVariance
from .protocols import LayerSpec as LayerSpec
from .protocols import MaskPolarity as MaskPolarity
from .protocols import MHACausal as MHACausal
from .protocols import MHAInputs as MHAInputs
from .protocols import MHASpec as MHASpec
from .protocols import Model as Model
from .protocols import ModelKind as ModelKind
from .protocols import ModelSpec as ModelSpec
from .protocols import NormPlacement as NormPlacement
from .protocols import PositionalLayout as PositionalLayout
from .protocols import Projections as Projections
from .protocols import ScoreScale as ScoreScale
from .protocols import StatisticsDtype as StatisticsDtype
from .protocols import Target as Target
from .protocols import TrainableModel as TrainableModel
from .protocols import Unsupported as Unsupported
from .protocols import Vocabulary as Vocabulary
from .protocols import WeightsKind as WeightsKind
from .protocols import seed_torch as seed_torch
from .protocols import to_polarity as to_polarity
