"""Broken whole-model targets (see broken_targets.py for the pattern): each is the reference
model (math path) with one bug, put in by patching the built instance (forward hooks that
change a module's arguments or result), never by editing the reference.

MUTANTS maps each factory name to the model properties that must catch it."""

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from transformer_spec.properties import Target
from transformer_spec.properties.targets.builtin import ReferenceModel
from transformer_spec.properties.targets.levels import Model, ModelKind, ModelSpec

from transformer_spec import reference as R

Patch = Callable[[R.AnyModel, ModelSpec], None]
Kwargs = dict[str, Any]
ALL: tuple[ModelKind, ...] = ("encoder_decoder", "decoder_only", "encoder_only")
GENERATIVE: tuple[ModelKind, ...] = ("encoder_decoder", "decoder_only")


def _target(name: str, patch: Patch, kinds: tuple[ModelKind, ...] = ALL) -> Target:
    def build(spec: ModelSpec) -> Model:
        ref = ReferenceModel(spec, "math")
        patch(ref.model, spec)
        return ref

    return Target(name=name, description=name.replace("-", " "), model=build, model_kinds=kinds)


def _of(model: nn.Module, cls: type[nn.Module]) -> list[Any]:
    return [m for m in model.modules() if isinstance(m, cls)]


def _with_kwargs(module: nn.Module, **changes: object) -> None:
    """Every call of `module` gets these keyword arguments instead of the caller's."""

    def hook(_: nn.Module, args: tuple[Any, ...], kwargs: Kwargs) -> tuple[tuple[Any, ...], Kwargs]:
        return args, {**kwargs, **changes}

    module.register_forward_pre_hook(hook, with_kwargs=True)


def _map_output(module: nn.Module, fn: Callable[[Tensor], Tensor]) -> None:
    module.register_forward_hook(lambda _m, _args, out: fn(out))


def decoder_not_causal() -> Target:
    """Decoder self-attention without the causal mask."""

    def patch(model: R.AnyModel, spec: ModelSpec) -> None:
        for layer in _of(model, R.DecoderLayer):
            _with_kwargs(layer.self_attn, causal=False)

    return _target("decoder-not-causal", patch, GENERATIVE)


def cache_without_offset() -> Target:
    """Each cached decoding step gets the positional encoding of position 0."""

    def patch(model: R.AnyModel, spec: ModelSpec) -> None:
        model.embed.register_forward_pre_hook(lambda _m, args: args[:1])

    return _target("cache-without-offset", patch, GENERATIVE)


def padding_ignored() -> Target:
    """No attention sublayer receives the padding mask."""

    def patch(model: R.AnyModel, spec: ModelSpec) -> None:
        for mha in _of(model, R.MultiHeadAttention):
            _with_kwargs(mha, mask=None)

    return _target("padding-ignored", patch)


def decoder_padding_ignored() -> Target:
    """The decoder's self-attention gets no padding mask, only its causal one: right padding
    stays invisible (the pads come after every real token), left padding does not."""

    def patch(model: R.AnyModel, spec: ModelSpec) -> None:
        for layer in _of(model, R.DecoderLayer):
            _with_kwargs(layer.self_attn, mask=None)

    return _target("decoder-padding-ignored", patch, GENERATIVE)


def decoder_sees_itself_only() -> Target:
    """Every decoder self-attention query sees its own position alone (no causal leak, and
    no past either)."""

    def itself(_: nn.Module, args: tuple[Any, ...], kwargs: Kwargs) -> tuple[Any, Kwargs]:
        t = args[0].shape[1]
        alone = torch.eye(t, dtype=torch.bool, device=args[0].device)
        mask = kwargs.get("mask")
        return args, {**kwargs, "mask": alone if mask is None else mask & alone}

    def patch(model: R.AnyModel, spec: ModelSpec) -> None:
        for layer in _of(model, R.DecoderLayer):
            layer.self_attn.register_forward_pre_hook(itself, with_kwargs=True)

    return _target("decoder-sees-itself-only", patch, GENERATIVE)


def batch_statistics() -> Target:
    """The embeddings are centred with the mean over the batch: items interact."""

    def patch(model: R.AnyModel, spec: ModelSpec) -> None:
        _map_output(model.embed, lambda x: x - 0.5 * x.mean(0, keepdim=True))

    return _target("batch-statistics", patch)


def ignores_positions() -> Target:
    """The positional encoding is computed but never added."""

    def patch(model: R.AnyModel, spec: ModelSpec) -> None:
        model.embed.positions.register_forward_hook(lambda _m, args, _out: args[0])

    return _target("ignores-positions", patch)


def positions_always_on() -> Target:
    """Adds the positional encoding also when built without one."""

    def build(spec: ModelSpec) -> Model:
        return ReferenceModel(dataclasses.replace(spec, positional=True), "math")

    return Target(
        name="positions-always-on", description="positions always on", model=build, model_kinds=ALL
    )


def causal_encoder() -> Target:
    """Encoder self-attention with a causal mask."""

    def patch(model: R.AnyModel, spec: ModelSpec) -> None:
        for layer in _of(model, R.EncoderLayer):
            _with_kwargs(layer.self_attn, causal=True)

    return _target("causal-encoder", patch)


def cross_kv_from_decoder() -> Target:
    """Cross-attention takes its keys and values from the decoder stream, not the encoder."""

    def patch(model: R.AnyModel, spec: ModelSpec) -> None:
        def hook(_: nn.Module, args: tuple[Any, ...], kwargs: Kwargs) -> tuple[Any, Kwargs]:
            return (args[0], args[0]), {**kwargs, "mask": None}

        for layer in _of(model, R.DecoderLayer):
            layer.cross_attn.register_forward_pre_hook(hook, with_kwargs=True)

    return _target("cross-kv-from-decoder", patch, ("encoder_decoder",))


def causal_cross_attention() -> Target:
    """Cross-attention with a (top-left) causal mask: target i sees source 0..i only."""

    def patch(model: R.AnyModel, spec: ModelSpec) -> None:
        for layer in _of(model, R.DecoderLayer):
            layer.cross_attn.causal_alignment = "top_left"
            _with_kwargs(layer.cross_attn, causal=True)

    return _target("causal-cross-attention", patch, ("encoder_decoder",))


def encoder_sees_target() -> Target:
    """The encoder output is mixed with the mean of the decoder input: it depends on the
    target, and differs between the full pass and each cached step."""

    def patch(model: R.AnyModel, spec: ModelSpec) -> None:
        def hook(_: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
            x, memory = args[0], args[1]
            return (x, memory + x.mean(1, keepdim=True), *args[2:])

        assert isinstance(model, R.EncoderDecoderModel)
        model.decoder.register_forward_pre_hook(hook)

    return _target("encoder-sees-target", patch, ("encoder_decoder",))


def nan_last_logits() -> Target:
    """The logits of the last position are NaN (read from an unset buffer)."""

    def patch(model: R.AnyModel, spec: ModelSpec) -> None:
        _map_output(model.unembed, lambda out: out.index_fill(1, torch.tensor([-1]), math.nan))

    return _target("nan-last-logits", patch)


def doubled_below_float64() -> Target:
    """A fast path taken in every dtype but float64 doubles the attention branch (a factor
    1/2 forgotten in a fused kernel), so only the float64 comparison can see it."""

    def patch(model: R.AnyModel, spec: ModelSpec) -> None:
        if spec.dtype == torch.float64:
            return
        with torch.no_grad():
            for mha in _of(model, R.MultiHeadAttention):
                mha.W_O.weight *= 2.0
                mha.W_O.bias *= 2.0

    return _target("doubled-below-float64", patch)


def logits_upcast_after_rounding() -> Target:
    """Logits returned in float32 from a 16-bit build (an upcast, fine in itself), but
    computed in a precision below the build's: rounded to bfloat16 in a float32 build, to
    whole numbers (a quantised head) in a 16-bit one; a fast path every dtype but float64
    takes."""

    def low(out: Tensor) -> Tensor:
        rounded = out.bfloat16() if out.dtype == torch.float32 else torch.round(out)
        return rounded.float()

    def patch(model: R.AnyModel, spec: ModelSpec) -> None:
        if spec.dtype != torch.float64:
            _map_output(model.unembed, low)

    return _target("logits-upcast-after-rounding", patch)


class _LastPositionOnly(ReferenceModel):
    def logits(self, tokens: Tensor, src: Tensor | None = None) -> Tensor:
        return super().logits(tokens, src)[:, -1:]


def last_position_only() -> Target:
    """Returns only the next-token logits (batch, 1, vocab)."""
    return Target(
        name="last-position-only",
        description="last position only",
        model=lambda spec: _LastPositionOnly(spec, "math"),
        model_kinds=ALL,
    )


# factory -> properties that must fail on it
MUTANTS: dict[str, tuple[str, ...]] = {
    "logits_upcast_after_rounding": ("model.matches_float64",),
    "decoder_not_causal": (
        "model.decoder_only.causal_no_future_leak",
        "model.encoder_decoder.causal_no_future_leak",
        "model.decoder_only.teacher_forcing",
        "model.encoder_decoder.teacher_forcing",
        "model.decoder_only.incremental_matches_full",
        "model.encoder_decoder.incremental_matches_full",
    ),
    "cache_without_offset": (
        "model.decoder_only.incremental_matches_full",
        "model.encoder_decoder.incremental_matches_full",
    ),
    "padding_ignored": (
        "model.encoder_only.padding_has_no_effect",
        "model.encoder_decoder.source_padding_has_no_effect",
        "model.decoder_only.padding_has_no_effect",
        "model.encoder_decoder.target_padding_has_no_effect",
    ),
    "decoder_padding_ignored": (
        "model.decoder_only.padding_has_no_effect",
        "model.encoder_decoder.target_padding_has_no_effect",
    ),
    "decoder_sees_itself_only": (
        "model.decoder_only.sees_every_earlier_token",
        "model.encoder_decoder.sees_every_earlier_token",
    ),
    "batch_statistics": ("model.batch_items_independent",),
    "ignores_positions": ("model.encoder_only.order_sensitive",),
    # Not class_token_invariant: with positions wrongly on, the class token's logits move by
    # only ~1.1x the bfloat16 bound, so catching it there depends on the examples drawn.
    "positions_always_on": ("model.encoder_only.permutation_equivariant",),
    "causal_encoder": (
        "model.encoder_only.all_to_all",
        "model.encoder_only.permutation_equivariant",
        "model.encoder_only.class_token_invariant",
    ),
    "cross_kv_from_decoder": (
        "model.encoder_decoder.uses_source",
        "model.encoder_decoder.cross_attention_not_causal",
        "model.encoder_decoder.causal_no_future_leak",
    ),
    "causal_cross_attention": ("model.encoder_decoder.cross_attention_not_causal",),
    "encoder_sees_target": (
        "model.encoder_decoder.causal_no_future_leak",
        "model.encoder_decoder.incremental_matches_full",
        "model.encoder_decoder.teacher_forcing",
    ),
    "nan_last_logits": ("model.logits_give_distributions",),
    "doubled_below_float64": ("model.matches_float64",),
    "last_position_only": ("model.output_shape",),
}
