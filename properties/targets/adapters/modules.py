"""Attention functions and multi-head modules of any signature, described by a `Call`:
`attention_target(name, fn, call=...)` and `multihead_target(name, factory, call=...)`.

```python
multihead_target("labml-mha", lambda d, h: MultiHeadAttention(h, d, dropout_prob=0.0),
                 call=Call(query="query", key="key", value="value", mask="mask",
                           mask_shape="q k b", layout="l b d", causal="mask"),
                 projections={"q": "query.linear", "k": "key.linear", "v": "value.linear",
                              "o": "output"})
```

projections: where the notes' W_Q, W_K, W_V, W_O are, by attribute path: "q", "k", "v"
and "o" each alone, or fused ("qkv", "kv", ...: one weight whose output rows hold the parts
one after the other, in the order of the letters). A path names an nn.Linear (weight
(out, in), its bias), an nn.Identity (no output projection), or a 2-D parameter in
nn.Linear's layout (its bias: the same path with "weight" replaced by "bias", if any).
Head i owns columns i*d_k:(i+1)*d_k of each part (the usual `.view(b, L, h, d_k)` split);
None: the properties that need the projections are not applicable.
"""

from collections.abc import Callable, Mapping
from dataclasses import replace

import torch
from torch import Tensor, nn
from transformer_spec.properties.targets.adapters.call import Call
from transformer_spec.properties.targets.adapters.sdpa import causal_triangle
from transformer_spec.properties.targets.conventions import Conventions
from transformer_spec.properties.targets.levels import MHASpec, Projections, Unsupported, seed_torch
from transformer_spec.properties.targets.protocols import Target

MHAFactory = Callable[[int, int], nn.Module]  # (d_model, n_heads) -> module
ProjectionPaths = Mapping[str, str]


def check_projections(paths: ProjectionPaths | None, where: str) -> None:
    """Every one of q, k, v once, and o: a one-line error otherwise."""
    if paths is None:
        return
    if not isinstance(paths, Mapping):
        raise TypeError(
            f"{where}: projections must map 'q', 'k', 'v', 'o' (or fused 'qkv', "
            f"'kv') to attribute paths, not a {type(paths).__name__}"
        )
    letters = "".join(k for k in paths if k != "o")
    if sorted(letters) != ["k", "q", "v"] or "o" not in paths or set(letters) - set("qkv"):
        raise ValueError(
            f"{where}: projections has keys {sorted(paths)}; expected q, k and v "
            "each once (alone or fused, as 'qkv' or 'kv') and o"
        )
    for key, path in paths.items():
        if not isinstance(path, str):
            raise TypeError(f"{where}: projections[{key!r}] is {path!r}; expected a path")


def find_path(module: nn.Module, path: str, what: str) -> nn.Module | Tensor:
    """The submodule or parameter at an attribute path; `what` names the declaration in the
    one-line error."""
    try:
        return module.get_submodule(path)
    except AttributeError:
        try:
            return module.get_parameter(path)
        except AttributeError:
            raise ValueError(
                f"{what}: {type(module).__name__} has no submodule or parameter {path!r}"
            ) from None


def _weight(module: nn.Module, path: str, key: str) -> tuple[Tensor | None, Tensor | None]:
    """(weight (out, in) or None for identity, bias or None) at `path`."""
    found = find_path(module, path, f"projections[{key!r}]")
    if isinstance(found, nn.Identity):
        return None, None
    if isinstance(found, nn.Linear):
        return found.weight.detach(), None if found.bias is None else found.bias.detach()
    if isinstance(found, Tensor) and found.dim() == 2:
        bias_path = path[: -len("weight")] + "bias" if path.endswith("weight") else None
        bias = None
        if bias_path is not None:
            try:
                bias = module.get_parameter(bias_path).detach()
            except AttributeError:
                bias = None
        return found.detach(), bias
    raise ValueError(
        f"projections[{key!r}]: {path!r} is a {type(found).__name__}, expected an "
        "nn.Linear, an nn.Identity or a 2-D weight"
    )


def find_projections(
    module: nn.Module, paths: ProjectionPaths, d_model: int, kv_width: int | None = None
) -> Projections:
    """W_Q, W_K, W_V, W_O by path; `kv_width`: the width of W_K and W_V when the module
    groups its key/value heads (n_kv_heads * d_k), else d_model."""
    widths = {"q": d_model, "k": kv_width or d_model, "v": kv_width or d_model, "o": d_model}
    weights: dict[str, Tensor] = {}
    biases: dict[str, Tensor | None] = {}
    for letters, path in paths.items():
        w, b = _weight(module, path, letters)
        if w is None:  # nn.Identity: no output projection
            w = torch.eye(d_model, dtype=_dtype(module), device=_device(module))
        sizes = [widths[c] for c in letters]
        if tuple(w.shape) != (sum(sizes), d_model):
            raise ValueError(
                f"projections[{letters!r}]: {path!r} has weight of shape "
                f"{tuple(w.shape)}; expected (out, in) = ({sum(sizes)}, {d_model})"
            )
        parts = torch.split(w, sizes)
        for c, part, bias in zip(letters, parts, _chunks(b, sizes), strict=True):
            weights[c], biases[c] = part.T, bias
    return Projections(
        W_Q=weights["q"],
        W_K=weights["k"],
        W_V=weights["v"],
        W_O=weights["o"],
        b_Q=biases["q"],
        b_K=biases["k"],
        b_V=biases["v"],
        b_O=biases["o"],
    )


def _chunks(b: Tensor | None, sizes: list[int]) -> list[Tensor | None]:
    return [None] * len(sizes) if b is None else list(torch.split(b, sizes))


def _dtype(module: nn.Module) -> torch.dtype:
    return next((p.dtype for p in module.parameters()), torch.get_default_dtype())


def _device(module: nn.Module) -> torch.device:
    return next((p.device for p in module.parameters()), torch.device("cpu"))


def built(factory: Callable[..., nn.Module], spec: object, *sizes: int) -> nn.Module:
    """The factory's module, seeded from the spec, on its device and dtype, in eval mode."""
    seed_torch(spec.seed)  # type: ignore[attr-defined]
    module = factory(*sizes)
    if not isinstance(module, nn.Module):
        raise TypeError(f"the factory returned a {type(module).__name__}, not an nn.Module")
    return module.to(device=spec.device, dtype=spec.dtype).eval()  # type: ignore[attr-defined]


def mask_values(
    call: Call,
    attends: Tensor | None,
    causal: bool,
    fold: bool,
    shape: tuple[int, int, int, int, torch.dtype, torch.device],
    alignment: str | None,
) -> dict[str, object]:
    """The mask arguments of one call from a (b, 1, Lq, Lk) True = attends mask (or None)
    and the causal request; shape is (batch, n_heads, Lq, Lk, dtype, device). The causal triangle
    goes into the mask when the Call says so, or when `fold` (the code refused a mask
    together with its causal flag). Only what is needed is passed."""
    batch, n_heads, lq, lk, dtype, device = shape
    values: dict[str, object] = {}
    folded = causal and (call.causal == "mask" or (fold and attends is not None))
    if folded:
        triangle = causal_triangle(lq, lk, alignment, device)[None, None]
        attends = triangle.expand(batch, 1, lq, lk) if attends is None else attends & triangle
    if call.causal not in ("never", "always", "mask"):
        values["causal"] = causal and not folded
    if attends is None and call.mask_required:
        attends = torch.ones(batch, 1, lq, lk, dtype=torch.bool, device=device)
    if attends is None:
        return values
    per_key = bool((attends == attends[..., :1, :]).all())  # the same for every query
    if call.padding is not None and per_key and not folded and not call.mask_required:
        values["padding"] = call.padding_tensor(attends[:, 0, 0, :], dtype)
    elif call.mask is not None:
        values["mask"] = call.mask_tensor(attends, n_heads, dtype)
    else:
        raise Unsupported(
            "the code takes a key padding mask only (Call.padding), not a mask "
            "that differs between queries"
        )
    return values


def invoke(
    code: Callable[..., object],
    call: Call,
    values: dict[str, object],
    masks: tuple[Tensor | None, bool, "Folding"],
    shape: tuple[int, int, int, int, torch.dtype, torch.device],
    alignment: str | None,
) -> object:
    """Call `code` as `call` describes with the inputs in `values` and the masks built from
    (attends, causal, folding): the one call path of every adapter built from a Call."""
    attends, causal, folding = masks
    if call.need_weights is not None:
        values = values | {"need_weights": True}

    def once(fold: bool) -> object:
        args, kwargs = call.arguments(
            values | mask_values(call, attends, causal, fold, shape, alignment)
        )
        return code(*args, **kwargs)

    return folding.run(once, causal and attends is not None)


class Folding:
    """Calls code that takes a causal flag and a mask: both together, until the code refuses
    them once (as SDPA does); from then on the causal triangle is folded into the mask."""

    def __init__(self, call: Call) -> None:
        can_fold = call.mask is not None and "q" in call.mask_axes
        self.fold, self.can_fold = False, can_fold and call.causal_form == "argument"

    def run(self, invoke: Callable[[bool], object], masked_causal: bool) -> object:
        if not (masked_causal and self.can_fold) or self.fold:
            return invoke(self.fold)
        try:
            return invoke(False)
        except (RuntimeError, ValueError):
            self.fold = True  # refused: fold from now on
            return invoke(True)


# ---- attention functions -----------------------------------------------------------------


class CallAttention:
    """A function described by a Call behind the harness's attention protocol."""

    def __init__(self, fn: Callable[..., object], call: Call, conventions: Conventions) -> None:
        self.fn, self.call, self.alignment = fn, call, conventions.causal_alignment
        self.folding = Folding(call)

    def __call__(
        self, q: Tensor, k: Tensor, v: Tensor, *, mask: Tensor | None, causal: bool
    ) -> tuple[Tensor, Tensor | None]:
        c = self.call
        _fixed_causal(c, causal)
        if mask is not None and c.mask is None and c.padding is None:
            raise Unsupported("the function takes no mask (Call.mask and Call.padding unset)")
        values: dict[str, object] = {
            "query": c.to_layout(q),
            "key": c.to_layout(k),
            "value": c.to_layout(v),
        }
        shape = (q.shape[0], q.shape[1], q.shape[-2], k.shape[-2], q.dtype, q.device)
        masks = (mask, causal, self.folding)
        result = invoke(self.fn, c, values, masks, shape, self.alignment)
        out = c.output_of(result)
        if isinstance(out, Tensor):
            out = c.from_layout(out)
        return out, c.weights_of(result, q.shape[1])  # type: ignore[return-value]  # guarded


def _fixed_causal(call: Call, causal: bool) -> None:
    if call.causal == "always" and not causal:
        raise Unsupported("the code is causal on every call (Call.causal='always')")
    if call.causal == "never" and causal:
        raise Unsupported("the code is never causal (Call.causal='never')")


def conventions_for(call: Call, conventions: Conventions | None, where: str) -> Conventions:
    """The target's conventions: the masks reach the adapter True = may attend (the Call
    converts them), and the weights are what the Call says comes back."""
    conv = conventions or Conventions()
    if not isinstance(conv, Conventions):
        raise TypeError(f"{where}: conventions is a {type(conv).__name__}, not Conventions")
    if conv.mask_polarity != "true_attends":
        raise ValueError(
            f"{where}: declare the mask polarity in the Call (Call.mask_polarity, "
            "Call.padding_polarity), not in conventions.mask_polarity"
        )
    kind = call.weights_kind
    if conv.weights not in ("per_head", kind):  # declared apart from the reference's default
        raise ValueError(
            f"{where}: conventions.weights={conv.weights!r} but the Call says {kind!r} "
            "(Call.weights, Call.weights_shape); declare the weights in the Call only"
        )
    explanations = dict(conv.explanations)
    if kind != "per_head" and "weights" not in explanations:
        explanations["weights"] = {
            "none": "the call returns no attention weights",
            "averaged": "the weights come back averaged over heads",
        }[kind]
    return replace(conv, weights=kind, explanations=explanations)


def check_name(name: object, what: object, where: str) -> None:
    if not isinstance(name, str) or not name.strip():
        raise TypeError(f"{where}: the first argument is the target's name, a non-empty str")
    if not callable(what):
        raise TypeError(f"{where}: {type(what).__name__} is not callable")


def call_of(call: object, where: str) -> Call:
    if not isinstance(call, Call):
        raise TypeError(f"{where}: call is a {type(call).__name__}, not a Call")
    return call


def describe(code: object, name: str) -> str:
    """The code's qualified name, or the target's name for a lambda."""
    what = str(getattr(code, "__qualname__", type(code).__name__))
    return name if "<lambda>" in what else what


SDPA_CALL = Call(
    query=0,
    key=1,
    value=2,
    mask="attn_mask",
    mask_shape="b 1 q k",
    causal="is_causal",
    layout="b h l d",
)


def attention_target(
    name: str,
    fn: Callable[..., object],
    *,
    call: Call = SDPA_CALL,
    conventions: Conventions | None = None,
    description: str = "",
) -> Target:
    """A target for an attention function on (q, k, v), called as `call` describes (SDPA's
    signature by default: `fn(q, k, v, attn_mask=, is_causal=)` on (b, h, L, d_k))."""
    where = f"attention_target({name!r})"
    check_name(name, fn, where)
    call = call_of(call, where)
    call.check_for("attention", where)
    conv = conventions_for(call, conventions, where)
    return Target(
        name=name,
        description=description or f"{describe(fn, name)}: attention function",
        conventions=conv,
        attention=CallAttention(fn, call, conv),
    )


# ---- multi-head modules ------------------------------------------------------------------


class CallMHA:
    """A module described by a Call behind the harness's multi-head protocol (targets.MHA)."""

    def __init__(
        self,
        spec: MHASpec,
        factory: MHAFactory,
        call: Call,
        projections: ProjectionPaths | None,
        conventions: Conventions,
        kv_heads: bool = False,
    ) -> None:
        n_kv = spec.n_kv_heads or spec.n_heads
        sizes = (spec.d_model, spec.n_heads, n_kv) if kv_heads else (spec.d_model, spec.n_heads)
        self.module = built(factory, spec, *sizes)
        self.kv_width = n_kv * spec.d_model // spec.n_heads if kv_heads else None
        self.call, self.paths, self.d_model = call, projections, spec.d_model
        self.n_heads, self.alignment = spec.n_heads, conventions.causal_alignment
        self.folding = Folding(call)
        self.projections()  # a wrong path or shape is reported now

    @torch.no_grad()
    def __call__(
        self, x_query: Tensor, x_kv: Tensor, *, key_padding: Tensor | None, causal: bool
    ) -> tuple[Tensor, Tensor | None]:
        c = self.call
        _fixed_causal(c, causal)
        attends = None if key_padding is None else key_padding[:, None, None, :]
        if attends is not None:
            attends = attends.expand(-1, 1, x_query.shape[1], -1)
        values: dict[str, object]
        if c.x is not None:
            values = {"x": c.to_layout(x_query)}
        else:
            values = {"query": c.to_layout(x_query), "key": c.to_layout(x_kv)}
            if c.value is not None:
                values["value"] = values["key"]
        b, lq, lk = x_query.shape[0], x_query.shape[1], x_kv.shape[1]
        shape = (b, self.n_heads, lq, lk, x_query.dtype, x_query.device)
        masks = (attends, causal, self.folding)
        result = invoke(self.module, c, values, masks, shape, self.alignment)
        out = c.output_of(result)
        if isinstance(out, Tensor):
            out = c.from_layout(out).detach()
        weights = c.weights_of(result, self.n_heads)
        return out, None if weights is None else weights.detach()  # type: ignore[return-value]

    def projections(self) -> Projections | None:
        if self.paths is None:
            return None
        return find_projections(self.module, self.paths, self.d_model, self.kv_width)


def multihead_target(
    name: str,
    factory: MHAFactory,
    *,
    call: Call,
    projections: ProjectionPaths | None = None,
    conventions: Conventions | None = None,
    description: str = "",
    kv_heads: bool = False,
) -> Target:
    """A target for a multi-head attention module built by `factory(d_model, n_heads)`
    (seeded, moved to the run's device and dtype, eval mode, called under no_grad), called
    as `call` describes: Call.x for one input (self-attention), Call.query and Call.key
    (and Call.value) for cross-attention. `kv_heads=True`: the module groups its key/value
    heads (grouped-query or multi-query attention, beyond the notes), built by
    `factory(d_model, n_heads, n_kv_heads)`, its W_K and W_V n_kv_heads * d_k wide."""
    where = f"multihead_target({name!r})"
    if not isinstance(kv_heads, bool):
        raise TypeError(f"{where}: kv_heads={kv_heads!r}; expected True or False")
    check_name(name, factory, where)
    call = call_of(call, where)
    call.check_for("mha", where)
    check_projections(projections, where)
    conv = conventions_for(call, conventions, where)
    return Target(
        name=name,
        description=description or f"{describe(factory, name)}: multi-head module",
        conventions=conv,
        mha=lambda spec: CallMHA(spec, factory, call, projections, conv, kv_heads),
        mha_inputs="self" if call.x is not None else "cross",
        mha_causal=call.causal_form,
        mha_key_padding=call.takes_padding,
    )
