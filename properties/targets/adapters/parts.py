"""Layers and components of any signature as targets: `layer_target` (one encoder or
decoder layer, called as a `Call` describes) and `components_target` (an embedding, a
positional table, a norm, an FFN, an un-embedding, each a module of its own).

```python
layer_target("my-layer", lambda d, h, d_ff: Block(d, h, d_ff), kind="decoder_only",
             norm="pre", call=Call(x=0, causal="always"), zero=("attn.proj", "mlp.fc2"))
components_target("my-parts", norm=lambda d: MyLayerNorm(d),
                  feed_forward=lambda d, d_ff: MyFFN(d, d_ff))
```

Every module is built seeded from the spec, moved to the run's device and dtype, put in
eval mode and called under no_grad.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import torch
from torch import Tensor, nn
from transformer_spec.properties.targets.adapters.call import Call
from transformer_spec.properties.targets.adapters.modules import (
    Folding,
    built,
    call_of,
    check_name,
    conventions_for,
    describe,
    find_path,
    invoke,
)
from transformer_spec.properties.targets.conventions import Conventions
from transformer_spec.properties.targets.levels import (
    ComponentSpec,
    LayerKind,
    LayerSpec,
    NormPlacement,
    PositionalLayout,
    Unsupported,
)
from transformer_spec.properties.targets.protocols import Target

LayerFactory = Callable[[int, int, int], nn.Module]  # (d_model, n_heads, d_ff) -> layer
NormKind = Literal["layer_norm", "rms_norm"]
GatedActivation = Literal["silu", "gelu", "gelu_tanh"]
RotaryPairing = Literal["half_split", "interleaved"]
RotaryFactory = Callable[[int], Callable[[Tensor, Tensor], Tensor]]
AlibiFn = Callable[[int, int], Tensor]  # (n_heads, length) -> bias (h, q, k) or (h, 1, k)


def _zero(module: nn.Module, path: str) -> None:
    """Zero the nn.Linear (weight and bias) or the parameter at `path`."""
    found = find_path(module, path, "zero")
    if isinstance(found, nn.Identity):  # no output projection at this size (one head)
        raise Unsupported(f"zero: {path!r} is an nn.Identity, there is no weight to zero")
    params = list(found.parameters(recurse=False)) if isinstance(found, nn.Module) else [found]
    if not params:
        raise ValueError(f"zero: {path!r} is a {type(found).__name__} without parameters")
    for p in params:
        p.zero_()


class CallLayer:
    """A layer described by a Call behind the harness's layer protocol (targets.Layer)."""

    def __init__(
        self, spec: LayerSpec, factory: LayerFactory, call: Call, zero: tuple[str, ...]
    ) -> None:
        self.module = built(factory, spec, spec.d_model, spec.n_heads, spec.d_ff)
        self.call, self.zero, self.kind = call, zero, spec.kind
        self.n_heads = spec.n_heads
        self.folding = Folding(call)
        for path in zero:  # a wrong path is reported now, without zeroing anything
            find_path(self.module, path, "zero")

    @torch.no_grad()
    def __call__(
        self,
        x: Tensor,
        memory: Tensor | None = None,
        *,
        key_padding: Tensor | None = None,
        memory_padding: Tensor | None = None,
    ) -> Tensor:
        c = self.call
        causal = self.kind != "encoder"
        values: dict[str, object] = {"x": c.to_layout(x)}
        if memory is not None:
            values["memory"] = c.to_layout(memory)
        if memory_padding is not None:
            if c.memory_padding is None:  # never dropped silently: the layer would see pads
                raise Unsupported("the layer takes no memory padding (Call.memory_padding)")
            values["memory_padding"] = c.padding_tensor(memory_padding, x.dtype)
        attends = None
        if key_padding is not None:
            attends = key_padding[:, None, None, :].expand(-1, 1, x.shape[1], -1)
        shape = (x.shape[0], self.n_heads, x.shape[1], x.shape[1], x.dtype, x.device)
        masks = (attends, causal, self.folding)
        out = c.output_of(invoke(self.module, c, values, masks, shape, "bottom_right"))
        return c.from_layout(out).detach() if isinstance(out, Tensor) else out  # type: ignore[return-value]

    @torch.no_grad()
    def zero_sublayer_outputs(self) -> None:
        for path in self.zero:
            _zero(self.module, path)


def layer_target(
    name: str,
    factory: LayerFactory,
    *,
    call: Call,
    kind: LayerKind,
    norm: NormPlacement = "post",
    zero: Sequence[str] = (),
    conventions: Conventions | None = None,
    description: str = "",
) -> Target:
    """A target for one layer built by `factory(d_model, n_heads, d_ff)`: kind "encoder",
    "decoder" (with cross-attention to Call.memory) or "decoder_only"; norm "post" or
    "pre"; zero: the paths of every sublayer's output projection (each attention's W_O, the
    FFN's second linear map), zeroed by the residual-path property. A decoder's
    self-attention is causal: Call.causal "always", "mask" or a flag."""
    where = f"layer_target({name!r})"
    check_name(name, factory, where)
    call = call_of(call, where)
    call.check_for("layer", where)
    if kind not in get_args(LayerKind):
        raise ValueError(f"{where}: kind={kind!r}; expected one of {get_args(LayerKind)}")
    if norm not in get_args(NormPlacement):
        raise ValueError(f"{where}: norm={norm!r}; expected one of {get_args(NormPlacement)}")
    if kind == "decoder" and call.memory is None:
        raise ValueError(f"{where}: a 'decoder' layer needs Call.memory (the encoder output)")
    if kind != "decoder" and call.memory is not None:
        raise ValueError(f"{where}: Call.memory is declared but kind={kind!r} has no memory")
    if kind != "encoder" and call.causal == "never":
        raise ValueError(
            f"{where}: a {kind!r} layer's self-attention is causal; Call.causal is 'never' "
            "(declare 'always', 'mask' or the flag's argument)"
        )
    if kind == "encoder" and call.causal == "always":
        raise ValueError(f"{where}: an encoder layer is not causal; Call.causal is 'always'")
    paths = tuple(zero)
    if not all(isinstance(p, str) for p in paths):
        raise TypeError(f"{where}: zero must be attribute paths (str), got {zero!r}")
    conv = conventions_for(call, conventions, where)
    return Target(
        name=name,
        description=description or f"{describe(factory, name)}: one {kind} layer, {norm}-norm",
        conventions=conv,
        layers=lambda spec: CallLayer(spec, factory, call, paths),
        layer_kinds=(kind,),
        layer_norms=(norm,),
    )


# ---- components --------------------------------------------------------------------------

ModuleFactory = Callable[..., nn.Module]


@dataclass(frozen=True)
class _Parts:
    embedding: ModuleFactory | None
    positional: ModuleFactory | None
    norm: ModuleFactory | None
    feed_forward: ModuleFactory | None
    unembed: ModuleFactory | None


@dataclass(frozen=True)
class _Declared:
    positional_layout: PositionalLayout
    embedding_scale: float
    norm_kind: NormKind
    norm_params: tuple[str, str | None]
    norm_eps: float | None
    gated: tuple[str, str, str] | None  # paths of W_gate, W_up, W_down in feed_forward
    gated_activation: GatedActivation
    rotary: RotaryFactory | None
    rotary_pairing: RotaryPairing
    rotary_base: float
    rotary_dim: int | None
    alibi: AlibiFn | None = None


class CallComponents:
    """Component modules behind the harness's components protocol (targets.Components)."""

    def __init__(self, spec: ComponentSpec, parts: _Parts, declared: _Declared) -> None:
        d, v = spec.d_model, spec.vocab_size
        sizes = {
            "embedding": (v, d),
            "positional": (spec.max_len, d),
            "norm": (d,),
            "feed_forward": (d, spec.d_ff),
            "unembed": (d, v),
        }
        self.modules: dict[str, nn.Module] = {}
        for part, size in sizes.items():
            factory = getattr(parts, part)
            if factory is not None:
                self.modules[part] = built(factory, spec, *size)
        self.declared = declared
        self.positional_layout = declared.positional_layout
        self.embedding_scale = declared.embedding_scale
        self.norm_kind, self.norm_params = declared.norm_kind, declared.norm_params
        if declared.norm_eps is not None:  # declared, so the eps is checked exactly
            setattr(self, f"{declared.norm_kind}_eps", declared.norm_eps)
        self.gated_activation = declared.gated_activation
        self.rotary_pairing, self.rotary_base = declared.rotary_pairing, declared.rotary_base
        self.rotary_dim = declared.rotary_dim
        self._rotate = None if declared.rotary is None else declared.rotary(spec.d_model)
        self.d_model = d
        self.dtype, self.device, self.vocab_size = spec.dtype, spec.device, spec.vocab_size

    def _run(self, part: str, x: Tensor) -> Tensor | None:
        module = self.modules.get(part)
        if module is None:
            return None
        with torch.no_grad():
            out = module(x)
        out = out[0] if isinstance(out, tuple) else out
        return out.detach() if isinstance(out, Tensor) else out

    def embedding_matrix(self) -> Tensor | None:
        """M: the embedding module's one parameter of shape (vocab, d_model)."""
        module = self.modules.get("embedding")
        if module is None:
            return None
        shape = (self.vocab_size, self.d_model)
        found = [p for p in module.parameters() if tuple(p.shape) == shape]
        return found[0].detach() if len(found) == 1 else None

    def embed(self, tokens: Tensor) -> Tensor | None:
        return self._run("embedding", tokens)

    def positional_table(self, n_positions: int, start: int = 0) -> Tensor | None:
        """The module given zeros (1, start + n, d_model): a table it returns, or zeros
        plus the table it adds; rows start .. start + n - 1."""
        zeros = torch.zeros(
            1, start + n_positions, self.d_model, dtype=self.dtype, device=self.device
        )
        table = self._run("positional", zeros)
        if table is None:
            return None
        table = table.reshape(-1, table.shape[-1])
        return table[start : start + n_positions]

    def embed_with_positions(self, tokens: Tensor) -> Tensor | None:
        return None  # the parts are separate modules; the harness does not compose them

    def layer_norm(self, x: Tensor) -> Tensor | None:
        return self._run("norm", x) if self.norm_kind == "layer_norm" else None

    def layer_norm_affine(self, x: Tensor, gain: Tensor, bias: Tensor) -> Tensor | None:
        module = self.modules.get("norm")
        gain_path, bias_path = self.norm_params
        if module is None or self.norm_kind != "layer_norm" or bias_path is None:
            return None
        g, b = module.get_parameter(gain_path), module.get_parameter(bias_path)
        saved = g.detach().clone(), b.detach().clone()
        with torch.no_grad():
            g.copy_(gain)
            b.copy_(bias)
            try:
                return self._run("norm", x)
            finally:
                g.copy_(saved[0])
                b.copy_(saved[1])

    def feed_forward(self, x: Tensor) -> Tensor | None:
        return self._run("feed_forward", x)

    def rms_norm(self, x: Tensor) -> Tensor | None:
        return self._run("norm", x) if self.norm_kind == "rms_norm" else None

    def rotary(self, x: Tensor, positions: Tensor) -> Tensor | None:
        if self._rotate is None:
            return None
        with torch.no_grad():
            return self._rotate(x, positions)

    def gated_feed_forward(self, x: Tensor) -> Tensor | None:
        return self._run("feed_forward", x) if self.declared.gated is not None else None

    def alibi_bias(self, n_heads: int, length: int) -> Tensor | None:
        make = self.declared.alibi
        if make is None:
            return None
        with torch.no_grad():  # in the build's dtype, as the scores it is added to
            return make(n_heads, length).to(device=self.device, dtype=self.dtype)

    def gated_feed_forward_weights(self) -> tuple[Tensor, Tensor, Tensor] | None:
        """(W_gate, W_up, W_down) in the notes' layout, from the declared nn.Linear paths."""
        module, paths = self.modules.get("feed_forward"), self.declared.gated
        if module is None or paths is None:
            return None
        weights = []
        for path in paths:
            layer = module.get_submodule(path)
            if not isinstance(layer, nn.Linear):
                raise ValueError(f"gated: {path!r} is a {type(layer).__name__}, not an nn.Linear")
            weights.append(layer.weight.detach().T)
        return weights[0], weights[1], weights[2]

    def unembed(self, x: Tensor) -> Tensor | None:
        return self._run("unembed", x)


def components_target(
    name: str,
    *,
    embedding: ModuleFactory | None = None,
    positional: ModuleFactory | None = None,
    norm: ModuleFactory | None = None,
    feed_forward: ModuleFactory | None = None,
    unembed: ModuleFactory | None = None,
    positional_layout: PositionalLayout = "none",
    embedding_scale: float = 1.0,
    norm_kind: NormKind = "layer_norm",
    norm_params: tuple[str, str | None] = ("weight", "bias"),
    norm_eps: float | None = None,
    gated: tuple[str, str, str] | None = None,
    gated_activation: GatedActivation = "silu",
    rotary: RotaryFactory | None = None,
    rotary_pairing: RotaryPairing = "half_split",
    rotary_base: float = 10000.0,
    rotary_dim: int | None = None,
    alibi: AlibiFn | None = None,
    conventions: Conventions | None = None,
    description: str = "",
) -> Target:
    """A target for separate component modules, each called `module(x)`:
    embedding(vocab_size, d_model) takes token ids; positional(max_len, d_model) takes
    zeros (1, n, d_model) and returns the table or adds it (positional_layout: its sinusoid
    layout, "interleaved" or "concat_t2t", or "learned"); norm(d_model) is a LayerNorm
    (norm_params: the paths of its gain and bias) or, with norm_kind "rms_norm", an RMSNorm;
    norm_eps: its eps, declared so that it is checked exactly; feed_forward(d_model, d_ff),
    gated (SwiGLU, GeGLU) when `gated` names the paths of its W_gate, W_up and W_down
    nn.Linear maps, with `gated_activation` "silu", "gelu" or "gelu_tanh";
    unembed(d_model, vocab_size); rotary(d_model) returns a function (x (b, h, t, d_k),
    positions (t,)) -> x rotated, with its declared rotary_pairing ("half_split",
    "interleaved"), rotary_base and rotary_dim (None: every channel); alibi(n_heads, length)
    returns the ALiBi bias its heads add to a causal sequence's scores, (h, q, k) or, when it
    depends on the key's position only, (h, 1, k)."""
    where = f"components_target({name!r})"
    parts = _Parts(embedding, positional, norm, feed_forward, unembed)
    if not isinstance(name, str) or not name.strip():
        raise TypeError(f"{where}: the first argument is the target's name, a non-empty str")
    for part, factory in vars(parts).items():
        if factory is not None and not callable(factory):
            raise TypeError(f"{where}: {part} is a {type(factory).__name__}, not callable")
    if all(f is None for f in vars(parts).values()) and rotary is None and alibi is None:
        raise ValueError(
            f"{where}: give at least one of embedding, positional, norm, feed_forward, unembed, "
            "rotary, alibi"
        )
    if alibi is not None and not callable(alibi):
        raise TypeError(f"{where}: alibi is a {type(alibi).__name__}, not callable")
    if positional_layout not in get_args(PositionalLayout):
        raise ValueError(
            f"{where}: positional_layout={positional_layout!r}; expected one of "
            f"{get_args(PositionalLayout)}"
        )
    if norm_kind not in get_args(NormKind):
        raise ValueError(f"{where}: norm_kind={norm_kind!r}; expected one of {get_args(NormKind)}")
    if norm_eps is not None and not (isinstance(norm_eps, float) and norm_eps > 0):
        raise ValueError(f"{where}: norm_eps={norm_eps!r}; expected a float > 0 or None")
    if gated is not None and not (len(gated) == 3 and all(isinstance(p, str) for p in gated)):
        raise ValueError(f"{where}: gated={gated!r}; expected the paths (W_gate, W_up, W_down)")
    if gated_activation not in get_args(GatedActivation):
        raise ValueError(
            f"{where}: gated_activation={gated_activation!r}; expected one of "
            f"{get_args(GatedActivation)}"
        )
    if rotary is not None and not callable(rotary):
        raise TypeError(f"{where}: rotary is a {type(rotary).__name__}, not callable")
    if rotary_pairing not in get_args(RotaryPairing):
        raise ValueError(
            f"{where}: rotary_pairing={rotary_pairing!r}; expected one of {get_args(RotaryPairing)}"
        )
    if not (isinstance(rotary_base, float) and rotary_base > 1):
        raise ValueError(f"{where}: rotary_base={rotary_base!r}; expected a float > 1")
    if rotary_dim is not None and not (
        isinstance(rotary_dim, int) and rotary_dim > 0 and rotary_dim % 2 == 0
    ):
        raise ValueError(f"{where}: rotary_dim={rotary_dim!r}; expected an even int > 0 or None")
    declared = _Declared(
        positional_layout,
        embedding_scale,
        norm_kind,
        norm_params,
        norm_eps,
        None if gated is None else tuple(gated),  # type: ignore[arg-type]
        gated_activation,
        rotary,
        rotary_pairing,
        rotary_base,
        rotary_dim,
        alibi,
    )
    conv = conventions or Conventions()
    if not isinstance(conv, Conventions):
        raise TypeError(f"{where}: conventions is a {type(conv).__name__}, not Conventions")

    def build(spec: ComponentSpec) -> CallComponents:
        return CallComponents(spec, parts, declared)

    given = ", ".join(p for p, f in vars(parts).items() if f is not None)
    return Target(
        name=name,
        description=description or f"components: {given}",
        conventions=conv,
        components=build,
    )
