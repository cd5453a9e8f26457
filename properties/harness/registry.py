"""Properties: executable checks of spec clauses, registered with what they need.

A property is a function of a `Context` (target, device, dtype, tolerance) that returns a
Hypothesis test (a @given function). It cites the clause ids it checks and names the
capabilities it needs; a target that lacks one is reported "not applicable" with the reason.
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch
from transformer_spec.properties.harness.tolerance import DTYPE_NAMES, Tolerance
from transformer_spec.properties.targets.protocols import CONVENTION_FIELDS, LEVEL_FIELDS, Target

# Capabilities a property can need, and why a target may lack each.
NEEDS: dict[str, str] = {
    "attention": "target offers no attention function",
    "attention.weights": "target declares that it returns no attention weights",
    "attention.unequal_causal": "target declares no causal alignment for unequal lengths",
    "attention.fully_masked_policy": "target declares no fully-masked-row policy",
    "mha": "target offers no multi-head attention module",
    "mha.weights": "target declares that its attention module returns no weights",
    "mha.per_head_weights": "target's attention module returns no per-head weights",
    "mha.cross": "target's attention module is self-attention only (mha_inputs='self'): "
    "queries cannot differ from keys and values, nor their lengths",
    "mha.causal": "target's attention module is never causal (mha_causal='never')",
    "mha.key_padding": "target's attention module takes no key padding mask "
    "(mha_key_padding=False)",
    "mha.unequal_causal": "target declares no causal alignment for unequal lengths",
    "model": "target offers no model",
    "components": "target offers no components (embedding, positions, norm, FFN, un-embedding)",
    "model.encoder_decoder": "target offers no encoder-decoder model",
    "model.decoder_only": "target offers no decoder-only model",
    "model.encoder_only": "target offers no encoder-only model",
    "model.positional_off": "target's model cannot be built without positional encoding "
    "(a fixed model, or model_positional_off=False)",
    "layers": "target offers no encoder or decoder layer",
    "layers.encoder": "target offers no encoder layer",
    "layers.decoder": "target offers no decoder layer (with or without cross-attention)",
    "layers.cross": "target offers no decoder layer with cross-attention",
    "vocabulary": "target offers no vocabulary (string -> token -> id)",
}


class NotApplicable(Exception):
    """Raised while building a property when the target turns out to lack what it needs."""


class MissingMethod(NotApplicable, AttributeError):
    """A target's object lacks an optional method of its level's Protocol: the property is
    not applicable ("the target has no X"). An AttributeError too, so hasattr() says False."""


@dataclass(frozen=True)
class Context:
    target: Target
    device: torch.device
    dtype: torch.dtype
    tolerance: Tolerance

    @property
    def dtype_name(self) -> str:
        return DTYPE_NAMES[self.dtype]

    @property
    def precision(self) -> torch.dtype:
        """The dtype whose rounding bounds this cell: the build's, or float32 for a float64
        build of a target that computes its softmax and norm statistics in float32."""
        if self.target.conventions.statistics_dtype == "float32" and self.dtype == torch.float64:
            return torch.float32
        return self.dtype


Check = Callable[[], None]


@dataclass(frozen=True)
class Property:
    id: str
    clauses: tuple[str, ...]
    needs: tuple[str, ...]
    doc: str
    build: Callable[[Context], Check]
    # Convention fields (of `Conventions`) whose declared value this property checks: where
    # a target declares another value than the reference's, a pass is reported as a
    # convention difference, with the target's one-line explanation.
    conventions: tuple[str, ...] = ()
    # True when the property compares values with the exact softmax formula: for a target
    # that declares exactness="approximate", a failure of it is reported as the measured
    # error (a convention difference), not as a failure.
    exact: bool = False


REGISTRY: dict[str, Property] = {}


def prop(
    id: str,
    *,
    clauses: tuple[str, ...],
    needs: tuple[str, ...],
    conventions: tuple[str, ...] = (),
    exact: bool = False,
) -> Callable[[Callable[[Context], Check]], Callable[[Context], Check]]:
    """Register a property. The decorated function's docstring is its one-line description."""

    def register(build: Callable[[Context], Check]) -> Callable[[Context], Check]:
        unknown = set(needs) - set(NEEDS)
        if unknown:
            raise ValueError(f"property {id}: unknown needs {sorted(unknown)}")
        if id in REGISTRY:
            raise ValueError(f"property {id}: registered twice")
        if not clauses:
            raise ValueError(f"property {id}: cites no clause")
        unknown = set(conventions) - set(CONVENTION_FIELDS)
        if unknown:
            raise ValueError(f"property {id}: unknown conventions {sorted(unknown)}")
        doc = (build.__doc__ or "").strip().splitlines()[0] if build.__doc__ else id
        REGISTRY[id] = Property(
            id=id,
            clauses=clauses,
            needs=needs,
            doc=doc,
            build=build,
            conventions=conventions,
            exact=exact,
        )
        return build

    return register


def missing_need(p: Property, target: Target) -> str | None:
    """The reason `p` cannot apply to `target`, or None when it can."""
    c = target.conventions
    have = {field: getattr(target, field) is not None for field in LEVEL_FIELDS.values()}
    have |= {
        "attention.weights": target.attention is not None and c.weights != "none",
        "attention.unequal_causal": c.causal_alignment is not None,
        "attention.fully_masked_policy": c.fully_masked_row != "unspecified",
        "mha.weights": target.mha is not None and c.weights != "none",
        "mha.per_head_weights": target.mha is not None and c.weights == "per_head",
        "mha.cross": target.mha is not None and target.mha_inputs == "cross",
        "mha.causal": target.mha is not None and target.mha_causal != "never",
        "mha.key_padding": target.mha is not None and target.mha_key_padding,
        "mha.unequal_causal": target.mha is not None and c.causal_alignment is not None,
        "model.positional_off": target.model is not None
        and target.model_positional_off
        and target.model_fixed is None,
        "layers.encoder": target.layers is not None and "encoder" in target.layer_kinds,
        "layers.decoder": target.layers is not None
        and bool({"decoder", "decoder_only"} & set(target.layer_kinds)),
        "layers.cross": target.layers is not None and "decoder" in target.layer_kinds,
    }
    for kind in ("encoder_decoder", "decoder_only", "encoder_only"):
        have[f"model.{kind}"] = target.model is not None and kind in target.model_kinds
    for need in p.needs:
        base = need.split(".")[0]  # a target without the level at all: say that first
        if not have[base]:
            return NEEDS[base]
        if not have[need]:
            return NEEDS[need]
    return None


def convention_difference(p: Property, target: Target) -> str | None:
    """The target's explanation(s) when `p` checks a convention the target declares
    differently from the reference; None when they agree."""
    differ = [name for name in p.conventions if name in target.conventions.differences()]
    if not differ:
        return None
    return "; ".join(target.conventions.explanations[name] for name in differ)
