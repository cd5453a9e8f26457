"""A target's declared conventions: the choices real implementations make differently
from the notes (`Conventions`), the values each may take and how a declaration is checked,
and `to_polarity`, which gives a boolean mask in the polarity a target declares."""

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, get_args

from torch import Tensor
from transformer_spec.reference.config import DTYPES

MaskPolarity = Literal["true_attends", "true_blocks"]
Alignment = Literal["top_left", "bottom_right"]
FullyMaskedRow = Literal["zeros", "nan", "finite", "unspecified"]
WeightsKind = Literal["per_head", "averaged", "none"]
ScoreScale = Literal["1/sqrt(d_k)", "none"] | float
StatisticsDtype = Literal["build", "float32"]
LayerNormVariance = Literal["biased", "unbiased"]
LayerNormEps = Literal["inside_sqrt", "outside_sqrt"]
Exactness = Literal["exact", "approximate"]
WindowSpan = Literal["w", "w+1"]
KVHeadGroups = Literal["consecutive", "strided"]
ALL_DTYPES = tuple(DTYPES)


@dataclass(frozen=True)
class Conventions:
    """Choices real implementations make differently; a difference here is not a bug.

    fully_masked_row: what a query row with no visible key returns: "zeros", "nan", any
    "finite" values, or "unspecified" (the property is then not applicable).
    causal_alignment: None when the target only supports equal query and key lengths with a
    causal mask (e.g. a kernel that refuses the case).
    deterministic: False when two identical calls may give different outputs (dropout left
    on, atomics); the harness then neither repeats calls to compare them nor minds the
    target drawing from torch's global RNG.
    score_scale: what the scores q.k are multiplied by before the softmax: "1/sqrt(d_k)"
    (the notes), "none" (T5-style: the scale is folded into the weights' initialisation) or
    a given positive constant. Checked in the declared form: the expected values use it.
    statistics_dtype: "float32" when the softmax and the LayerNorm statistics are computed in
    float32 whatever the build's dtype (many libraries do so on purpose). A float64 build is
    then checked at float32's tolerance, and a 16-bit build as before.
    layer_norm_variance: "biased" (divide by d_model, the notes) or "unbiased" (d_model - 1);
    layer_norm_eps: "inside_sqrt" ((x - mean) / sqrt(var + eps), the notes) or
    "outside_sqrt" ((x - mean) / (std + eps), as the Annotated Transformer does).
    exactness: "approximate" for attention that approximates the softmax on purpose (random
    features, locality hashing, linear attention, Nystrom landmarks): the properties that
    compare with the exact formula report the error they measure instead of failing, and
    every structural property (padding, causal leaks, permutations, batch independence)
    is checked as for exact attention.
    window_span: what a sliding window of w lets a query see: "w" keys, itself and the w - 1
    before it (Mistral's report, Hugging Face's sliding_window), or "w+1", itself and the w
    before it (FlashAttention's window_size=(w, 0)).
    kv_head_groups: which query heads share a key/value head under grouped-query attention:
    "consecutive" (heads j*group .. (j+1)*group - 1 share head j: the GQA paper, Llama's
    repeat_kv, repeat_interleave) or "strided" (head i reads head i mod g: a tiled repeat,
    as x-transformers does; a checkpoint in the consecutive layout needs its heads permuted).
    explanations: one line per convention that differs from the reference's, shown in the
    report (e.g. {"causal_alignment": "SDPA's is_causal is top-left aligned"}).
    """

    mask_polarity: MaskPolarity = "true_attends"
    causal_alignment: Alignment | None = "bottom_right"
    fully_masked_row: FullyMaskedRow = "zeros"
    weights: WeightsKind = "per_head"
    deterministic: bool = True
    score_scale: ScoreScale = "1/sqrt(d_k)"
    statistics_dtype: StatisticsDtype = "build"
    layer_norm_variance: LayerNormVariance = "biased"
    layer_norm_eps: LayerNormEps = "inside_sqrt"
    exactness: Exactness = "exact"
    window_span: WindowSpan = "w"
    kv_head_groups: KVHeadGroups = "consecutive"
    dtypes: tuple[str, ...] = ALL_DTYPES
    devices: tuple[str, ...] = ("cpu", "cuda")
    explanations: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_values(self)
        unknown = set(self.explanations) - set(CONVENTION_FIELDS)
        if unknown:
            raise ValueError(
                f"conventions: explanations for unknown fields {sorted(unknown)}; "
                f"known: {list(CONVENTION_FIELDS)}"
            )
        unexplained = [f for f in self.differences() if not self.explanations.get(f, "").strip()]
        if unexplained:
            raise ValueError(
                f"conventions: {unexplained} differ from the reference's; give each a "
                "one-line explanation in `explanations`"
            )

    def differences(self) -> list[str]:
        """The convention fields declared differently from the reference's."""
        reference = _REFERENCE_VALUES
        return [f for f in CONVENTION_FIELDS if getattr(self, f) != reference[f]]

    def scale(self, d_k: int) -> float:
        """The factor on q.k for this width, as declared."""
        if self.score_scale == "1/sqrt(d_k)":
            return 1.0 / math.sqrt(d_k)
        return 1.0 if self.score_scale == "none" else float(self.score_scale)


# The fields a property can check "as declared", and the reference's value of each.
CONVENTION_FIELDS = (
    "mask_polarity",
    "causal_alignment",
    "fully_masked_row",
    "weights",
    "deterministic",
    "score_scale",
    "statistics_dtype",
    "layer_norm_variance",
    "layer_norm_eps",
    "exactness",
    "window_span",
    "kv_head_groups",
)
_REFERENCE_VALUES: dict[str, object] = {
    "mask_polarity": "true_attends",
    "causal_alignment": "bottom_right",
    "fully_masked_row": "zeros",
    "weights": "per_head",
    "deterministic": True,
    "score_scale": "1/sqrt(d_k)",
    "statistics_dtype": "build",
    "layer_norm_variance": "biased",
    "layer_norm_eps": "inside_sqrt",
    "exactness": "exact",
    "window_span": "w",
    "kv_head_groups": "consecutive",
}
# The values each Literal field accepts; a typo is an error, never a silent default.
_CHOICES: dict[str, tuple[object, ...]] = {
    "mask_polarity": get_args(MaskPolarity),
    "causal_alignment": (*get_args(Alignment), None),
    "fully_masked_row": get_args(FullyMaskedRow),
    "weights": get_args(WeightsKind),
    "deterministic": (True, False),
    "statistics_dtype": get_args(StatisticsDtype),
    "layer_norm_variance": get_args(LayerNormVariance),
    "layer_norm_eps": get_args(LayerNormEps),
    "exactness": get_args(Exactness),
    "window_span": get_args(WindowSpan),
    "kv_head_groups": get_args(KVHeadGroups),
}


def _check_values(c: "Conventions") -> None:
    for name, choices in _CHOICES.items():
        if getattr(c, name) not in choices:
            raise ValueError(
                f"conventions: {name}={getattr(c, name)!r} is not one of {list(choices)}"
            )
    scale = c.score_scale
    if isinstance(scale, str):
        ok = scale in ("1/sqrt(d_k)", "none")
    else:
        ok = isinstance(scale, int | float) and not isinstance(scale, bool)
        ok = ok and math.isfinite(scale) and scale > 0
    if not ok:
        raise ValueError(
            f"conventions: score_scale={scale!r} is not '1/sqrt(d_k)', 'none' or a positive number"
        )
    unknown = [d for d in c.dtypes if d not in ALL_DTYPES]
    if unknown:
        raise ValueError(f"conventions: unknown dtypes {unknown}; known: {list(ALL_DTYPES)}")


def to_polarity(attends: Tensor | None, polarity: MaskPolarity) -> Tensor | None:
    """The harness's masks are True = may attend; convert to what the target declared."""
    if attends is None:
        return None
    return attends if polarity == "true_attends" else ~attends
