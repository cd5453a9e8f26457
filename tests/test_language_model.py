"""The language-model adapter (`lm_target`), declared capabilities and fixed-instance mode.

A nanoGPT-style GPT (tests/gpt.py) declared as in the README passes every model property
that applies, and its broken twins fail the property that should catch them; a trained
copy-task model checked as one fixed instance passes, and the same checkpoint with a cache
that does not advance positions fails incremental decoding."""

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn
from transformer_spec.properties import FixedModel, Target, lm_target
from transformer_spec.properties.checks import load_all
from transformer_spec.properties.harness.registry import Context, missing_need
from transformer_spec.properties.harness.results import Result
from transformer_spec.properties.harness.runner import run_property
from transformer_spec.properties.harness.tolerance import tolerance_for
from transformer_spec.properties.targets.adapters.lm_model import LanguageModel
from transformer_spec.properties.targets.levels import ModelSpec
from transformer_spec.reference.copy_task import train_copy_task

from tests.gpt import GPT, GPTConfig, decode_one_at_a_time
from tests.test_readme import _python_block

CPU = torch.device("cpu")
MODEL_LEVEL = ("model.", "generation.", "training.")


def outcome(target: Target, pid: str, dtype: torch.dtype = torch.float32) -> Result:
    ctx = Context(target, CPU, dtype, tolerance_for(dtype, CPU))
    return run_property(load_all()[pid], ctx, profile="ci", seed=0)


def applicable(target: Target) -> list[str]:
    return [
        pid
        for pid, p in load_all().items()
        if pid.startswith(MODEL_LEVEL) and missing_need(p, target) is None
    ]


def readme_gpt(**flags: bool) -> Target:
    """The README's GPT example, run as written, with the twins' flags passed to GPTConfig."""

    def config(**sizes: int) -> GPTConfig:
        return GPTConfig(**sizes, **flags)  # type: ignore[arg-type]

    namespace: dict[str, object] = {"GPT": GPT, "GPTConfig": config}
    exec(compile(_python_block("def my_gpt"), "README.md", "exec"), namespace)
    make = namespace["my_gpt"]
    assert callable(make)
    target = make()
    assert isinstance(target, Target)
    return target


def cached_gpt(**flags: bool) -> Target:
    """The README's GPT with the cache call that tests/gpt.py has (nanoGPT's has none)."""

    def build(s: ModelSpec) -> GPT:
        sizes = dict(n_layer=s.n_layers, n_head=s.n_heads, n_embd=s.d_model)
        config = GPTConfig(block_size=s.max_len, vocab_size=s.vocab_size, **sizes, **flags)  # type: ignore[arg-type]
        return GPT(config)

    return lm_target(
        "gpt-cached",
        build,
        targets_kwarg="targets",
        ignore_index=-1,
        d_ff_ratio=4,
        incremental=decode_one_at_a_time,
    )


def test_readme_gpt_passes_every_model_property_that_applies() -> None:
    target = readme_gpt()
    ran = applicable(target)
    assert "generation.sampling_matches_distribution" in ran
    for pid in ran:
        r = outcome(target, pid)
        assert r.outcome in ("pass", "not_applicable"), (pid, r.message, r.counterexample)
    # No <PAD> declared: the padding property says so rather than passing; no cache call.
    for pid in ("training.pad_ignored", "model.decoder_only.incremental_matches_full"):
        assert outcome(target, pid).outcome == "not_applicable", pid


def test_a_declared_cache_call_is_checked() -> None:
    r = outcome(cached_gpt(), "model.decoder_only.incremental_matches_full")
    assert r.outcome == "pass", (r.message, r.counterexample)


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_readme_gpt_passes_in_other_dtypes(dtype: torch.dtype) -> None:
    target = cached_gpt()
    for pid in ("model.decoder_only.incremental_matches_full", "generation.greedy_appends_argmax"):
        r = outcome(target, pid, dtype)
        assert r.outcome == "pass", (pid, r.message, r.counterexample)


@pytest.mark.parametrize(
    ("flag", "pid"),
    [
        ("causal", "model.decoder_only.causal_no_future_leak"),
        ("causal", "model.decoder_only.teacher_forcing"),
        ("cache_positions", "model.decoder_only.incremental_matches_full"),
    ],
)
def test_broken_gpt_twins_fail(flag: str, pid: str) -> None:
    r = outcome(cached_gpt(**{flag: False}), pid)
    assert r.outcome == "fail", (r.message, r.counterexample)


# ---- output forms and declared capabilities ------------------------------------------------


class Tiny(nn.Module):
    """Embedding, a causal running mean and the tied un-embedding: a correct decoder-only LM
    in a few lines, whose output form is chosen by `form`."""

    def __init__(self, spec: ModelSpec, form: str) -> None:
        super().__init__()
        self.embed = nn.Embedding(spec.vocab_size, spec.d_model)
        self.bias = nn.Parameter(torch.zeros(spec.vocab_size))
        self.form = form

    def forward(self, tokens: Tensor) -> object:
        x = self.embed(tokens).cumsum(1)
        x = x / torch.arange(1, tokens.shape[1] + 1, device=tokens.device)[:, None]
        logits = x @ self.embed.weight.T + self.bias  # tied un-embedding
        if self.form == "tuple":
            return logits, None
        if self.form == "object":
            return type("Output", (), {"logits": logits})()
        if self.form == "last":
            return logits[:, -1:]
        if self.form == "dict":
            return {"scores": logits}
        return logits


def tiny(form: str, **declared: object) -> Target:
    return lm_target(f"tiny-{form}", lambda spec: Tiny(spec, form), **declared)  # type: ignore[arg-type]


@pytest.mark.parametrize("form", ["tensor", "tuple", "object"])
def test_each_output_form_is_detected(form: str) -> None:
    for pid in ("model.output_shape", "model.decoder_only.causal_no_future_leak"):
        r = outcome(tiny(form), pid)
        assert r.outcome == "pass", (pid, r.message, r.counterexample)


@pytest.mark.parametrize(
    ("form", "words"),
    [("last", "declare targets_kwarg='targets'"), ("dict", "returned dict; expected logits")],
)
def test_an_output_that_fits_no_form_is_one_clear_error(form: str, words: str) -> None:
    r = outcome(tiny(form), "model.output_shape")
    assert r.outcome == "fail"
    assert words in r.message, r.message


def test_logits_taken_by_a_declared_function() -> None:
    target = tiny("dict", logits=lambda out: out["scores"])
    assert outcome(target, "model.output_shape").outcome == "pass"


def test_undeclared_capabilities_are_not_applicable_with_the_reason() -> None:
    target = tiny("tensor", generate=False, train=False)
    for pid in ("generation.greedy_appends_argmax", "training.end_to_end_gradients"):
        r = outcome(target, pid)
        assert r.outcome == "not_applicable", (pid, r.outcome)
    r = outcome(target, "model.decoder_only.incremental_matches_full")
    assert r.outcome == "not_applicable"


def test_the_harness_loss_is_not_checked_against_itself() -> None:
    """Without targets_kwarg the loss is the harness's own: the properties of the loss do
    not apply (they could not fail), the gradient properties do and pass."""
    target = tiny("tensor", pad_id=0)
    assert outcome(target, "training.loss_is_cross_entropy").outcome == "not_applicable"
    for pid in ("training.end_to_end_gradients", "training.fine_tunes_pretrained_embedding"):
        r = outcome(target, pid)
        assert r.outcome == "pass", (pid, r.message, r.counterexample)


def test_an_ambiguous_embedding_is_one_clear_error() -> None:
    class Untied(Tiny):
        def __init__(self, spec: ModelSpec) -> None:
            super().__init__(spec, "tensor")
            self.other = nn.Parameter(torch.zeros(spec.vocab_size, spec.d_model))

    target = lm_target("untied", Untied)
    r = outcome(target, "training.fine_tunes_pretrained_embedding")
    assert r.outcome == "fail"
    assert "name the token embedding" in r.message and "'other'" in r.message, r.message
    named = lm_target("untied", Untied, embedding="embed.weight")
    assert outcome(named, "training.fine_tunes_pretrained_embedding").outcome == "pass"


def test_a_declared_ffn_ratio_is_what_the_factory_is_asked_for() -> None:
    seen: list[tuple[int, int]] = []

    def build(spec: ModelSpec) -> nn.Module:
        seen.append((spec.d_ff, spec.d_model))
        return Tiny(spec, "tensor")

    assert outcome(lm_target("ratio", build, d_ff_ratio=4), "model.output_shape").outcome == "pass"
    assert seen and all(d_ff == 4 * d_model for d_ff, d_model in seen)


def test_bad_declarations_are_one_line_errors() -> None:
    with pytest.raises(ValueError, match="max_len=6; the model properties need"):
        FixedModel("decoder_only", vocab_size=20, max_len=6, d_model=8)
    with pytest.raises(ValueError, match="vocab_size=8; the model properties need"):
        FixedModel("decoder_only", vocab_size=8, max_len=16, d_model=8)
    fixed = FixedModel("encoder_decoder", vocab_size=20, max_len=16, d_model=8)
    with pytest.raises(ValueError, match="model_kinds=\\('decoder_only',\\) but the fixed"):
        lm_target("x", lambda spec: Tiny(spec, "tensor"), kind="decoder_only", fixed=fixed)
    with pytest.raises(ValueError, match="model_d_ff_ratio=0"):
        lm_target("x", lambda spec: Tiny(spec, "tensor"), d_ff_ratio=0)
    with pytest.raises(ValueError, match="kind='decoder'; expected one of"):
        lm_target("x", lambda spec: Tiny(spec, "tensor"), kind="decoder")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="targets_kwarg=''; expected a non-empty name"):
        lm_target("x", lambda spec: Tiny(spec, "tensor"), targets_kwarg="")


# ---- fixed-instance mode: a trained copy-task checkpoint ------------------------------------

LENGTH = 8  # the copy task's sequences: max_len = LENGTH + 2 = 10, vocab 4 + 10 = 14


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The copy-task reference model, trained once per session (200 steps, about 16 s on one
    thread; it copies about 89% of the held-out tokens) and saved whole with torch.save."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # faster than several threads on a shared machine
    try:
        result = train_copy_task(length=LENGTH, steps=200, batch=32)
    finally:
        torch.set_num_threads(threads)
    assert result.accuracy > 0.5, result
    path = tmp_path_factory.mktemp("copy") / "copy.pt"
    torch.save(result.model, path)
    yield path


class PositionsNotAdvanced(nn.Module):
    """Wraps the positional encoding: every call adds the rows from position 0, so each
    cached step is encoded at position 0 (a full pass is unaffected)."""

    def __init__(self, positions: nn.Module) -> None:
        super().__init__()
        self.inner = positions

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        out: Tensor = self.inner(x, 0)
        return out


def copy_target(path: Path, *, broken: bool = False) -> Target:
    def load(spec: ModelSpec) -> nn.Module:
        model: nn.Module = torch.load(path, weights_only=False)
        if broken:
            embed = model.get_submodule("embed")
            embed.positions = PositionsNotAdvanced(embed.get_submodule("positions"))
        return model

    return readme_copy_target(load)


def readme_copy_target(load: Callable[[ModelSpec], nn.Module]) -> Target:
    """The README's fixed-instance example, run as written with the test's loader."""
    namespace: dict[str, object] = {"load": load}
    source = _python_block("fixed=FixedModel(")
    exec(compile(source, "README.md", "exec"), namespace)
    make = namespace["trained_copy_model"]
    assert callable(make)
    target = make()
    assert isinstance(target, Target)
    return target


def test_a_trained_checkpoint_passes_as_a_fixed_instance(checkpoint: Path) -> None:
    target = copy_target(checkpoint)
    results = {pid: outcome(target, pid) for pid in applicable(target)}
    for pid, r in results.items():
        assert r.outcome in ("pass", "not_applicable"), (pid, r.message, r.counterexample)
    for pid in (
        "model.encoder_decoder.causal_no_future_leak",
        "model.batch_items_independent",
        "model.encoder_decoder.source_padding_has_no_effect",
        "model.encoder_decoder.incremental_matches_full",
        "model.encoder_decoder.teacher_forcing",
        "model.matches_float64",
        "generation.greedy_appends_argmax",
        "generation.sampling_matches_distribution",
        "training.end_to_end_gradients",
    ):
        assert results[pid].outcome == "pass", pid
    # Its forward computes no loss: the harness's stands in, and is not checked against itself.
    assert results["training.loss_is_cross_entropy"].outcome == "not_applicable"
    p = load_all()["model.encoder_decoder.cross_attention_not_causal"]
    assert "without positional encoding" in str(missing_need(p, target))


def test_a_checkpoint_whose_cache_does_not_advance_fails_incremental(checkpoint: Path) -> None:
    r = outcome(
        copy_target(checkpoint, broken=True), "model.encoder_decoder.incremental_matches_full"
    )
    assert r.outcome == "fail"
    assert "one token at a time through the cache vs the full pass" in r.message, r.message
    # The full pass is untouched: the same broken model passes the other properties.
    r = outcome(copy_target(checkpoint, broken=True), "model.encoder_decoder.teacher_forcing")
    assert r.outcome == "pass", (r.message, r.counterexample)


# ---- the library's own loss, generation and padding mask: hooks ------------------------------

PAD = 0


def gpt_loss(m: nn.Module, tokens: Tensor, src: Tensor | None) -> Tensor:
    """GPT's own loss (nanoGPT's: labels -1 left out) for tokens[:, 1:] from tokens[:, :-1]."""
    inputs, labels = tokens[:, :-1], tokens[:, 1:]
    loss: Tensor = m(inputs, labels.masked_fill(labels == PAD, -1), attention_mask=inputs != PAD)[1]
    return loss


def unshifted_loss(m: nn.Module, tokens: Tensor, src: Tensor | None) -> Tensor:
    """Broken: scores each position against its own input token, not the next one."""
    loss: Tensor = m(tokens, tokens.masked_fill(tokens == PAD, -1))[1]
    return loss


def gpt_generate(
    m: nn.Module,
    prompt: Tensor,
    src: Tensor | None,
    n: int,
    *,
    sample: bool,
    generator: torch.Generator | None,
) -> Tensor:
    out: Tensor = m.generate(prompt, n, top_k=None if sample else 1)  # type: ignore[operator]
    return out


def always_samples(
    m: nn.Module,
    prompt: Tensor,
    src: Tensor | None,
    n: int,
    *,
    sample: bool,
    generator: torch.Generator | None,
) -> Tensor:
    """Broken: samples even when asked for greedy generation."""
    out: Tensor = m.generate(prompt, n)  # type: ignore[operator]
    return out


def hooked_gpt(**declared: object) -> Target:
    """GPT with its own loss, generation (from the global RNG) and padding mask declared."""

    def build(s: ModelSpec) -> GPT:
        sizes = dict(n_layer=s.n_layers, n_head=s.n_heads, n_embd=s.d_model)
        return GPT(GPTConfig(s.max_len, s.vocab_size, **sizes))  # type: ignore[arg-type]

    hooks: dict[str, object] = dict(
        loss=gpt_loss,
        generate=gpt_generate,
        generate_rng="global",
        padding=("attention_mask", "true_attends"),
    )
    return lm_target(
        "gpt-hooks",
        build,
        targets_kwarg="targets",
        ignore_index=-1,
        pad_id=PAD,
        d_ff_ratio=4,
        **{**hooks, **declared},  # type: ignore[arg-type]
    )


def test_the_library_loss_generation_and_mask_are_checked() -> None:
    """With the hooks, the properties that could not fail with the harness's own loss and
    generation apply, and pass on a correct GPT; the global RNG draws raise no state fault."""
    target = hooked_gpt()
    for pid in (
        "training.loss_is_cross_entropy",
        "training.pad_ignored",
        "training.end_to_end_gradients",
        "generation.starts_from_start",
        "generation.greedy_appends_argmax",
        "generation.stops_at_end",
        "generation.sampling_matches_distribution",
        "model.batch_items_independent",
    ):
        r = outcome(target, pid)
        assert r.outcome == "pass", (pid, r.message, r.counterexample)


@pytest.mark.parametrize(
    ("declared", "pid"),
    [
        ({"loss": unshifted_loss}, "training.loss_is_cross_entropy"),
        ({"generate": always_samples}, "generation.greedy_appends_argmax"),
    ],
    ids=["loss-not-shifted", "generate-not-greedy"],
)
def test_broken_hooks_fail(declared: dict[str, object], pid: str) -> None:
    r = outcome(hooked_gpt(**declared), pid)
    assert r.outcome == "fail", (r.message, r.counterexample)


def test_the_declared_padding_mask_reaches_the_module() -> None:
    r = outcome(hooked_gpt(loss=None), "training.pad_ignored")
    assert r.outcome == "pass", (r.message, r.counterexample)


def test_a_generate_hook_that_leaves_training_mode_on_fails() -> None:
    """As a fresh x-transformers AutoregressiveWrapper's generate does to the module."""

    def trains(m: nn.Module, *args: object, **kwargs: object) -> Tensor:
        return gpt_generate(m.train(), *args, **kwargs)  # type: ignore[arg-type]

    r = outcome(hooked_gpt(generate=trains), "generation.greedy_appends_argmax")
    assert r.outcome == "fail" and "left the module in training mode" in r.message, r.message


def test_a_greedy_only_hook_makes_sampling_not_applicable() -> None:
    target = hooked_gpt(generate_rng=None)
    r = outcome(target, "generation.sampling_matches_distribution")
    assert r.outcome == "not_applicable" and "greedy only" in r.reason, r.reason
    assert outcome(target, "generation.greedy_appends_argmax").outcome == "pass"


def test_a_global_rng_hook_undeclared_is_a_state_fault() -> None:
    """A hook that samples from the global RNG while declaring it uses the generator."""
    r = outcome(hooked_gpt(generate_rng="generator"), "generation.stops_at_end")
    assert r.outcome == "fail" and "RNG" in r.message, r.message


def test_bad_hook_declarations_are_one_line_errors() -> None:
    def build(spec: ModelSpec) -> nn.Module:
        return Tiny(spec, "tensor")

    with pytest.raises(ValueError, match="padding=\\('mask', 'attends'\\); expected"):
        lm_target("x", build, pad_id=0, padding=("mask", "attends"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs pad_id"):
        lm_target("x", build, padding=("mask", "true_attends"))
    with pytest.raises(ValueError, match="loss=3; expected a callable"):
        lm_target("x", build, loss=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="generate_rng='numpy'"):
        lm_target("x", build, generate_rng="numpy")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="generate_rng='global' without a generate hook"):
        lm_target("x", build, generate_rng="global")
    with pytest.raises(ValueError, match="loss= given with train=False"):
        lm_target("x", build, loss=gpt_loss, train=False)
    with pytest.raises(ValueError, match="masks_padding='yes'; expected a bool"):
        lm_target("x", build, pad_id=0, masks_padding="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="masks_padding=True needs pad_id"):
        lm_target("x", build, masks_padding=True)
    with pytest.raises(ValueError, match="masks_padding=False contradicts padding="):
        lm_target("x", build, pad_id=0, padding=("mask", "true_attends"), masks_padding=False)


def test_a_generate_hook_is_cut_after_each_first_end() -> None:
    """The library generates past <END> (nanoGPT always makes n tokens): the harness keeps
    each sequence up to its first generated <END>, <PAD> after it, and drops the columns
    after the last sequence's <END>."""
    end, rows = 2, [[5, 2, 7, 8, 9], [5, 6, 2, 2, 9]]

    def fixed(
        m: nn.Module,
        prompt: Tensor,
        src: Tensor | None,
        n: int,
        *,
        sample: bool,
        generator: torch.Generator | None,
    ) -> Tensor:
        return torch.cat([prompt, torch.tensor(rows)], dim=1)

    target = lm_target("cut", lambda spec: Tiny(spec, "tensor"), pad_id=PAD, generate=fixed)
    assert target.model is not None
    spec = ModelSpec("decoder_only", 20, 8, 2, 16, 1, 16, True, torch.float32, CPU, 0)
    model = target.model(spec)
    assert isinstance(model, LanguageModel) and model.generate is not None
    out = model.generate(torch.full((2, 1), 1), None, 5, sample=False, generator=None)
    assert out.tolist() == [[1, 5, end, PAD], [1, 5, 6, end]]


def padded_gpt(flags: dict[str, bool] | None = None, **declared: object) -> Target:
    """GPT with its padding mask (True = attend) and built without positions on request,
    so that the padding property also pads on the left."""

    def build(s: ModelSpec) -> GPT:
        shape = dict(n_layer=s.n_layers, n_head=s.n_heads, n_embd=s.d_model)
        config = GPTConfig(s.max_len, s.vocab_size, **shape)  # type: ignore[arg-type]
        return GPT(replace(config, positional=s.positional, **(flags or {})))

    hooks: dict[str, object] = dict(padding=("attention_mask", "true_attends"))
    return lm_target(
        "gpt-padded",
        build,
        targets_kwarg="targets",
        ignore_index=-1,
        pad_id=PAD,
        d_ff_ratio=4,
        positional_off=True,
        **{**hooks, **declared},  # type: ignore[arg-type]
    )


LEFT = "model.decoder_only.padding_has_no_effect"


def test_a_masked_gpt_passes_left_padding() -> None:
    assert outcome(padded_gpt(), LEFT).outcome == "pass"


def test_nan_from_the_leading_pads_reaching_the_real_tokens_fails() -> None:
    """The left-padding bug class (a query that sees only pads gives NaN, the next layer
    spreads it): the guard says NaN reached a real position after the left padding."""
    r = outcome(padded_gpt({"empty_rows_zero": False}), LEFT)
    assert r.outcome == "fail" and "a real position after the left padding" in r.message


def test_pad_as_an_ordinary_token_is_padded_on_the_right_only() -> None:
    """Without padding= the module sees <PAD> as a token: left padding is not drawn, unless
    masks_padding=True says the module hides it (then the property fails: it does not)."""
    assert outcome(padded_gpt(None, padding=None), LEFT).outcome == "pass"
    r = outcome(padded_gpt(None, padding=None, masks_padding=True), LEFT)
    assert r.outcome == "fail" and "left padding vs unpadded" in r.message, r.message


def test_an_inverted_padding_mask_fails() -> None:
    """The mask declared in the wrong polarity hides the real tokens and shows the pads: the
    loss through the logits call (targets=, where the harness passes the mask) is NaN when
    a row with no visible key gives NaN, and left padding shows the pads either way."""
    inverted = {"padding": ("attention_mask", "true_blocks")}
    r = outcome(padded_gpt({"empty_rows_zero": False}, **inverted), "training.pad_ignored")
    assert r.outcome == "fail", r.message
    assert outcome(padded_gpt(None, **inverted), LEFT).outcome == "fail"
