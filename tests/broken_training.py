"""Broken generation and training (see broken_targets.py for the pattern): the reference model
(math path) with one bug in `generate`, `loss` or the embedding's training, each a bug class
that real decoding and training loops have shipped.

MUTANTS maps each factory name to the properties that must catch it."""

from collections.abc import Callable

import torch
from torch import Tensor
from transformer_spec.properties import Target
from transformer_spec.properties.targets.builtin import ReferenceModel
from transformer_spec.properties.targets.levels import Model, ModelKind, ModelSpec

from transformer_spec import reference as R

GENERATIVE: tuple[ModelKind, ...] = ("encoder_decoder", "decoder_only")
Choose = Callable[[Tensor, bool, torch.Generator | None], Tensor]


def _target(name: str, cls: type[ReferenceModel]) -> Target:
    def build(spec: ModelSpec) -> Model:
        return cls(spec, "math")

    return Target(
        name=name, description=name.replace("-", " "), model=build, model_kinds=GENERATIVE
    )


def _choose(logits: Tensor, sample: bool, generator: torch.Generator | None) -> Tensor:
    if not sample:
        return logits.argmax(-1)
    return torch.multinomial(torch.softmax(logits.float(), -1), 1, generator=generator)[:, 0]


class _Loop(ReferenceModel):
    """generate written out as a plain loop over full passes, with the knobs the bugs turn."""

    start_token = "start"  # which special id an empty prompt starts from
    position = -1  # the position whose logits choose the next token
    stop_at_end = True
    steps_short = 0  # how many steps fewer than asked
    choose: Choose = staticmethod(_choose)

    def generate(
        self,
        prompt: Tensor | None,
        src: Tensor | None,
        max_new_tokens: int,
        *,
        sample: bool,
        generator: torch.Generator | None,
    ) -> Tensor:
        if prompt is None:
            batch = 1 if src is None else src.shape[0]
            first = getattr(self.model.config.special, self.start_token)
            prompt = torch.full((batch, 1), first, device=self.model.device)
        out, done = prompt, torch.zeros(prompt.shape[0], dtype=torch.bool, device=prompt.device)
        for _ in range(max_new_tokens - self.steps_short):
            logits = self.logits(out, src)[:, self.position]
            nxt = self.choose(logits, sample, generator).masked_fill(done, self.pad_id)
            out = torch.cat([out, nxt[:, None]], dim=1)
            if self.stop_at_end:
                done |= nxt == self.end_id
                if bool(done.all()):
                    break
        return out


def starts_from_pad() -> Target:
    """With no prompt, decoding starts from <PAD> instead of <START>."""
    return _loop_target("starts-from-pad", start_token="pad")


def reads_first_position() -> Target:
    """Each step chooses from the logits of position 0 (logits[:, 0]) instead of the last."""
    return _loop_target("reads-first-position", position=0)


def ignores_end() -> Target:
    """Generation goes on after <END> up to the length limit."""
    return _loop_target("ignores-end", stop_at_end=False)


def one_step_short() -> Target:
    """The step loop runs max_new_tokens - 1 times (range off by one)."""
    return _loop_target("one-step-short", steps_short=1)


def _loop_target(name: str, **knobs: object) -> Target:
    """The written-out loop with some knobs turned."""
    return _target(name, type(f"_Loop_{name}", (_Loop,), knobs))


class _OverwritesPrompt(_Loop):
    def generate(
        self,
        prompt: Tensor | None,
        src: Tensor | None,
        max_new_tokens: int,
        *,
        sample: bool,
        generator: torch.Generator | None,
    ) -> Tensor:
        out = super().generate(prompt, src, max_new_tokens, sample=sample, generator=generator)
        if prompt is None:
            return out
        # The first new token is written one slot early, over the prompt's last token.
        p = prompt.shape[1]
        out = out.clone()
        out[:, p - 1] = out[:, p]
        return out


def overwrites_prompt() -> Target:
    """The first generated token overwrites the last prompt token (an index off by one)."""
    return _target("overwrites-prompt", _OverwritesPrompt)


def sampling_is_greedy() -> Target:
    """sample=True is ignored: every draw is the argmax."""
    return _loop_target(
        "sampling-is-greedy",
        choose=staticmethod(lambda logits, sample, generator: logits.argmax(-1)),
    )


def greedy_samples() -> Target:
    """Greedy decoding samples (the flag is inverted in one branch)."""
    return _loop_target(
        "greedy-samples",
        choose=staticmethod(lambda logits, sample, generator: _choose(logits, True, None)),
    )


def temperature_applied_twice() -> Target:
    """Sampling draws from softmax(2 * logits): a temperature of 0.5 applied where 1 is asked."""
    return _loop_target(
        "temperature-applied-twice",
        choose=staticmethod(
            lambda logits, sample, generator: _choose(2 * logits, sample, generator)
        ),
    )


def _top_k(logits: Tensor, sample: bool, generator: torch.Generator | None) -> Tensor:
    k = max(1, logits.shape[-1] * 3 // 4)
    kth = logits.topk(k, dim=-1).values[:, -1:]
    return _choose(logits.masked_fill(logits < kth, float("-inf")), sample, generator)


def silent_top_k() -> Target:
    """Sampling never draws the rarest quarter of the vocabulary (a top-k left on where plain
    sampling is asked): the rare tokens that the chi-square test pools must still count."""
    return _loop_target("silent-top-k", choose=staticmethod(_top_k))


# ---- training -------------------------------------------------------------------------------


def _labelled_logits(m: ReferenceModel, tokens: Tensor, src: Tensor | None) -> Tensor:
    with torch.enable_grad():
        model = m.model
        if isinstance(model, R.EncoderDecoderModel):
            assert src is not None
            logits: Tensor = model(src, tokens[:, :-1])
        else:
            logits = model(tokens[:, :-1])
    return logits.float()


class _PadCounted(ReferenceModel):
    def loss(self, tokens: Tensor, src: Tensor | None = None) -> Tensor:
        logits = _labelled_logits(self, tokens, src)
        return torch.nn.functional.cross_entropy(logits.flatten(0, 1), tokens[:, 1:].flatten())


def loss_counts_padding() -> Target:
    """The loss scores <PAD> labels too (ignore_index forgotten)."""
    return _target("loss-counts-padding", _PadCounted)


class _MeanOverAll(ReferenceModel):
    def loss(self, tokens: Tensor, src: Tensor | None = None) -> Tensor:
        logits, labels = _labelled_logits(self, tokens, src), tokens[:, 1:]
        per = torch.nn.functional.cross_entropy(
            logits.flatten(0, 1), labels.flatten(), ignore_index=self.pad_id, reduction="sum"
        )
        return per / labels.numel()


def mean_over_all_positions() -> Target:
    """Padded labels add no loss, but the sum is divided by every position, padding too."""
    return _target("mean-over-all-positions", _MeanOverAll)


class _Unshifted(ReferenceModel):
    def loss(self, tokens: Tensor, src: Tensor | None = None) -> Tensor:
        logits = _labelled_logits(self, tokens, src)
        labels = tokens[:, :-1]  # the current token, not the next one
        return torch.nn.functional.cross_entropy(
            logits.flatten(0, 1), labels.flatten(), ignore_index=self.pad_id
        )


def loss_not_shifted() -> Target:
    """Logits at position t are scored against token t instead of token t + 1."""
    return _target("loss-not-shifted", _Unshifted)


class _GradientHigh(ReferenceModel):
    def loss(self, tokens: Tensor, src: Tensor | None = None) -> Tensor:
        loss = super().loss(tokens, src)
        return loss + 0.01 * (loss - loss.detach())  # the same value, 1.01x the gradient


def gradient_one_percent_high() -> Target:
    """Backward gives 1.01 times the loss's gradient (a loss scale not quite undone)."""
    return _target("gradient-one-percent-high", _GradientHigh)


class _Patched(ReferenceModel):
    def __init__(self, spec: ModelSpec, path: str) -> None:
        super().__init__(spec, path)
        self.patch(self.model)

    def patch(self, model: R.AnyModel) -> None:
        raise NotImplementedError


class _DetachedEmbedding(_Patched):
    def patch(self, model: R.AnyModel) -> None:
        model.embed.tokens.register_forward_hook(lambda _m, _a, out: out.detach())


def embedding_detached() -> Target:
    """The token embeddings are detached before the layers: M never learns from the loss."""
    return _target("embedding-detached", _DetachedEmbedding)


class _LastLayerDropped(_Patched):
    def patch(self, model: R.AnyModel) -> None:
        decoder = model.decoder
        assert isinstance(decoder, R.Decoder)
        decoder.layers[-1].register_forward_hook(lambda _m, args, _out: args[0])


def last_layer_dropped() -> Target:
    """The last decoder layer's output is discarded (its result never assigned)."""
    return _target("last-layer-dropped", _LastLayerDropped)


class _FrozenAtInit(_Patched):
    def patch(self, model: R.AnyModel) -> None:
        model.embed.tokens.M.requires_grad_(False)


def embedding_frozen_at_init() -> Target:
    """The embedding is created with requires_grad=False: it is never trained."""
    return _target("embedding-frozen-at-init", _FrozenAtInit)


class _AlwaysFrozen(ReferenceModel):
    def load_pretrained_embedding(self, matrix: Tensor, *, freeze: bool) -> None:
        super().load_pretrained_embedding(matrix, freeze=True)


def pretrained_always_frozen() -> Target:
    """Loading a pretrained embedding freezes it even when fine-tuning is asked."""
    return _target("pretrained-always-frozen", _AlwaysFrozen)


class _NeverFrozen(ReferenceModel):
    def load_pretrained_embedding(self, matrix: Tensor, *, freeze: bool) -> None:
        super().load_pretrained_embedding(matrix, freeze=False)


def freeze_ignored() -> Target:
    """freeze=True is ignored: the pretrained embedding keeps training."""
    return _target("freeze-ignored", _NeverFrozen)


class _LoadIgnored(ReferenceModel):
    def load_pretrained_embedding(self, matrix: Tensor, *, freeze: bool) -> None:
        self.model.embed.tokens.M.requires_grad_(not freeze)  # the matrix itself is dropped


def pretrained_not_loaded() -> Target:
    """load_pretrained_embedding sets the freeze flag but never copies the matrix."""
    return _target("pretrained-not-loaded", _LoadIgnored)


# factory -> properties that must fail on it
MUTANTS: dict[str, tuple[str, ...]] = {
    "starts_from_pad": ("generation.starts_from_start",),
    "reads_first_position": (
        "generation.greedy_appends_argmax",
        "generation.sampling_matches_distribution",
    ),
    "ignores_end": ("generation.stops_at_end",),
    "one_step_short": ("generation.stops_at_end", "generation.starts_from_start"),
    # Greedy tiny models often repeat their last token, which hides the overwrite; the
    # sampled prefixes show it.
    "overwrites_prompt": ("generation.sampling_matches_distribution",),
    "sampling_is_greedy": ("generation.sampling_matches_distribution",),
    "greedy_samples": ("generation.greedy_appends_argmax",),
    "temperature_applied_twice": ("generation.sampling_matches_distribution",),
    "silent_top_k": ("generation.sampling_matches_distribution",),
    "loss_counts_padding": ("training.loss_is_cross_entropy", "training.pad_ignored"),
    "mean_over_all_positions": ("training.loss_is_cross_entropy", "training.pad_ignored"),
    "loss_not_shifted": ("training.loss_is_cross_entropy",),
    # Not fine_tunes_pretrained_embedding: the tied un-embedding still trains M's rows.
    "embedding_detached": ("training.end_to_end_gradients",),
    "last_layer_dropped": ("training.end_to_end_gradients",),
    "embedding_frozen_at_init": ("training.end_to_end_gradients",),
    "gradient_one_percent_high": ("training.end_to_end_gradients",),
    "pretrained_always_frozen": ("training.fine_tunes_pretrained_embedding",),
    "freeze_ignored": ("training.fine_tunes_pretrained_embedding",),
    "pretrained_not_loaded": ("training.fine_tunes_pretrained_embedding",),
}
