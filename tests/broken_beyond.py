"""Broken targets for the properties beyond the notes (issue 32): decoder-only models built
from the reference that honour ModelSpec's n_kv_heads, window and relative_positions, each
with one bug of a class real reimplementations ship; a multi-head module that tiles its
key/value heads; ALiBi biases with wrong slopes. MUTANTS maps each factory to the
properties that must catch it."""

import torch
from torch import Tensor
from transformer_spec.properties.targets.adapters.parts import components_target
from transformer_spec.properties.targets.declarations import built_beyond
from transformer_spec.properties.targets.levels import ModelSpec, seed_torch
from transformer_spec.properties.targets.protocols import Target
from transformer_spec.reference.config import Positional

from transformer_spec import reference as R

from . import family


class BeyondModel:
    """The reference decoder, built as the spec asks, with `bug` (or none)."""

    pad_id = None  # no padding token: the padding properties are not applicable

    def __init__(self, spec: ModelSpec, bug: str = "") -> None:
        self.bug, self.spec = bug, spec
        self.model = self._build(spec.window)
        built_beyond(self, spec)

    def _build(self, window: int | None) -> R.DecoderOnlyModel:
        s, bug = self.spec, self.bug
        if window is not None and bug == "window_one_too_wide":
            window += 1
        if window is not None and bug == "window_one_too_narrow":
            window = max(1, window - 1)
        relative = s.relative_positions and bug != "absolute_positions"
        positional: Positional = "rotary" if relative else "sinusoidal"
        if s.relative_positions and bug == "positions_dropped":
            positional = "none"
        config = R.TransformerConfig(
            vocab_size=s.vocab_size,
            shape="decoder_only",
            d_model=s.d_model,
            n_heads=s.n_heads,
            n_kv_heads=s.n_kv_heads,
            d_ff=s.d_ff,
            n_encoder_layers=0,
            n_decoder_layers=s.n_layers,
            max_len=2 * s.max_len,  # room for shifted positions
            positional=positional,
            sliding_window=window,
            dropout=0.0,
            dtype=s.dtype,
            device=str(s.device),
        )
        seed_torch(s.seed)
        model = R.build_model(config).eval()
        assert isinstance(model, R.DecoderOnlyModel)
        return model

    @torch.no_grad()
    def logits(self, tokens: Tensor, src: Tensor | None = None) -> Tensor:
        out: Tensor = self.model(tokens)
        return out

    @torch.no_grad()
    def incremental_logits(self, tokens: Tensor, src: Tensor | None = None) -> Tensor:
        model = self.model
        if self.bug == "cache_forgets_window":  # the same weights, decoded without the window
            model = self._build(None)
        return R.incremental_logits(model, tokens)

    @torch.no_grad()
    def logits_at(self, tokens: Tensor, start: int) -> Tensor:
        out: Tensor = self.model(tokens, start=start)
        return out


def _model_target(bug: str) -> Target:
    return Target(
        name=f"beyond-{bug}",
        description=f"reference decoder honouring the spec's features, with {bug}",
        model=lambda spec: BeyondModel(spec, bug),
        model_kinds=("decoder_only",),
    )


def honest() -> Target:
    return _model_target("")


def window_one_too_wide() -> Target:
    return _model_target("window_one_too_wide")


def window_one_too_narrow() -> Target:
    return _model_target("window_one_too_narrow")


def absolute_positions() -> Target:
    """Declares positions relative only, but adds sinusoids to the embeddings."""
    return _model_target("absolute_positions")


def positions_dropped() -> Target:
    """Declares rotary positions and echoes relative_positions, but applies none (the rotary
    call left out of the attention layer)."""
    return _model_target("positions_dropped")


def cache_forgets_window() -> Target:
    return _model_target("cache_forgets_window")


def gqa_tiled() -> Target:
    """Query head i reads key/value head i mod g, declared consecutive."""
    return family.MEMBERS["twin_gqa_interleave_does_tile"]()


def alibi_slopes_reversed() -> Target:
    """The paper's slopes in reverse order: the first head gets the smallest."""

    def bias(n_heads: int, length: int) -> Tensor:
        i, j = torch.arange(length)[:, None], torch.arange(length)[None, :]
        slopes = R.alibi_slopes(n_heads).flip(0)
        return -slopes[:, None, None] * (i - j).double()

    return components_target("alibi-slopes-reversed", alibi=bias)


def alibi_rewards_distance() -> Target:
    """The sign flipped: far keys are favoured."""
    return components_target("alibi-rewards-distance", alibi=lambda h, n: -R.alibi_bias(h, n, n))


MUTANTS: dict[str, tuple[str, ...]] = {
    "window_one_too_wide": ("model.decoder_only.window_hides_distant_keys",),
    "window_one_too_narrow": ("model.decoder_only.window_as_long_as_sequence_is_causal",),
    "absolute_positions": ("model.decoder_only.relative_positions_shift_invariant",),
    "positions_dropped": ("model.decoder_only.relative_positions_tell_order",),
    "cache_forgets_window": ("model.decoder_only.windowed_grouped_cache_matches_full",),
    "gqa_tiled": ("multihead.grouped_query_equals_repeated_heads",),
    "alibi_slopes_reversed": ("components.alibi_slopes_follow_paper",),
    "alibi_rewards_distance": ("components.alibi_bias_linear_in_distance",),
}
