"""torch.nn.functional.scaled_dot_product_attention, one target per backend and mask form.

SDPA's conventions (torch docs, and ../shared/anchors/numerics.md): a boolean `attn_mask` is
True where a query may attend; a float mask is added to the scores; `is_causal=True` is
top-left aligned (query i sees keys 0..i even when the key sequence is longer). SDPA returns
no attention weights. The backend is forced with `torch.nn.attention.sdpa_kernel`, so a
backend that cannot take an input refuses it instead of silently falling back to another.
"""

import functools
import math
import warnings
from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.nn.functional import scaled_dot_product_attention
from transformer_spec.properties.targets.conventions import Conventions
from transformer_spec.properties.targets.levels import Unsupported
from transformer_spec.properties.targets.protocols import Target

BACKENDS: dict[str, SDPBackend] = {
    "math": SDPBackend.MATH,
    "flash": SDPBackend.FLASH_ATTENTION,
    "efficient": SDPBackend.EFFICIENT_ATTENTION,
    "cudnn": SDPBackend.CUDNN_ATTENTION,
}
# The backends torch implements per device (the others raise "no viable backend").
_DEVICES: dict[str, tuple[str, ...]] = {
    "math": ("cpu", "cuda"),
    "flash": ("cpu", "cuda"),
    "efficient": ("cuda",),
    "cudnn": ("cuda",),
}


class SDPA:
    """The harness's attention protocol on one SDPA backend. mask_form "bool" passes masks
    as they are; "float" as an additive mask (0 where a key is visible, -inf elsewhere)."""

    def __init__(self, backend: str, mask_form: str) -> None:
        self.backend, self.mask_form = backend, mask_form

    def __call__(
        self, q: Tensor, k: Tensor, v: Tensor, *, mask: Tensor | None, causal: bool
    ) -> tuple[Tensor, Tensor | None]:
        if causal and mask is not None:
            # SDPA refuses attn_mask together with is_causal; fold in what is_causal means
            # (the top-left lower triangle), as a user of the library has to.
            top_left = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool, device=q.device)
            mask, causal = mask & top_left.tril(), False
        attn_mask: Tensor | None = mask
        if mask is not None and self.mask_form == "float":
            attn_mask = torch.zeros(mask.shape, dtype=q.dtype, device=q.device)
            attn_mask = attn_mask.masked_fill(~mask, -math.inf)
        # A refused input warns why, then raises "no available kernel"; the why is reported.
        with sdpa_kernel([BACKENDS[self.backend]]), warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always", UserWarning)
            try:
                out = scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=causal)
            except RuntimeError as err:
                if "No viable backend" not in str(err) and "No available kernel" not in str(err):
                    raise
                # the first sentence: the rule, without this call's sizes
                why = [str(w.message).split(". ")[0].rstrip(".") for w in seen]
                why = [w for w in why if "kernel not used because" not in w] or [str(err)]
                raise Unsupported(f"SDPA {self.backend} backend: {why[0]}") from err
        return out, None


def _conventions(backend: str) -> Conventions:
    explanations = {
        "causal_alignment": "SDPA's is_causal is top-left aligned: query i sees keys 0..i "
        "when there are more keys than queries (the reference aligns bottom-right)",
        "weights": "SDPA returns the attention output only, never the weights",
    }
    fully_masked = "zeros"
    if backend == "cudnn":
        fully_masked = "finite"
        explanations["fully_masked_row"] = (
            "cuDNN returns finite values that are neither zeros nor the mean of V for a query "
            "row with no visible key (measured on an H100, anchors/numerics.md)"
        )
    return Conventions(
        mask_polarity="true_attends",
        causal_alignment="top_left",
        fully_masked_row=fully_masked,  # type: ignore[arg-type]
        weights="none",
        devices=_DEVICES[backend],
        explanations=explanations,
    )


def sdpa_target(backend: str, mask_form: str = "bool") -> Target:
    suffix = "" if mask_form == "bool" else "-float"
    return Target(
        name=f"torch-sdpa-{backend}{suffix}",
        description=f"torch.nn.functional.scaled_dot_product_attention, {backend} backend only, "
        f"{mask_form} attn_mask, is_causal=True for causal attention",
        conventions=_conventions(backend),
        attention=SDPA(backend, mask_form),
    )


TARGETS: dict[str, Callable[[], Target]] = {
    f"torch-sdpa-{backend}{suffix}": functools.partial(sdpa_target, backend, form)
    for backend in BACKENDS
    for suffix, form in (("", "bool"), ("-float", "float"))
}


# ---- any function with SDPA's signature --------------------------------------------------

SDPAFunction = Callable[..., object]  # (q, k, v, attn_mask=None, is_causal=False) -> out
MaskForm = Literal["bool", "additive"]
_SDPA_EXPLANATIONS = {
    "causal_alignment": "is_causal is top-left aligned, as SDPA's: query i sees keys 0..i "
    "when there are more keys than queries (the reference aligns bottom-right)",
    "weights": "the function returns the attention output only, as SDPA does",
}
SDPA_CONVENTIONS = Conventions(
    causal_alignment="top_left", weights="none", explanations=_SDPA_EXPLANATIONS
)


def causal_triangle(q_len: int, k_len: int, alignment: str | None, device: torch.device) -> Tensor:
    """True where query i may see key j under the declared alignment ("top_left": j <= i,
    "bottom_right": j <= i + k_len - q_len; None declares equal lengths only)."""
    shift = k_len - q_len if alignment == "bottom_right" else 0
    return torch.ones(q_len, k_len, dtype=torch.bool, device=device).tril(shift)


class SDPAFunctionAdapter:
    """A function with SDPA's signature behind the harness's attention protocol.

    Masks arrive in the declared polarity. With mask_form "additive" (polarity
    "true_attends") the mask becomes 0 where a key is visible and -inf elsewhere. A causal
    call with a mask passes both when the function accepts them together; otherwise (or after
    the function refused them once, when `accepts_mask_with_causal` is None) the causal
    triangle, in the declared alignment, is folded into the mask."""

    def __init__(
        self,
        fn: SDPAFunction,
        conventions: Conventions,
        *,
        mask_form: MaskForm,
        accepts_mask_with_causal: bool | None,
    ) -> None:
        self.fn, self.conventions, self.mask_form = fn, conventions, mask_form
        self.accepts_both = accepts_mask_with_causal

    def _fold(self, q: Tensor, k: Tensor, mask: Tensor) -> Tensor:
        alignment = self.conventions.causal_alignment
        sees = causal_triangle(q.shape[-2], k.shape[-2], alignment, q.device)
        return mask & sees if self.conventions.mask_polarity == "true_attends" else mask | ~sees

    def _call(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, causal: bool) -> object:
        attn_mask: Tensor | None = mask
        if mask is not None and self.mask_form == "additive":
            zeros = torch.zeros(mask.shape, dtype=q.dtype, device=q.device)
            attn_mask = zeros.masked_fill(~mask, -math.inf)
        return self.fn(q, k, v, attn_mask=attn_mask, is_causal=causal)

    def __call__(
        self, q: Tensor, k: Tensor, v: Tensor, *, mask: Tensor | None, causal: bool
    ) -> tuple[Tensor, Tensor | None]:
        if causal and mask is not None and self.accepts_both is not True:
            if self.accepts_both is None:
                try:
                    return self._output(self._call(q, k, v, mask, causal))
                except (RuntimeError, ValueError):
                    self.accepts_both = False  # refused: fold from now on
            mask, causal = self._fold(q, k, mask), False
        return self._output(self._call(q, k, v, mask, causal))

    def _output(self, result: object) -> tuple[Tensor, Tensor | None]:
        """The output, or (output, weights) when the function returns its weights."""
        if isinstance(result, tuple) and len(result) == 2:
            out, weights = result
            return out, None if self.conventions.weights == "none" else weights
        return result, None  # type: ignore[return-value]  # the guard checks the type


def attention_function_target(
    name: str,
    fn: SDPAFunction,
    *,
    conventions: Conventions = SDPA_CONVENTIONS,
    mask_form: MaskForm = "bool",
    accepts_mask_with_causal: bool | None = None,
    description: str = "",
) -> Target:
    """A target for a function with torch SDPA's signature,
    `fn(q, k, v, attn_mask=None, is_causal=False) -> out` on (batch, heads, length, width).

    conventions: SDPA's by default (boolean masks True = may attend, is_causal top-left
    aligned, no weights); mask_form: "bool" or "additive" (a float mask added to the
    scores: 0 visible, -inf hidden); accepts_mask_with_causal: False when the function
    refuses attn_mask together with is_causal (the harness folds the causal triangle into
    the mask), None to find out from its first refusal."""
    if mask_form not in ("bool", "additive"):
        raise ValueError(f"mask_form: {mask_form!r}, expected 'bool' or 'additive'")
    if mask_form == "additive" and conventions.mask_polarity != "true_attends":
        raise ValueError(
            "mask_form='additive' has no polarity: declare mask_polarity='true_attends'"
        )
    if accepts_mask_with_causal not in (True, False, None):
        raise ValueError(
            f"accepts_mask_with_causal: {accepts_mask_with_causal!r}, expected True, False "
            "or None (find out)"
        )
    if not callable(fn):
        raise TypeError(f"fn: {type(fn).__name__} is not callable")
    adapter = SDPAFunctionAdapter(
        fn, conventions, mask_form=mask_form, accepts_mask_with_causal=accepts_mask_with_causal
    )
    what = getattr(fn, "__qualname__", type(fn).__name__)
    return Target(
        name=name,
        description=description or f"{what}(q, k, v, attn_mask, is_causal), {mask_form} attn_mask",
        conventions=conventions,
        attention=adapter,
    )
