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

import torch
from torch import Tensor
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.nn.functional import scaled_dot_product_attention

from ..targets import Conventions, Target, Unsupported

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
