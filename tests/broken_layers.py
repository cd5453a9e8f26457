"""Broken encoder and decoder layers, and broken vocabularies (see broken_targets.py for the
pattern): the reference layer (math path) or vocabulary with one bug each.

MUTANTS maps each factory name to the properties that must catch it."""

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from transformer_spec.properties import Target
from transformer_spec.properties.targets.builtin import ReferenceLayer, ReferenceVocabulary
from transformer_spec.properties.targets.levels import Layer, LayerKind, LayerSpec

from transformer_spec import reference as R

KINDS: tuple[LayerKind, ...] = ("encoder", "decoder", "decoder_only")
Patch = Callable[[nn.Module], None]


def _target(name: str, patch: Patch, kinds: tuple[LayerKind, ...] = KINDS) -> Target:
    def build(spec: LayerSpec) -> Layer:
        ref = ReferenceLayer(spec, "math")
        patch(ref.layer)
        return ref

    return Target(
        name=name,
        description=name.replace("-", " "),
        layers=build,
        layer_kinds=kinds,
        layer_norms=("post", "pre"),
    )


def _of(module: nn.Module, cls: type[nn.Module]) -> list[Any]:
    return [m for m in module.modules() if isinstance(m, cls)]


def _with_kwargs(module: nn.Module, **changes: object) -> None:
    def hook(_: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return args, {**kwargs, **changes}

    module.register_forward_pre_hook(hook, with_kwargs=True)


def residual_missing() -> Target:
    """Each sublayer's output replaces x instead of being added to it."""

    def patch(layer: nn.Module) -> None:
        for res in _of(layer, R.Residual):

            def forward(x: Tensor, sublayer: Callable[[Tensor], Tensor], res: Any = res) -> Tensor:
                if res.placement == "pre":
                    out: Tensor = sublayer(res.norm(x))
                    return out
                return res.norm(sublayer(x))  # type: ignore[no-any-return]

            res.forward = forward

    return _target("residual-missing", patch)


def placement_swapped() -> Target:
    """Built with the other norm placement than the one asked for (pre-LN for post-LN)."""

    def patch(layer: nn.Module) -> None:
        for res in _of(layer, R.Residual):
            res.placement = "pre" if res.placement == "post" else "post"

    return _target("placement-swapped", patch)


def decoder_layer_not_causal() -> Target:
    """The decoder layer's self-attention runs without its causal mask."""

    def patch(layer: nn.Module) -> None:
        if isinstance(layer, R.DecoderLayer):
            _with_kwargs(layer.self_attn, causal=False)

    return _target("decoder-layer-not-causal", patch, ("decoder", "decoder_only"))


def layer_padding_ignored() -> Target:
    """No attention in the layer receives its padding mask."""

    def patch(layer: nn.Module) -> None:
        for mha in _of(layer, R.MultiHeadAttention):
            _with_kwargs(mha, mask=None)

    return _target("layer-padding-ignored", patch)


def decoder_self_padding_ignored() -> Target:
    """The decoder layer's self-attention ignores the padding mask (its causal mask alone
    hides right padding, not left padding)."""

    def patch(layer: nn.Module) -> None:
        if isinstance(layer, R.DecoderLayer):
            _with_kwargs(layer.self_attn, mask=None)

    return _target("decoder-self-padding-ignored", patch, ("decoder", "decoder_only"))


def memory_padding_ignored() -> Target:
    """The decoder layer's cross-attention ignores the memory's padding."""

    def patch(layer: nn.Module) -> None:
        if isinstance(layer, R.DecoderLayer) and layer.cross_attn is not None:
            _with_kwargs(layer.cross_attn, mask=None)

    return _target("memory-padding-ignored", patch, ("decoder",))


def layer_mixes_batch() -> Target:
    """The layer adds a tenth of the batch mean of its output to every item."""

    def patch(layer: nn.Module) -> None:
        layer.register_forward_hook(lambda _m, _a, out: out + 0.1 * out.mean(0, keepdim=True))

    return _target("layer-mixes-batch", patch)


# ---- vocabularies ---------------------------------------------------------------------------


def _vocab_target(name: str, cls: type[ReferenceVocabulary]) -> Target:
    return Target(name=name, description=name.replace("-", " "), vocabulary=cls)


class _DropsUnknown(ReferenceVocabulary):
    def encode(self, text: str) -> list[int]:
        return [i for i in super().encode(text) if i != self.unk_id]


def unknown_dropped() -> Target:
    """Units missing from the vocabulary are silently dropped."""
    return _vocab_target("unknown-dropped", _DropsUnknown)


class _Grows(ReferenceVocabulary):
    def encode(self, text: str) -> list[int]:
        for unit in text.split():
            if unit not in self.vocab.unit_to_id:
                self.vocab.unit_to_id[unit] = len(self.vocab.unit_to_id)
        return super().encode(text)


def vocabulary_grows() -> Target:
    """Every unknown unit gets a new id on first sight instead of <UNK>."""
    return _vocab_target("vocabulary-grows", _Grows)


class _FrequencyIds(ReferenceVocabulary):
    """Ids follow how often each known unit has been seen so far (a tokeniser that keeps
    learning while it is used)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = dict.fromkeys(self.units(), 0)

    def encode(self, text: str) -> list[int]:
        for unit in text.split():
            if unit in self.seen:
                self.seen[unit] += 1
        ranked = sorted(self.seen, key=lambda u: -self.seen[u])
        base = min(self.vocab.unit_to_id[u] for u in ranked)
        ids = {u: base + rank for rank, u in enumerate(ranked)}
        return [ids.get(u, self.unk_id) for u in text.split()]


def ids_by_frequency() -> Target:
    """Ids are re-ranked by frequency on every call: the same text encodes differently later."""
    return _vocab_target("ids-by-frequency", _FrequencyIds)


class _PadsLeft(ReferenceVocabulary):
    def pad_batch(self, sequences: Sequence[Sequence[int]]) -> Tensor:
        width = max(len(s) for s in sequences)
        rows = [[self.pad_id] * (width - len(s)) + list(s) for s in sequences]
        return torch.tensor(rows, dtype=torch.long)


def pads_on_the_left() -> Target:
    """pad_batch puts the <PAD> ids before the tokens."""
    return _vocab_target("pads-on-the-left", _PadsLeft)


class _Truncates(ReferenceVocabulary):
    def pad_batch(self, sequences: Sequence[Sequence[int]]) -> Tensor:
        width = min(len(s) for s in sequences)
        return torch.tensor([list(s)[:width] for s in sequences], dtype=torch.long)


def truncates_to_shortest() -> Target:
    """pad_batch cuts every sequence to the shortest instead of padding."""
    return _vocab_target("truncates-to-shortest", _Truncates)


# factory -> properties that must fail on it
MUTANTS: dict[str, tuple[str, ...]] = {
    "residual_missing": ("layers.residual_path",),
    "placement_swapped": ("layers.residual_path",),
    "decoder_layer_not_causal": ("layers.decoder_causal",),
    "layer_padding_ignored": ("layers.padding_no_effect",),
    "memory_padding_ignored": ("layers.padding_no_effect",),
    "decoder_self_padding_ignored": ("layers.padding_no_effect",),
    "layer_mixes_batch": ("layers.batch_items_independent",),
    "unknown_dropped": ("vocabulary.unknown_units_become_unk",),
    "vocabulary_grows": ("vocabulary.unknown_units_become_unk",),
    "ids_by_frequency": ("vocabulary.encoding_is_fixed",),
    "pads_on_the_left": ("vocabulary.pad_batch_keeps_tokens",),
    "truncates_to_shortest": ("vocabulary.pad_batch_keeps_tokens",),
}
