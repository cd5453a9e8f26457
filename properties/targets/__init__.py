"""Targets: what a target is (`protocols`: Target; `levels`: the Protocols of each adapter
level; `contracts`: their method contracts; `conventions`: the declared conventions;
`declarations`: what a model declares beyond its methods; all re-exported here), the
built-in reference targets (`builtin`), the third-party adapters and constructors
(`adapters`), the seeded bugs of the reference (`mutants`) and how a target is found by
name (`loading`).

Importing this package is light (no torch): the names are imported on first use (PEP 562),
so the mutant catalogue, which is plain data, can be read before torch is imported."""

from typing import TYPE_CHECKING

from transformer_spec._lazy import exports

if TYPE_CHECKING:
    from .contracts import CONTRACTS as CONTRACTS
    from .contracts import LEVEL_FIELDS as LEVEL_FIELDS
    from .contracts import PROTOCOL_LEVELS as PROTOCOL_LEVELS
    from .contracts import Contract as Contract
    from .conventions import ALL_DTYPES as ALL_DTYPES
    from .conventions import CONVENTION_FIELDS as CONVENTION_FIELDS
    from .conventions import Alignment as Alignment
    from .conventions import Conventions as Conventions
    from .conventions import FullyMaskedRow as FullyMaskedRow
    from .conventions import LayerNormEps as LayerNormEps
    from .conventions import LayerNormVariance as LayerNormVariance
    from .conventions import MaskPolarity as MaskPolarity
    from .conventions import ScoreScale as ScoreScale
    from .conventions import StatisticsDtype as StatisticsDtype
    from .conventions import WeightsKind as WeightsKind
    from .conventions import to_polarity as to_polarity
    from .levels import MHA as MHA
    from .levels import AttentionFn as AttentionFn
    from .levels import Components as Components
    from .levels import ComponentSpec as ComponentSpec
    from .levels import GenerativeModel as GenerativeModel
    from .levels import Layer as Layer
    from .levels import LayerKind as LayerKind
    from .levels import LayerSpec as LayerSpec
    from .levels import MHASpec as MHASpec
    from .levels import Model as Model
    from .levels import ModelKind as ModelKind
    from .levels import ModelSpec as ModelSpec
    from .levels import NormPlacement as NormPlacement
    from .levels import PositionalLayout as PositionalLayout
    from .levels import Projections as Projections
    from .levels import TrainableModel as TrainableModel
    from .levels import Unsupported as Unsupported
    from .levels import Vocabulary as Vocabulary
    from .levels import seed_torch as seed_torch
    from .protocols import FIXED_MIN_LEN as FIXED_MIN_LEN
    from .protocols import FIXED_MIN_VOCAB as FIXED_MIN_VOCAB
    from .protocols import FixedModel as FixedModel
    from .protocols import MHACausal as MHACausal
    from .protocols import MHAInputs as MHAInputs
    from .protocols import Target as Target

_WHERE = {
    "CONTRACTS": ".contracts",
    "LEVEL_FIELDS": ".contracts",
    "PROTOCOL_LEVELS": ".contracts",
    "Contract": ".contracts",
    "ALL_DTYPES": ".conventions",
    "CONVENTION_FIELDS": ".conventions",
    "Alignment": ".conventions",
    "Conventions": ".conventions",
    "FullyMaskedRow": ".conventions",
    "LayerNormEps": ".conventions",
    "LayerNormVariance": ".conventions",
    "MaskPolarity": ".conventions",
    "ScoreScale": ".conventions",
    "StatisticsDtype": ".conventions",
    "WeightsKind": ".conventions",
    "to_polarity": ".conventions",
    "MHA": ".levels",
    "AttentionFn": ".levels",
    "Components": ".levels",
    "ComponentSpec": ".levels",
    "GenerativeModel": ".levels",
    "Layer": ".levels",
    "LayerKind": ".levels",
    "LayerSpec": ".levels",
    "MHASpec": ".levels",
    "Model": ".levels",
    "ModelKind": ".levels",
    "ModelSpec": ".levels",
    "NormPlacement": ".levels",
    "PositionalLayout": ".levels",
    "Projections": ".levels",
    "TrainableModel": ".levels",
    "Unsupported": ".levels",
    "Vocabulary": ".levels",
    "seed_torch": ".levels",
    "FIXED_MIN_LEN": ".protocols",
    "FIXED_MIN_VOCAB": ".protocols",
    "FixedModel": ".protocols",
    "MHACausal": ".protocols",
    "MHAInputs": ".protocols",
    "Target": ".protocols",
}


__getattr__, __dir__ = exports(__name__, _WHERE, globals())
