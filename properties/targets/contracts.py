"""The contract of every method of each adapter level, as the guard checks it on every call
(`CONTRACTS`), the Protocols each level is reached through (`PROTOCOL_LEVELS`) and the field
of Target that offers each level (`LEVEL_FIELDS`)."""

from dataclasses import dataclass

from torch import Tensor
from transformer_spec.properties.targets.levels import (
    MHA,
    AttentionFn,
    Components,
    GenerativeModel,
    Layer,
    Model,
    PositionedModel,
    TrainableModel,
    Vocabulary,
)


@dataclass(frozen=True)
class Contract:
    """What one method of an adapter level promises, as the guard checks it on every call.

    returns: the types the result may have (a wrong type is an `output` fault; None: not
    checked, the properties that use the result say what is wrong with it); pure: no
    side effects and no RNG argument, so the guard makes the first calls twice and they must
    agree bit for bit (unless the target declares deterministic=False); recorded: the calls
    are kept for the pictures of a failing example; result: the promise in words."""

    returns: tuple[type, ...] | None
    pure: bool
    result: str
    recorded: bool = False


_MAYBE = (Tensor, type(None))
# Every method of every Protocol of levels.py, as the guard names its calls: LEVEL for a callable
# level, LEVEL.METHOD otherwise (a test keeps this table and the Protocols the same).
CONTRACTS: dict[str, Contract] = {
    "attention": Contract((tuple,), True, "(output (b, h, Lq, d_v), weights or None)", True),
    "mha": Contract((tuple,), True, "(output (b, Lq, d_model), weights or None)"),
    "mha.projections": Contract(None, False, "Projections or None"),
    "model.logits": Contract((Tensor,), True, "logits (b, t, vocab)"),
    "model.incremental_logits": Contract(_MAYBE, True, "logits (b, t, vocab) or None"),
    "model.logits_at": Contract(_MAYBE, True, "logits (b, t, vocab) or None"),
    "model.generate": Contract((Tensor,), False, "tokens (b, p + n), n <= max_new_tokens"),
    "model.loss": Contract((Tensor,), False, "a differentiable scalar"),
    "model.parameters": Contract(None, False, "every parameter by name"),
    "model.embedding_parameter": Contract((Tensor,), False, "M (vocab, d_model), the parameter"),
    "model.load_pretrained_embedding": Contract(None, False, "nothing (M is set)"),
    "layer": Contract((Tensor,), True, "x (b, t, d_model)"),
    "layer.zero_sublayer_outputs": Contract(None, False, "nothing (weights zeroed)"),
    "vocabulary.units": Contract(None, False, "every unit, specials left out"),
    "vocabulary.encode": Contract(None, False, "ids"),
    "vocabulary.pad_batch": Contract((Tensor,), False, "ids (b, length) int64"),
    "components.embedding_matrix": Contract(_MAYBE, False, "M (vocab, d_model) or None"),
    "components.embed": Contract(_MAYBE, True, "(b, t, d_model) or None"),
    "components.positional_table": Contract(_MAYBE, True, "(n, d_model) or None", True),
    "components.embed_with_positions": Contract(_MAYBE, True, "(b, t, d_model) or None"),
    "components.layer_norm": Contract(_MAYBE, True, "x's shape, or None"),
    "components.layer_norm_affine": Contract(_MAYBE, True, "x's shape, or None"),
    "components.feed_forward": Contract(_MAYBE, True, "(b, t, d_model) or None"),
    "components.rms_norm": Contract(_MAYBE, True, "x's shape, or None"),
    "components.gated_feed_forward": Contract(_MAYBE, True, "(b, t, d_model) or None"),
    "components.rotary": Contract(_MAYBE, True, "x's shape, or None"),
    "components.alibi_bias": Contract(_MAYBE, True, "(h, q, k) or (h, 1, k), or None"),
    "components.gated_feed_forward_weights": Contract(None, False, "3 weights or None"),
    "components.unembed": Contract(_MAYBE, True, "(b, t, vocab) or None"),
}
# The level each Protocol is reached at (as the guard names it).
PROTOCOL_LEVELS: dict[str, tuple[type, ...]] = {
    "attention": (AttentionFn,),
    "mha": (MHA,),
    "model": (Model, GenerativeModel, TrainableModel, PositionedModel),
    "layer": (Layer,),
    "vocabulary": (Vocabulary,),
    "components": (Components,),
}
# Each level's field of Target (what a target offers it with), which is also the name the
# registry's needs and the kill matrix's reach use for the level.
LEVEL_FIELDS: dict[str, str] = {
    "attention": "attention",
    "mha": "mha",
    "model": "model",
    "layer": "layers",
    "vocabulary": "vocabulary",
    "components": "components",
}
