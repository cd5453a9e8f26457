"""What a target declares beyond its methods, as the harness reads it: the fields beyond the
notes a model built (`built_beyond`, `asked_beyond`), whether it hides <PAD> keys
(`masks_padding`, `pads_left`), the warning for a declaration whose meaning changes
(`DeclarationWarning`) and the error for one of the wrong type (`DeclarationTypeError`)."""

import warnings

from transformer_spec.properties.targets.levels import ModelSpec


class DeclarationTypeError(TypeError, ValueError):
    """A declaration of the wrong type (a non-callable factory or hook): a TypeError, as in
    every constructor, and a ValueError for code written when some constructors raised that."""


BEYOND_FIELDS = ("n_kv_heads", "window", "relative_positions")


def asked_beyond(spec: ModelSpec) -> dict[str, object]:
    """The fields beyond the notes that `spec` asks for (those not at their defaults)."""
    defaults = {"n_kv_heads": None, "window": None, "relative_positions": False}
    return {f: getattr(spec, f) for f in BEYOND_FIELDS if getattr(spec, f) != defaults[f]}


def built_beyond(model: object, spec: ModelSpec) -> None:
    """Say that `model` built what `spec` asks beyond the notes (the attributes that the
    Model protocol's note in levels.py names)."""
    for field_name, value in asked_beyond(spec).items():
        setattr(model, field_name, value)


class DeclarationWarning(FutureWarning):
    """A target relies on a declaration whose meaning changes in the next minor version: it
    keeps its old meaning until then, and every report names the declaration to add. (The
    runner puts each one into the result's `warnings`; the CLI prints them under the cell.)"""


def masks_padding(model: object) -> bool:
    """False when the model declares <PAD> an ordinary token (`masks_padding = False`);
    True when it says nothing. For an encoder (whose padding properties a pad_id has always
    switched on); a decoder's left padding asks `pads_left`."""
    return getattr(model, "masks_padding", None) is not False


def pads_left(model: object) -> bool:
    """Whether a decoder's padding properties may pad on the left: the model hides <PAD>
    keys from every query. Its `masks_padding` when it declares one. A model that declares
    `pad_id` and says nothing keeps the meaning a pad_id had in 0.1 for one minor version
    (0.2): right padding only, with a DeclarationWarning; from 0.3 it will mean left padding
    too. Without a pad_id there is no padding to place (True)."""
    declared = getattr(model, "masks_padding", None)
    pad_id = getattr(model, "pad_id", None)
    if declared is None and pad_id is not None:
        named = getattr(model, "__wrapped__", model)  # the model's own class, not a proxy's
        warnings.warn(
            f"{type(named).__name__} declares pad_id={pad_id!r} but not masks_padding: its "
            "decoder is padded on the right only, as in 0.1. From 0.3 a pad_id alone will "
            "promise that <PAD> keys are hidden from every query, and the left-padding "
            "properties will pad on the left. Declare masks_padding = True if the model "
            "hides <PAD> keys, masks_padding = False if it takes <PAD> as an ordinary token, "
            "or pad_id = None if it has no padding token.",
            DeclarationWarning,
            stacklevel=2,
        )
        return False
    return declared is not False
