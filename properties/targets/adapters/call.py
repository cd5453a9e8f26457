"""`Call`: how a third-party module or function is called, declared once and shared by
every constructor (`attention_target`, `multihead_target`, `layer_target`), so that code
of any signature is plugged in without an adapter class.

A field that names an argument takes its position (an int) or its keyword (a str); None
means the argument is not passed. Shapes and layouts are written as space-separated axis
letters, in the order the code's tensors have them:
- b batch, h heads, q queries, k keys, l length, d width, 1 a broadcast axis of size 1;
- "(b h)" is one axis holding batch and heads together (batch outer).

The harness works batch-first, with boolean masks True = may attend; the adapters built
from a Call convert every tensor to the declared form on the way in and back on the way
out. A Call is validated when it is made, and again by the constructor for the level it
is used at; every error is one line that names the field.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, get_args

import torch
from torch import Tensor
from transformer_spec.properties.targets.conventions import MaskPolarity
from transformer_spec.properties.targets.levels import Unsupported

Arg = int | str | None  # a position, a keyword, or not passed
Where = int | str | None  # where a result sits: the result itself, an index, a key, a path
MaskForm = Literal["bool", "additive"]
Level = Literal["attention", "mha", "layer"]
_CAUSAL_WORDS = ("never", "always", "mask")
_MASK_AXES = set("bhqk1")
_ROLES = ("query", "key", "value", "x", "memory", "mask", "padding", "memory_padding")


def _axes(text: str, field_name: str, allowed: set[str]) -> tuple[str, ...]:
    """'b (b h) q k' -> ('b', 'bh', 'q', 'k'); every letter must be allowed and unique."""
    spaced = text.replace("(", " ( ").replace(")", " ) ").split()
    axes: list[str] = []
    group: list[str] | None = None
    for token in spaced:
        if token == "(" and group is None:
            group = []
        elif token == ")" and group:
            axes.append("".join(group))
            group = None
        elif group is not None and len(token) == 1:
            group.append(token)
        elif len(token) == 1:
            axes.append(token)
        else:
            raise ValueError(f"Call.{field_name}: {text!r} is not space-separated axis letters")
    letters = [c for a in axes for c in a]
    bad = [c for c in letters if c not in allowed]
    named = [c for c in letters if c != "1"]  # a size-1 axis may repeat
    if group is not None or bad or len(set(named)) != len(named):
        what = f"unknown axis {bad[0]!r}" if bad else "an unclosed group or a repeated axis"
        raise ValueError(
            f"Call.{field_name}: {text!r} has {what}; expected letters from "
            f"{' '.join(sorted(allowed))}, each once"
        )
    return tuple(axes)


@dataclass(frozen=True)
class Call:
    """How the code under test is called, and what comes back (see the module docstring).

    Inputs: query, key, value (attention functions and cross-attention modules; value None
    when the key argument carries the values too, as one `context=` tensor); x (the one
    input of a self-attention module or a layer); memory (a decoder layer's encoder output).
    Masks: mask (an attention mask, of axes mask_shape, e.g. "b q k", "b 1 q k", "b h q k",
    "q k b", or "b k" for a key padding mask); padding (a separate key padding mask
    (b, k)); memory_padding (a decoder layer's padding of memory (b, s)). Each boolean mask
    has a polarity ("true_attends": True = may attend; "true_blocks": True = hidden or
    padded); mask_form (for mask) and padding_form (for the padding masks) "additive" pass
    float masks instead, 0 visible and -inf hidden; mask_required: the mask is passed on
    every call, all True when nothing is hidden (code that reads no mask as causal).
    causal: "never", "always" (the code masks causally on its own, on every call), "mask"
    (the caller folds the causal triangle into `mask`), or the argument of a boolean flag.
    layout: the axes of the input and output tensors ("b l d" or "l b d" for modules and
    layers; "b h l d", "b l h d" for attention functions); "" (the default): batch first,
    as the harness gives them ("b l d", or "b h l d" for functions).
    output, weights: where the output and the attention weights are in the result (None:
    the output is the result, or its first item; no weights), an index, a key or attribute,
    or a dotted path ("1.attn"); weights_shape their axes ("b h q k"; "b q k": averaged
    over heads); need_weights: the argument to pass True to so that weights come back.
    extra: constant keyword arguments passed on every call (e.g. {"use_cache": False})."""

    query: Arg = None
    key: Arg = None
    value: Arg = None
    x: Arg = None
    memory: Arg = None
    mask: Arg = None
    mask_shape: str = "b q k"
    mask_polarity: MaskPolarity = "true_attends"
    mask_form: MaskForm = "bool"
    mask_required: bool = False
    padding: Arg = None
    padding_polarity: MaskPolarity = "true_attends"
    padding_form: MaskForm = "bool"
    memory_padding: Arg = None
    causal: str | int = "never"
    layout: str = ""
    output: Where = None
    weights: Where = None
    weights_shape: str = "b h q k"
    need_weights: Arg = None
    extra: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        places: dict[int | str, str] = {}
        for role in (*_ROLES, "need_weights"):
            _place(places, getattr(self, role), f"Call.{role}")
        if isinstance(self.causal, bool) or not isinstance(self.causal, int | str):
            raise TypeError(
                f"Call.causal: {self.causal!r}; expected {_CAUSAL_WORDS} or an argument"
            )
        if self.causal not in _CAUSAL_WORDS:
            _place(places, self.causal, "Call.causal")
        for name, allowed in (
            ("mask_polarity", get_args(MaskPolarity)),
            ("padding_polarity", get_args(MaskPolarity)),
            ("mask_form", get_args(MaskForm)),
            ("padding_form", get_args(MaskForm)),
            ("mask_required", (True, False)),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"Call.{name}: {getattr(self, name)!r}; expected one of {allowed}")
        shape = _axes(self.mask_shape, "mask_shape", _MASK_AXES)
        if "k" not in shape:
            raise ValueError(f"Call.mask_shape: {self.mask_shape!r} has no key axis k")
        _axes(self.weights_shape, "weights_shape", set("bhqk"))
        _axes(self.layout, "layout", set("bhld"))
        for name in ("output", "weights"):
            where = getattr(self, name)
            if where is not None and (isinstance(where, bool) or not isinstance(where, int | str)):
                raise TypeError(f"Call.{name}: {where!r}; expected None, an index or a name")
        if not isinstance(self.extra, Mapping) or not all(isinstance(k, str) for k in self.extra):
            raise TypeError("Call.extra: expected a mapping of keyword names to values")
        clash = set(self.extra) & {p for p in places if isinstance(p, str)}
        if clash:
            raise ValueError(f"Call.extra: {sorted(clash)} are also declared as arguments")
        if self.causal == "mask" and self.mask is None:
            raise ValueError(
                "Call.causal: 'mask' folds the causal triangle into Call.mask, "
                "which is not declared"
            )
        if self.causal == "mask" and "q" not in shape:
            raise ValueError(
                f"Call.causal: 'mask' needs a mask with a query axis; "
                f"mask_shape is {self.mask_shape!r}"
            )
        if self.mask_required and self.mask is None:
            raise ValueError(
                "Call.mask_required: the mask to pass on every call (Call.mask) is not declared"
            )
        if self.weights is None and self.need_weights is not None:
            raise ValueError(
                "Call.need_weights is declared but Call.weights (where they are "
                "in the result) is not"
            )

    # ---- what the call can carry -----------------------------------------------------

    @property
    def mask_axes(self) -> tuple[str, ...]:
        return _axes(self.mask_shape, "mask_shape", _MASK_AXES)

    @property
    def takes_padding(self) -> bool:
        """A key padding mask reaches the code: its own argument, or a per-batch mask."""
        return self.padding is not None or (self.mask is not None and "b" in self.mask_axes)

    @property
    def causal_form(self) -> Literal["argument", "always", "never"]:
        if self.causal in ("always", "never"):
            return self.causal  # type: ignore[return-value]
        return "argument"  # a flag, or folded into the mask on request

    @property
    def weights_kind(self) -> Literal["per_head", "averaged", "none"]:
        if self.weights is None:
            return "none"
        axes = _axes(self.weights_shape, "weights_shape", set("bhqk"))
        return "per_head" if any("h" in a for a in axes) else "averaged"

    def check_for(self, level: Level, where: str) -> None:
        """The roles `level` needs are declared and the others are not (one-line error)."""
        given = {r for r in _ROLES if getattr(self, r) is not None}
        need, allowed = _LEVEL_ROLES[level]
        if level == "mha":
            need = {"x"} if self.x is not None else {"query", "key"}
        missing = sorted(need - given)
        extra = sorted(given - allowed - need)
        if missing:
            raise ValueError(
                f"{where}: Call.{missing[0]} is needed at the {level} level "
                f"(the argument that carries it: a position or a keyword)"
            )
        if extra:
            raise ValueError(f"{where}: Call.{extra[0]} does not apply at the {level} level")
        if level == "mha" and self.x is not None and {"query", "key", "value"} & given:
            raise ValueError(
                f"{where}: Call.x (self-attention) and Call.query/key/value exclude each other"
            )
        axes = _axes(self.layout, "layout", set("bhld"))
        expected = "bhld" if level == "attention" else "bld"
        if axes and (sorted("".join(axes)) != sorted(expected) or len(axes) != len(expected)):
            raise ValueError(
                f"{where}: Call.layout {self.layout!r} at the {level} level; "
                f"expected the axes {' '.join(expected)} in any order"
            )
        if level != "layer" and self.memory_padding is not None:
            raise ValueError(f"{where}: Call.memory_padding applies to decoder layers only")

    # ---- building one call -----------------------------------------------------------

    def arguments(self, values: Mapping[str, object]) -> tuple[list[object], dict[str, object]]:
        """Positional and keyword arguments from role -> value (roles left out: not passed;
        a gap in the positions is filled with None)."""
        args: dict[int, object] = {}
        kwargs: dict[str, object] = dict(self.extra)
        for role, value in values.items():
            where = self._where(role)
            if where is None:
                continue
            if isinstance(where, int):
                args[where] = value
            else:
                kwargs[where] = value
        positional = [args.get(i) for i in range(max(args) + 1)] if args else []
        return positional, kwargs

    def _where(self, role: str) -> Arg:
        if role == "causal":
            return None if self.causal in _CAUSAL_WORDS else self.causal
        return getattr(self, role)  # type: ignore[no-any-return]

    def to_layout(self, t: Tensor) -> Tensor:
        """Batch-first (b, l, d) or (b, h, l, d) -> the declared layout."""
        declared = _axes(self.layout, "layout", set("bhld"))
        return t.permute(*_permutation(_canonical(t), declared)) if declared else t

    def from_layout(self, t: Tensor) -> Tensor:
        declared = _axes(self.layout, "layout", set("bhld"))
        return t.permute(*_permutation(declared, _canonical(t))) if declared else t

    def mask_tensor(self, attends: Tensor, n_heads: int, dtype: torch.dtype) -> Tensor:
        """A (b, h|1, q, k) True = may attend mask in the declared shape, polarity, form."""
        shaped = _shaped(attends, self.mask_axes, n_heads, self.mask_shape)
        return self._form(shaped, dtype, self.mask_polarity, self.mask_form)

    def padding_tensor(self, attends: Tensor, dtype: torch.dtype) -> Tensor:
        """(b, k) True = a real key -> the declared polarity and form."""
        return self._form(attends, dtype, self.padding_polarity, self.padding_form)

    @staticmethod
    def _form(
        attends: Tensor, dtype: torch.dtype, polarity: MaskPolarity, form: MaskForm
    ) -> Tensor:
        if form == "additive":
            zeros = torch.zeros(attends.shape, dtype=dtype, device=attends.device)
            return zeros.masked_fill(~attends, -math.inf)
        return attends if polarity == "true_attends" else ~attends

    def output_of(self, result: object) -> object:
        if self.output is None:
            return result[0] if isinstance(result, tuple | list) else result
        return _take(result, self.output, "Call.output")

    def weights_of(self, result: object, n_heads: int) -> Tensor | None:
        if self.weights is None:
            return None
        w = _take(result, self.weights, "Call.weights")
        if not isinstance(w, Tensor):
            raise TypeError(
                f"Call.weights: the result holds a {type(w).__name__} there, not a tensor"
            )
        return _canonical_weights(w, self.weights_shape, n_heads)


_LEVEL_ROLES: dict[str, tuple[set[str], set[str]]] = {
    "attention": ({"query", "key", "value"}, {"mask", "padding"}),
    "mha": (set(), {"query", "key", "value", "x", "mask", "padding"}),
    "layer": ({"x"}, {"memory", "mask", "padding", "memory_padding"}),
}


def _place(places: dict[int | str, str], where: object, name: str) -> None:
    if where is None:
        return
    if isinstance(where, bool) or not isinstance(where, int | str):
        raise TypeError(f"{name}: {where!r}; expected a position (int), a keyword (str) or None")
    if isinstance(where, int) and where < 0:
        raise ValueError(f"{name}: position {where}; expected 0 or more")
    if isinstance(where, str) and not where.isidentifier():
        raise ValueError(f"{name}: {where!r} is not a keyword name")
    if where in places:
        raise ValueError(f"{name}: {where!r} is also {places[where]}")
    places[where] = name


def _canonical(t: Tensor) -> tuple[str, ...]:
    return ("b", "l", "d") if t.dim() == 3 else ("b", "h", "l", "d")


def _permutation(source: tuple[str, ...], target: tuple[str, ...]) -> list[int]:
    return [source.index(a) for a in target]


def _shaped(attends: Tensor, axes: tuple[str, ...], n_heads: int, text: str) -> Tensor:
    """(b, h|1, q, k) -> the axes declared; an axis left out must not vary."""
    b, _, q, k = attends.shape
    full = attends.expand(b, n_heads, q, k)
    for i, a in reversed(list(enumerate("bhqk"))):
        if a not in "".join(axes):
            if not bool((full == full.narrow(i, 0, 1)).all()):
                raise Unsupported(f"the mask varies along {a}, which mask_shape {text!r} lacks")
            full = full.narrow(i, 0, 1).squeeze(i)
    kept = [a for a in "bhqk" if a in "".join(axes)]
    order = [kept.index(a) for a in axes if a != "1"]
    out = full.permute(*order)
    for i, a in enumerate(axes):
        if a == "1":
            out = out.unsqueeze(i)
    return out.contiguous()


def _take(result: object, where: int | str, name: str) -> object:
    value = result
    for part in str(where).split("."):
        if part.isdigit() and isinstance(value, tuple | list):
            if int(part) >= len(value):
                raise TypeError(f"{name}: the result has {len(value)} items, no item {part}")
            value = value[int(part)]
        elif isinstance(value, Mapping):
            if part not in value:
                raise TypeError(f"{name}: the result has no key {part!r}")
            value = value[part]
        elif hasattr(value, part):
            value = getattr(value, part)
        else:
            raise TypeError(f"{name}: a {type(value).__name__} in the result has no {part!r}")
    return value


def _canonical_weights(w: Tensor, text: str, n_heads: int) -> Tensor:
    """Weights in the declared axes -> (b, h, q, k), or (b, q, k) when averaged."""
    axes = _axes(text, "weights_shape", set("bhqk"))
    if w.dim() != len(axes):
        raise TypeError(
            f"Call.weights_shape: {text!r} has {len(axes)} axes, the weights "
            f"have shape {tuple(w.shape)}"
        )
    flat: list[str] = []
    sizes: list[int] = []
    for a, n in zip(axes, w.shape, strict=True):
        if len(a) == 1:
            flat.append(a)
            sizes.append(n)
            continue
        for c in a:  # a group: h is known, the other axis is what is left
            flat.append(c)
            sizes.append(n_heads if c == "h" else n // n_heads)
    w = w.reshape(sizes)
    order = [flat.index(a) for a in "bhqk" if a in flat]
    return w.permute(*order)
