"""What a target is (`Target`): an implementation under test, reached through adapters at one
or more levels (their Protocols and specs are in `levels`), with its declared conventions
(`conventions`); a fixed model (`FixedModel`) when its model is one already built. The
contract of each level's methods is in `contracts`, and what a model declares beyond its
methods in `declarations`.

Every call goes through the harness's guard (guard.py), which diagnoses a target that
changes global torch state, modifies its inputs, hangs or returns the wrong thing. A factory
may seed torch's global RNG from `spec.seed` to draw its weights; the guard puts the RNG back.

Inputs the harness passes are batch-first. Boolean masks reach the target in the polarity
it declares (`Conventions.mask_polarity`), so a kernel whose masks mean "blocked" is checked
in its own convention, and a kernel that inverts its own declared polarity fails.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, get_args

import torch
from transformer_spec.properties.targets.contracts import LEVEL_FIELDS as LEVEL_FIELDS
from transformer_spec.properties.targets.conventions import CONVENTION_FIELDS as CONVENTION_FIELDS
from transformer_spec.properties.targets.conventions import Conventions as Conventions
from transformer_spec.properties.targets.conventions import to_polarity as to_polarity
from transformer_spec.properties.targets.declarations import (
    DeclarationWarning as DeclarationWarning,
)
from transformer_spec.properties.targets.declarations import masks_padding as masks_padding
from transformer_spec.properties.targets.declarations import pads_left as pads_left
from transformer_spec.properties.targets.levels import MHA as MHA
from transformer_spec.properties.targets.levels import AttentionFn
from transformer_spec.properties.targets.levels import Components as Components
from transformer_spec.properties.targets.levels import ComponentSpec as ComponentSpec
from transformer_spec.properties.targets.levels import GenerativeModel as GenerativeModel
from transformer_spec.properties.targets.levels import Layer as Layer
from transformer_spec.properties.targets.levels import LayerKind as LayerKind
from transformer_spec.properties.targets.levels import LayerSpec as LayerSpec
from transformer_spec.properties.targets.levels import MHASpec as MHASpec
from transformer_spec.properties.targets.levels import Model as Model
from transformer_spec.properties.targets.levels import ModelKind as ModelKind
from transformer_spec.properties.targets.levels import ModelSpec as ModelSpec
from transformer_spec.properties.targets.levels import NormPlacement as NormPlacement
from transformer_spec.properties.targets.levels import PositionedModel as PositionedModel
from transformer_spec.properties.targets.levels import Projections as Projections
from transformer_spec.properties.targets.levels import TrainableModel as TrainableModel
from transformer_spec.properties.targets.levels import Unsupported as Unsupported
from transformer_spec.properties.targets.levels import Vocabulary as Vocabulary
from transformer_spec.properties.targets.levels import seed_torch as seed_torch

MHAInputs = Literal["cross", "self"]
MHACausal = Literal["argument", "always", "never"]


# The shortest context and smallest vocabulary a fixed model needs: the model properties draw
# sequences of up to 9 tokens (8 and a <START>) and up to 8 distinct real ids after the four
# special ones.
FIXED_MIN_LEN = 10
FIXED_MIN_VOCAB = 12


@dataclass(frozen=True)
class FixedModel:
    """One already-built model (a trained checkpoint, say), described by what the
    properties need to draw inputs for it: its kind, vocabulary size, context length and
    width. The factory is then called with this shape in the run's dtype and device (so a
    loader that casts with `.to(spec.device, spec.dtype)` also gives the float64 copy), and
    never asked for another size, another seed or no positional encoding: properties that
    need one are not applicable. Ids 0-3 are taken as the special tokens and the inputs as
    ids 4 .. vocab_size - 1. n_heads, d_ff and n_layers are passed on as stated (0: not
    stated)."""

    kind: ModelKind
    vocab_size: int
    max_len: int
    d_model: int
    n_heads: int = 0
    d_ff: int = 0
    n_layers: int = 0

    def __post_init__(self) -> None:
        if self.kind not in get_args(ModelKind):
            raise ValueError(
                f"fixed model: kind={self.kind!r}; expected one of {get_args(ModelKind)}"
            )
        if self.vocab_size < FIXED_MIN_VOCAB:
            raise ValueError(
                f"fixed model: vocab_size={self.vocab_size}; the model properties need at "
                f"least {FIXED_MIN_VOCAB} (4 special ids and 8 real ones)"
            )
        if self.max_len < FIXED_MIN_LEN:
            raise ValueError(
                f"fixed model: max_len={self.max_len}; the model properties need a context "
                f"of at least {FIXED_MIN_LEN} positions"
            )
        if self.d_model < 1:
            raise ValueError(f"fixed model: d_model={self.d_model}; expected >= 1")

    def spec(self, dtype: torch.dtype, device: torch.device) -> ModelSpec:
        return ModelSpec(
            kind=self.kind,
            vocab_size=self.vocab_size,
            d_model=self.d_model,
            n_heads=self.n_heads,
            d_ff=self.d_ff,
            n_layers=self.n_layers,
            max_len=self.max_len,
            positional=True,
            dtype=dtype,
            device=device,
            seed=0,
        )


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    conventions: Conventions = field(default_factory=Conventions)
    attention: AttentionFn | None = None
    mha: Callable[[MHASpec], MHA] | None = None
    model: Callable[[ModelSpec], Model] | None = None
    model_kinds: tuple[ModelKind, ...] = ()
    components: Callable[[ComponentSpec], Components] | None = None
    layers: Callable[[LayerSpec], Layer] | None = None
    layer_kinds: tuple[LayerKind, ...] = ()
    layer_norms: tuple[NormPlacement, ...] = ("post",)  # the placements `layers` can build
    vocabulary: Callable[[], Vocabulary] | None = None
    # property id or glob -> (factor >= 1, written reason): every bound of the matching
    # properties is multiplied by factor, and the reason is shown in the report.
    loosen: Mapping[str, tuple[float, str]] = field(default_factory=dict)
    # How the `mha` module can be called; every multi-head property adapts to it, and one
    # that cannot is not applicable, with the reason.
    # mha_inputs: "cross" (x_query and x_kv separate, lengths may differ) or "self" (one
    #   input, as forward(x): the harness passes one tensor as both, lengths equal);
    # mha_causal: "argument" (the `causal` flag is honoured), "always" (causal on every call,
    #   as nanoGPT's CausalSelfAttention) or "never" (no causal mask, as an encoder's);
    # mha_key_padding: False when the module takes no key padding mask.
    mha_inputs: MHAInputs = "cross"
    mha_causal: MHACausal = "argument"
    mha_key_padding: bool = True
    # What the `model` factory can build. model_d_ff_ratio: the model's FFN width is this
    #   multiple of d_model whatever ModelSpec.d_ff says (GPT-style code fixes it at 4), so
    #   the harness passes d_ff = ratio * d_model (None: any d_ff, the harness uses 2x);
    # model_positional_off: the factory honours ModelSpec.positional=False (builds the
    #   model without positional encoding); the properties that need it are otherwise not
    #   applicable;
    # model_fixed: one already-built model of this shape, never resized (see FixedModel).
    model_d_ff_ratio: int | None = None
    model_positional_off: bool = True
    model_fixed: FixedModel | None = None

    def __post_init__(self) -> None:
        for pattern, (factor, reason) in self.loosen.items():
            if not (factor >= 1.0 and reason.strip()):
                raise ValueError(
                    f"target {self.name!r}: loosen[{pattern!r}] needs a factor >= 1 "
                    "and a written reason"
                )
        levels = (self.attention, self.mha, self.model, self.components, self.layers)
        if all(level is None for level in levels) and self.vocabulary is None:
            raise ValueError(
                f"target {self.name!r}: offers no adapter "
                "(attention, mha, model, components, layers or vocabulary)"
            )
        if self.model is not None and not self.model_kinds:
            raise ValueError(f"target {self.name!r}: a model factory needs model_kinds")
        if self.layers is not None and not (self.layer_kinds and self.layer_norms):
            raise ValueError(
                f"target {self.name!r}: a layer factory needs layer_kinds and layer_norms"
            )
        self._check_mha_form()
        self._check_model_form()

    def _check_model_form(self) -> None:
        declared = (self.model_d_ff_ratio, self.model_positional_off, self.model_fixed)
        if self.model is None and declared != (None, True, None):
            raise ValueError(
                f"target {self.name!r}: model_d_ff_ratio, model_positional_off and "
                "model_fixed describe the model factory, and the target offers none (model=None)"
            )
        ratio = self.model_d_ff_ratio
        if ratio is not None and not (isinstance(ratio, int) and ratio >= 1):
            raise ValueError(
                f"target {self.name!r}: model_d_ff_ratio={ratio!r}; expected a whole number >= 1"
            )
        fixed = self.model_fixed
        if fixed is not None and self.model_kinds != (fixed.kind,):
            raise ValueError(
                f"target {self.name!r}: model_kinds={self.model_kinds} but the fixed model is "
                f"{fixed.kind!r}; declare model_kinds=({fixed.kind!r},)"
            )

    def _check_mha_form(self) -> None:
        for name, allowed in (("mha_inputs", MHAInputs), ("mha_causal", MHACausal)):
            if getattr(self, name) not in get_args(allowed):
                raise ValueError(
                    f"target {self.name!r}: {name}={getattr(self, name)!r}; expected one of "
                    f"{list(get_args(allowed))}"
                )
        if not isinstance(self.mha_key_padding, bool):
            raise ValueError(
                f"target {self.name!r}: mha_key_padding={self.mha_key_padding!r}; expected "
                "True or False"
            )
        form = (self.mha_inputs, self.mha_causal, self.mha_key_padding)
        if self.mha is None and form != ("cross", "argument", True):
            raise ValueError(
                f"target {self.name!r}: mha_inputs, mha_causal and mha_key_padding describe "
                "the multi-head module, and the target offers none (mha=None)"
            )
        if self.mha_inputs == "cross" and self.mha_causal == "always":
            raise ValueError(
                f"target {self.name!r}: mha_causal='always' needs mha_inputs='self'; a "
                "cross-attention module is causal only on request (mha_causal='argument') "
                "or never"
            )
