"""What the guard reads in a call's arguments and result: the tensors in them, compared bit
for bit; the result shape each Protocol promises (`_want_shape`) and the dtype and device a
result may have; and the positions whose output no clause defines (a decoder's left
padding, `_leading_padding`)."""

from collections.abc import Iterator
from numbers import Integral
from typing import Any

import torch
from torch import Tensor
from transformer_spec.properties.targets.declarations import pads_left
from transformer_spec.properties.targets.levels import ComponentSpec, LayerSpec, MHASpec, ModelSpec

Spec = MHASpec | ModelSpec | LayerSpec | ComponentSpec


def _same_tensor(a: Tensor, b: Tensor) -> bool:
    """Bit for bit, NaN equal to NaN in the same place."""
    if a.shape != b.shape or a.dtype != b.dtype or a.device != b.device:
        return False
    if a.is_floating_point() or a.is_complex():
        return bool(((a == b) | (torch.isnan(a) & torch.isnan(b))).all())
    return torch.equal(a, b)


def _tensors(value: object, label: str) -> Iterator[tuple[str, Tensor]]:
    """Every tensor in a value (nested tuples, lists and dict values), with where it is."""
    if isinstance(value, Tensor):
        yield label, value
    elif isinstance(value, tuple | list):
        for i, item in enumerate(value):
            yield from _tensors(item, f"{label}[{i}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _tensors(item, f"{label}[{key!r}]")


def _arguments(args: tuple[object, ...], kwargs: dict[str, object]) -> list[tuple[str, Tensor]]:
    found = [t for i, a in enumerate(args) for t in _tensors(a, f"argument {i + 1}")]
    return found + [t for k, a in kwargs.items() for t in _tensors(a, k)]


def _leading_padding(
    what: str,
    owner: object,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    spec: Spec | None,
    polarity: str,
) -> Tensor | None:
    """Where a causal query sees only padded keys, (b, t) True: each sequence's leading run
    of padding (left padding) in a decoder's input, in a model.logits call (<PAD> tokens, the
    `owner` model's pad_id) or a decoder layer call (its key_padding, in `polarity`). These are
    fully masked rows: no clause defines their output (nn.TransformerEncoder's fast path
    gives NaN) and no property reads it. None for any other call, for a model that takes
    <PAD> as an ordinary token (masks_padding = False), or without padding."""
    kind = getattr(spec, "kind", None)
    if what == "model.logits" and kind in ("decoder_only", "encoder_decoder"):
        pad_id = getattr(owner, "pad_id", None)
        tokens = args[0] if args else None
        if (
            not pads_left(owner)
            or not isinstance(pad_id, Integral)
            or not isinstance(tokens, Tensor)
        ):
            return None
        pad = tokens == int(pad_id)
    elif what == "layer" and kind in ("decoder", "decoder_only"):
        given = kwargs.get("key_padding")
        if not isinstance(given, Tensor) or given.dtype != torch.bool:
            return None
        pad = given if polarity == "true_blocks" else ~given
    else:
        return None
    return pad.int().cumprod(dim=-1).bool()


def _over(positions: Tensor | None, t: Tensor) -> Tensor | None:
    """`positions` (b, t) shaped to broadcast over `t` (b, t, ...); None when it marks
    nothing or does not fit."""
    if positions is None or not bool(positions.any()) or positions.shape != t.shape[:2]:
        return None
    return positions.to(t.device).reshape(*positions.shape, *[1] * (t.dim() - 2))


def _first_difference(a: Tensor, b: Tensor) -> str:
    if a.shape != b.shape:
        return f"shape {tuple(a.shape)} became {tuple(b.shape)}"
    differ = ~((a == b) | (torch.isnan(a) & torch.isnan(b))) if a.is_floating_point() else a != b
    index = tuple(int(i) for i in differ.nonzero()[0])
    return (
        f"{int(differ.sum())} element(s), first at {index}: {a[index].item()} -> {b[index].item()}"
    )


def _want_shape(
    what: str, first: Tensor | None, args: tuple[object, ...], spec: Spec | None
) -> tuple[int, ...] | None:
    """The result shape the protocol promises, where it is fixed by the inputs and spec."""
    if first is None:
        return None
    if what == "attention" and len(args) >= 3 and isinstance(args[2], Tensor):
        return (*first.shape[:-1], args[2].shape[-1])  # (batch, heads, Lq, d_v)
    vocab = getattr(spec, "vocab_size", None)
    d_model = getattr(spec, "d_model", None)
    if what in (
        "layer",
        "components.layer_norm",
        "components.layer_norm_affine",
        "components.feed_forward",
    ):
        return tuple(first.shape)
    if what in ("model.logits", "model.incremental_logits") and vocab is not None:
        return (*first.shape, vocab)
    if what in ("components.embed", "components.embed_with_positions") and d_model is not None:
        return (*first.shape, d_model)
    if what == "components.unembed" and vocab is not None:
        return (*first.shape[:-1], vocab)
    if what == "model.loss":
        return ()
    if what == "components.positional_table" and args and isinstance(args[0], int):
        return (args[0], d_model) if d_model is not None else None
    return None


def _to_cpu(value: Any) -> Any:
    if isinstance(value, Tensor):  # a meta tensor has no data to copy (a wrong-device fault)
        return value.detach() if value.is_meta else value.detach().cpu()
    if isinstance(value, tuple | list):
        return type(value)(_to_cpu(v) for v in value)
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    return value


def _contiguous(value: Any) -> Any:
    """A tensor argument in the layout a tokenizer or data loader gives (the properties slice
    and permute token ids, which leaves views: nanoGPT's loss calls `.view` on its targets)."""
    return value.contiguous() if isinstance(value, Tensor) else value


# What a model returns at the end of its computation: logits and the loss.
_ENDS = ("model.logits", "model.incremental_logits", "model.loss")


def _finer_end(what: str, got: torch.dtype, want: torch.dtype) -> bool:
    """A model's logits or loss may come in a finer dtype than the build's: float32 logits
    from a 16-bit model, or a float32 cross-entropy, lose nothing (good practice, and what
    many libraries do). A coarser one loses what the model computed; and a kernel's, a
    layer's or a component's output, which feeds further computation in the build's dtype,
    must keep it."""
    return what in _ENDS and torch.finfo(got).eps <= torch.finfo(want).eps


def _device(spec: object) -> torch.device:
    device = getattr(spec, "device", None)
    return device if isinstance(device, torch.device) else torch.device("cpu")


def _on(actual: torch.device, wanted: torch.device) -> bool:
    return actual.type == wanted.type and (wanted.index is None or actual.index == wanted.index)
