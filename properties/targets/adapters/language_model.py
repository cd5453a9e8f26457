"""A language-model module as a target, with the harness providing what the module lacks.

The user's callable builds an `nn.Module` from the `ModelSpec` (the harness seeds torch's RNG
from spec.seed first, then moves the module to spec's device and dtype and puts it in eval
mode). The module maps tokens (b, t) to logits (b, t, vocab), returned alone, as the first
item of a tuple (nanoGPT's `(logits, loss)`) or as `.logits` (Hugging Face's outputs); an
encoder-decoder module is called as module(src, tokens). Code that returns only the last
position's logits unless targets are passed (nanoGPT's GPT) declares the name of that
argument, `targets_kwarg="targets"`: the harness then always passes targets, and the
module's own loss is the one the training properties check. A module that takes a padding
mask names it, `padding=("mask", "true_attends")`: every call then passes
`mask=tokens != pad_id` ("true_blocks": `tokens == pad_id`).

Hooks, for what the library does itself (each is the library's code under check):
- `loss(module, tokens, src) -> scalar`: the module's own teacher-forced loss, the mean
  cross-entropy of tokens[:, 1:] predicted from tokens[:, :-1], labels equal to <PAD> left
  out (the same sequence the harness's loss takes, not one shorter); the training
  properties then check it, the loss properties included;
- `generate(module, prompt, src, max_new_tokens, *, sample, generator) -> tokens`: the
  library's own generation. `prompt` (b, p) is never None (the harness puts <START> there);
  it returns (b, p + n), n <= max_new_tokens, greedy when not `sample`. The harness cuts each
  sequence after its first generated <END> (later slots hold <PAD>, or <END> without a
  <PAD> id). How it samples is declared by `generate_rng`: "generator" (it draws with the
  `generator` given), "global" (it draws from torch's global RNG, as most libraries do: the
  harness seeds that RNG from the generator, or with 0 when greedy, for each call and
  restores it afterwards, so the draws are reproducible, the guard sees no RNG change and
  the library's own sampler is checked) or None (greedy only: the sampling properties are
  not applicable, rather than checking the harness's sampler under the library's name;
  global RNG draws are seeded and undone as for "global").

The harness provides:
- `generate`: greedy, or sampled from softmax(logits) with the harness's torch.Generator
  (never the global RNG), by a full pass per step; it starts at <START>, and a sequence stops
  at its first <END> (later slots of a batch hold <PAD>, or <END> without a <PAD> id);
- `loss` (when the module computes none): teacher-forced cross-entropy of tokens[:, 1:] from
  tokens[:, :-1], <PAD> labels left out when a pad_id is declared;
- `parameters` (named_parameters), `embedding_parameter` (the attribute path given, or the
  one (vocab, d_model) parameter) and `load_pretrained_embedding` (copied in place);
- incremental decoding only through a call the user names: `incremental(module, tokens,
  src)` feeds tokens one at a time through the module's cache and returns the stacked logits
  (b, t, vocab); without it the incremental property is not applicable.

Notation: b batch, t target length, s source length.
"""

from collections.abc import Callable
from typing import get_args

from torch import nn
from transformer_spec.properties.targets.adapters.call import Call
from transformer_spec.properties.targets.adapters.lm_model import (
    GenerateHook,
    GenerateRng,
    Incremental,
    LanguageModel,
    LossHook,
    TakeLogits,
)
from transformer_spec.properties.targets.conventions import Conventions, MaskPolarity
from transformer_spec.properties.targets.declarations import (
    BEYOND_FIELDS,
    DeclarationTypeError,
    asked_beyond,
    built_beyond,
)
from transformer_spec.properties.targets.levels import ModelKind, ModelSpec, Unsupported, seed_torch
from transformer_spec.properties.targets.protocols import FixedModel, Target

Build = Callable[[ModelSpec], nn.Module]


def lm_target(
    name: str,
    build: Build,
    *,
    kind: ModelKind | None = None,
    description: str = "",
    conventions: Conventions | None = None,
    targets_kwarg: str | None = None,
    ignore_index: int = -100,
    logits: TakeLogits | None = None,
    embedding: str | None = None,
    incremental: Incremental | None = None,
    pad_id: int | None = None,
    start_id: int = 1,
    end_id: int = 2,
    generate: bool | GenerateHook = True,
    train: bool = True,
    loss: LossHook | None = None,
    generate_rng: GenerateRng | None = "generator",
    padding: tuple[str, MaskPolarity] | Call | None = None,
    masks_padding: bool | None = None,
    d_ff_ratio: int | None = None,
    positional_off: bool = False,
    fixed: FixedModel | None = None,
    honours: tuple[str, ...] = (),
) -> Target:
    """A target whose model level is the language-model module `build(spec)` returns.

    targets_kwarg: the module's targets argument, when it returns every position's logits
      (and its own loss) only with targets; the loss is then the module's, its <PAD> labels
      replaced by `ignore_index` (nanoGPT's is -1);
    logits: takes the logits from the module's output, when detection does not fit;
    embedding: the token embedding's parameter path ("transformer.wte.weight"), when more
      than one parameter has shape (vocab, d_model);
    incremental: the module's cache call (see the module docstring);
    pad_id: None for a model without padding (the padding properties are then not
      applicable); start_id, end_id: what generation starts from and stops at (ids 0-3 are
      the harness's special tokens);
    generate, train: False when the module should not be checked for that; generate may
      instead be the library's generation, a hook (module, prompt, src, max_new_tokens, *,
      sample, generator) -> tokens, and `generate_rng` says how it samples ("generator",
      "global" or None: greedy only; see the module docstring);
    loss: the module's own loss, a hook (module, tokens, src) -> scalar: the mean
      cross-entropy of tokens[:, 1:] from tokens[:, :-1], <PAD> labels left out; the
      training properties then check it (it takes precedence over targets_kwarg's loss);
    padding: the module's padding-mask keyword and its polarity, ("mask", "true_attends")
      for `mask=tokens != pad_id` or ("key_padding_mask", "true_blocks") for
      `tokens == pad_id`, passed on every call the harness makes (needs pad_id; the hooks
      and `incremental` call the module themselves, with their own masks); or a `Call`
      for a module that takes a full mask, e.g. Call(x=0, mask="mask", mask_shape="b q k",
      causal="mask") for module(tokens, mask=(b, t, t) True = may attend);
    masks_padding: whether the module's decoder hides <PAD> keys from every query, so that
      its input may be padded on the left (True by default with `padding=`, else False: <PAD>
      is then an ordinary token, declared for the loss, and the decoder's input is padded on
      the right only; an encoder-decoder module, which takes no `padding=`, says True when
      it masks its target's pads itself);
    d_ff_ratio: the module's FFN width is this multiple of d_model (nanoGPT's 4);
    positional_off: True when `build` honours spec.positional=False;
    honours: the ModelSpec fields beyond the notes that `build` honours, of "n_kv_heads"
      (grouped key/value heads), "window" (a sliding window, of Conventions.window_span) and
      "relative_positions" (positions only as offsets: rotary or ALiBi); the properties that
      ask for another are not applicable;
    kind: "decoder_only" (the default), "encoder_decoder" or "encoder_only"; a fixed
      model's own kind by default;
    fixed: check this one model (a checkpoint `build` loads) instead of building sizes."""
    if kind is None:
        kind = "decoder_only" if fixed is None else fixed.kind
    if kind not in get_args(ModelKind):
        raise ValueError(
            f"lm_target {name!r}: kind={kind!r}; expected one of {get_args(ModelKind)}"
        )
    if not callable(build):
        raise DeclarationTypeError(
            f"lm_target {name!r}: build must be a callable taking a ModelSpec"
        )
    for what, value in (("targets_kwarg", targets_kwarg), ("embedding", embedding)):
        if value is not None and not (isinstance(value, str) and value):
            raise ValueError(f"lm_target {name!r}: {what}={value!r}; expected a non-empty name")
    for what, hook in (("loss", loss), ("generate", generate)):
        if hook is not None and not isinstance(hook, bool) and not callable(hook):
            raise DeclarationTypeError(f"lm_target {name!r}: {what}={hook!r}; expected a callable")
    if generate_rng not in (*get_args(GenerateRng), None):
        raise ValueError(
            f"lm_target {name!r}: generate_rng={generate_rng!r}; expected 'generator', "
            "'global' or None (greedy only)"
        )
    if isinstance(padding, Call):
        padding.check_for("layer", f"lm_target {name!r}: padding")
        if pad_id is None:
            raise ValueError(f"lm_target {name!r}: padding= needs pad_id")
    elif padding is not None:
        polarities = get_args(MaskPolarity)
        if not (
            isinstance(padding, tuple)
            and len(padding) == 2
            and isinstance(padding[0], str)
            and padding[0]
            and padding[1] in polarities
        ):
            raise ValueError(
                f"lm_target {name!r}: padding={padding!r}; expected (keyword, polarity) with "
                f"polarity one of {polarities}, e.g. ('mask', 'true_attends')"
            )
        if pad_id is None:
            raise ValueError(f"lm_target {name!r}: padding={padding!r} needs pad_id")
        if kind == "encoder_decoder":
            raise ValueError(
                f"lm_target {name!r}: padding= is for a module(tokens) (its one input's "
                "mask); an encoder-decoder module(src, tokens) builds its masks itself"
            )
    if masks_padding is not None and not isinstance(masks_padding, bool):
        raise ValueError(f"lm_target {name!r}: masks_padding={masks_padding!r}; expected a bool")
    if masks_padding and pad_id is None:
        raise ValueError(f"lm_target {name!r}: masks_padding=True needs pad_id")
    if masks_padding is False and padding is not None:
        raise ValueError(
            f"lm_target {name!r}: masks_padding=False contradicts padding={padding!r} (a "
            "module given a padding mask hides <PAD>)"
        )
    masks = padding is not None if masks_padding is None else masks_padding
    hook = None if isinstance(generate, bool) else generate
    if hook is None and generate_rng != "generator":
        raise ValueError(
            f"lm_target {name!r}: generate_rng={generate_rng!r} without a generate hook (it "
            "says how the library's own generation samples)"
        )
    if loss is not None and not train:
        raise ValueError(f"lm_target {name!r}: loss= given with train=False")
    if not isinstance(honours, tuple) or not set(honours) <= set(BEYOND_FIELDS):
        raise ValueError(
            f"lm_target {name!r}: honours={honours!r}; expected a tuple of {BEYOND_FIELDS}"
        )

    def make(spec: ModelSpec) -> LanguageModel:
        ignored = [f for f in asked_beyond(spec) if f not in honours]
        if ignored:
            raise Unsupported(
                f"lm_target {name!r}: build does not honour ModelSpec.{ignored[0]} "
                f"(honours={honours!r})",
                always=True,
            )
        seed_torch(spec.seed)
        module = build(spec)
        if not isinstance(module, nn.Module):
            raise ValueError(
                f"lm_target {name!r}: build returned {type(module).__name__}, not an nn.Module"
            )
        model = LanguageModel(
            module,
            spec,
            name=name,
            targets_kwarg=targets_kwarg,
            ignore_index=ignore_index,
            take_logits=logits,
            embedding=embedding,
            incremental=incremental,
            pad_id=pad_id,
            start_id=start_id,
            end_id=end_id,
            generate=generate is not False,
            train=train,
            loss_hook=loss,
            generate_hook=hook,
            generate_rng=generate_rng,
            padding=padding,
            masks_padding=masks,
        )
        built_beyond(model, spec)
        return model

    return Target(
        name=name,
        description=description
        or f"language-model module ({kind}{', one fixed model' if fixed else ''})",
        conventions=Conventions() if conventions is None else conventions,
        model=make,
        model_kinds=(kind,),
        model_d_ff_ratio=d_ff_ratio,
        model_positional_off=positional_off,
        model_fixed=fixed,
    )
