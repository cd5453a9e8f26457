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
from typing import Any, Literal, Protocol, get_args

import torch
from torch import Tensor, nn
from transformer_spec.properties.targets.adapters.call import Call
from transformer_spec.properties.targets.adapters.modules import mask_values
from transformer_spec.properties.targets.protocols import (
    BEYOND_FIELDS,
    Conventions,
    DeclarationTypeError,
    FixedModel,
    MaskPolarity,
    ModelKind,
    ModelSpec,
    Target,
    Unsupported,
    asked_beyond,
    built_beyond,
    seed_torch,
)

Build = Callable[[ModelSpec], nn.Module]
Incremental = Callable[[nn.Module, Tensor, Tensor | None], Tensor]
LossHook = Callable[[nn.Module, Tensor, Tensor | None], Tensor]
TakeLogits = Callable[[Any], Tensor]
GenerateRng = Literal["generator", "global"]


class GenerateHook(Protocol):
    def __call__(
        self,
        module: nn.Module,
        prompt: Tensor,
        src: Tensor | None,
        max_new_tokens: int,
        /,
        *,
        sample: bool,
        generator: torch.Generator | None,
    ) -> Tensor:
        """The library's generation: (b, p) -> (b, p + n), n <= max_new_tokens."""
        ...


def _masked_call(
    call: Call, tokens: Tensor, pad_id: int, kind: str, dtype: torch.dtype
) -> tuple[tuple[object, ...], dict[str, object]]:
    """A module(tokens, mask) call described by a Call: the mask hides <PAD> keys and, in a
    decoder whose Call says causal="mask", later keys too."""
    b, t = tokens.shape
    attends = tokens.ne(pad_id)[:, None, None, :].expand(b, 1, t, t)
    shape = (b, 1, t, t, dtype, tokens.device)
    masks = mask_values(call, attends, kind == "decoder_only", False, shape, "bottom_right")
    args, kwargs = call.arguments({"x": tokens} | masks)
    return tuple(args), kwargs


def _logits_of(out: object) -> Tensor | None:
    """Logits from a tensor, the first item of a tuple, or an object's `.logits`."""
    if isinstance(out, Tensor):
        return out
    if isinstance(out, tuple | list) and out and isinstance(out[0], Tensor):
        return out[0]
    found = getattr(out, "logits", None)
    return found if isinstance(found, Tensor) else None


def _loss_of(out: object) -> Tensor | None:
    """The loss from `(logits, loss)` or an object's `.loss`."""
    if isinstance(out, tuple | list) and len(out) > 1 and isinstance(out[1], Tensor):
        return out[1]
    found = getattr(out, "loss", None)
    return found if isinstance(found, Tensor) else None


class LanguageModel:
    """The module behind the harness's Model protocol (and GenerativeModel, TrainableModel
    where declared: an undeclared capability is None, and its properties not applicable)."""

    generate: Callable[..., Tensor] | None
    loss: Callable[..., Tensor] | None
    parameters: Callable[[], dict[str, Tensor]] | None
    embedding_parameter: Callable[[], Tensor] | None
    load_pretrained_embedding: Callable[..., None] | None

    def __init__(
        self,
        module: nn.Module,
        spec: ModelSpec,
        *,
        name: str,
        targets_kwarg: str | None,
        ignore_index: int,
        take_logits: TakeLogits | None,
        embedding: str | None,
        incremental: Incremental | None,
        pad_id: int | None,
        start_id: int,
        end_id: int,
        generate: bool,
        train: bool,
        loss_hook: LossHook | None = None,
        generate_hook: GenerateHook | None = None,
        generate_rng: GenerateRng | None = "generator",
        padding: tuple[str, MaskPolarity] | Call | None = None,
        masks_padding: bool = False,
    ) -> None:
        self.module = module.to(device=spec.device, dtype=spec.dtype).eval()
        self.kind, self.name, self.spec = spec.kind, name, spec
        self.targets_kwarg, self.ignore_index = targets_kwarg, ignore_index
        self.take_logits, self.incremental = take_logits, incremental
        self.pad_id, self.start_id, self.end_id = pad_id, start_id, end_id
        self.loss_hook, self.generate_hook, self.generate_rng = (
            loss_hook,
            generate_hook,
            generate_rng,
        )
        self.padding, self.masks_padding = padding, masks_padding
        self._probe()
        trains = train and self.kind != "encoder_only"
        generates = generate and self.kind != "encoder_only"
        own = self._own_generate if generate_hook is not None else self._generate
        self.generate = own if generates else None
        self.harness_loss = trains and targets_kwarg is None and loss_hook is None
        self.loss = self._loss if trains else None
        self.parameters = self._parameters if trains else None
        self._embedding_path = embedding
        self.embedding_parameter = self._embedding_parameter if trains else None
        self.load_pretrained_embedding = self._load_pretrained if trains else None

    # ---- the module's outputs ---------------------------------------------------------------

    def _call(self, tokens: Tensor, src: Tensor | None, targets: Tensor | None) -> object:
        args: tuple[object, ...] = (tokens,) if self.kind != "encoder_decoder" else (src, tokens)
        kwargs: dict[str, object] = {}
        if isinstance(self.padding, Call):
            assert self.pad_id is not None, "lm_target refuses padding= without pad_id"
            dtype = next(self.module.parameters()).dtype
            args, kwargs = _masked_call(self.padding, tokens, self.pad_id, self.kind, dtype)
        elif self.padding is not None:
            name, polarity = self.padding
            assert self.pad_id is not None, "lm_target refuses padding= without pad_id"
            padded = tokens.eq(self.pad_id)
            kwargs[name] = padded if polarity == "true_blocks" else ~padded
        if self.targets_kwarg is not None:
            labels = tokens if targets is None else targets  # any valid ids: every position
            kwargs[self.targets_kwarg] = labels
        return self.module(*args, **kwargs)

    def _take(self, out: object) -> Tensor:
        logits = self.take_logits(out) if self.take_logits is not None else _logits_of(out)
        if logits is None:
            raise ValueError(
                f"lm_target {self.name!r}: the module returned {type(out).__name__}; expected "
                "logits (b, t, vocab), a tuple whose first item they are, or an object with "
                ".logits (or pass logits=a function taking them from the output)"
            )
        return logits

    def _probe(self) -> None:
        """One call on two tokens: the output's form, and logits for every position."""
        real = min(4, self.spec.vocab_size - 1)
        two = torch.full((1, 2), real, dtype=torch.long, device=self.spec.device)
        with torch.no_grad():
            logits = self._take(self._call(two, two, None))
        if logits.dim() == 3 and logits.shape[1] == 1:
            raise ValueError(
                f"lm_target {self.name!r}: the module returned logits for the last position "
                f"only ({tuple(logits.shape)} for 2 tokens), as GPT code does when no targets "
                "are passed: declare targets_kwarg='targets' (the name of its targets argument)"
            )

    @torch.no_grad()
    def logits(self, tokens: Tensor, src: Tensor | None = None) -> Tensor:
        return self._take(self._call(tokens, src, None))

    @torch.no_grad()
    def incremental_logits(self, tokens: Tensor, src: Tensor | None = None) -> Tensor | None:
        if self.incremental is None:
            return None
        return self.incremental(self.module, tokens, src)

    # ---- generation ---------------------------------------------------------------------------

    @torch.no_grad()
    def _generate(
        self,
        prompt: Tensor | None,
        src: Tensor | None,
        max_new_tokens: int,
        *,
        sample: bool,
        generator: torch.Generator | None,
    ) -> Tensor:
        filler = self.end_id if self.pad_id is None else self.pad_id
        return generate_tokens(
            self.logits,
            prompt,
            src,
            max_new_tokens,
            sample=sample,
            generator=generator,
            ids=(self.start_id, self.end_id, filler),
            device=self.spec.device,
        )

    @torch.no_grad()
    def _own_generate(
        self,
        prompt: Tensor | None,
        src: Tensor | None,
        max_new_tokens: int,
        *,
        sample: bool,
        generator: torch.Generator | None,
    ) -> Tensor:
        """The library's generation through the hook, <END> handled as the module docstring
        says."""
        assert self.generate_hook is not None, "set with the hook"
        if sample and self.generate_rng is None:
            raise Unsupported(
                f"lm_target {self.name!r}: its generate hook is greedy only (generate_rng=None)",
                always=True,
            )
        if prompt is None:
            n = 1 if src is None else src.shape[0]
            prompt = torch.full((n, 1), self.start_id, dtype=torch.long, device=self.spec.device)
        hook, module = self.generate_hook, self.module
        if self.generate_rng == "generator":
            out = hook(module, prompt, src, max_new_tokens, sample=sample, generator=generator)
        else:  # the global RNG, seeded from the generator (0 when greedy), then restored
            device = self.spec.device
            devices = [device] if device.type == "cuda" else []
            with torch.random.fork_rng(devices=devices, device_type=device.type):
                seed = 0
                if generator is not None:
                    seed = int(torch.randint(2**62, (1,), generator=generator, device=device))
                seed_torch(seed)
                out = hook(module, prompt, src, max_new_tokens, sample=sample, generator=generator)
        if module.training:
            raise ValueError(
                f"lm_target {self.name!r}: the generate hook left the module in training mode "
                "(dropout on for the calls after it); a wrapper it builds must be in eval mode"
            )
        if not isinstance(out, Tensor) or out.dim() != 2:
            return out  # the guard says what is wrong with it
        return self._cut_at_end(out, prompt.shape[1])

    def _cut_at_end(self, out: Tensor, p: int) -> Tensor:
        """Slots after each sequence's first generated <END> hold the filler; columns after
        the last sequence's <END> are dropped."""
        new = out[:, p:]
        ended = (new == self.end_id).long().cumsum(1)
        after = (ended - (new == self.end_id).long()) > 0  # strictly after the first <END>
        filler = self.end_id if self.pad_id is None else self.pad_id
        new = new.masked_fill(after, filler)
        keep = int((~after).any(0).sum())  # `after` grows along each row: a prefix is kept
        return torch.cat([out[:, :p], new[:, :keep]], dim=1)

    # ---- training -----------------------------------------------------------------------------

    def _loss(self, tokens: Tensor, src: Tensor | None = None) -> Tensor:
        if self.loss_hook is not None:
            return self.loss_hook(self.module, tokens, src)
        # Contiguous, as a data loader's batches are (nanoGPT's loss calls .view on them).
        inputs, labels = tokens[:, :-1].contiguous(), tokens[:, 1:].contiguous()
        if self.targets_kwarg is not None:
            if self.pad_id is not None:
                labels = labels.masked_fill(labels == self.pad_id, self.ignore_index)
            out = self._call(inputs, src, labels)
            loss = _loss_of(out)
            if loss is None:
                raise ValueError(
                    f"lm_target {self.name!r}: called with {self.targets_kwarg}=, the module "
                    "returned no loss (expected (logits, loss) or an object with .loss)"
                )
            return loss
        logits = self._take(self._call(inputs, src, None))
        # Half-precision logits are scored in float32, as the reference does.
        if logits.dtype in (torch.float16, torch.bfloat16):
            logits = logits.float()
        ignore = -100 if self.pad_id is None else self.pad_id
        return nn.functional.cross_entropy(
            logits.flatten(0, 1), labels.flatten(), ignore_index=ignore
        )

    def _parameters(self) -> dict[str, Tensor]:
        return dict(self.module.named_parameters())

    def _find_embedding(self, path: str | None) -> Tensor:
        shape = (self.spec.vocab_size, self.spec.d_model)
        candidates = [n for n, p in self.module.named_parameters() if tuple(p.shape) == shape]
        if path is not None:
            try:
                found: Tensor = self.module.get_parameter(path)
            except AttributeError:
                raise ValueError(
                    f"lm_target {self.name!r}: embedding={path!r} names no parameter of the "
                    f"module; its {shape} parameters: {candidates}"
                ) from None
            return found
        if len(candidates) != 1:
            raise ValueError(
                f"lm_target {self.name!r}: {len(candidates)} parameters of shape {shape} "
                f"(vocab, d_model): {candidates}; name the token embedding, e.g. "
                "embedding='transformer.wte.weight'"
            )
        return self.module.get_parameter(candidates[0])

    def _embedding_parameter(self) -> Tensor:
        """Found when first asked for: a module whose embedding is ambiguous fails only the
        properties that need it, with the error saying what to declare."""
        return self._find_embedding(self._embedding_path)

    def _load_pretrained(self, matrix: Tensor, *, freeze: bool) -> None:
        m = self._embedding_parameter()
        with torch.no_grad():
            m.copy_(matrix)
        m.requires_grad_(not freeze)


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


@torch.no_grad()
def generate_tokens(
    logits: Callable[[Tensor, Tensor | None], Tensor],
    prompt: Tensor | None,
    src: Tensor | None,
    max_new_tokens: int,
    *,
    sample: bool,
    generator: torch.Generator | None,
    ids: tuple[int, int, int],
    device: torch.device,
) -> Tensor:
    """The harness's own generation loop, for models that bring none (or one that draws from
    the global RNG). `ids` are (start, end, filler). Without a prompt, each sequence (one, or
    one per source) starts from the start id on `device`. Full passes over the growing
    sequence, the next token the argmax or drawn with `generator` from the softmax in float64;
    after a sequence's end id, `filler`; done when every sequence has ended."""
    start_id, end_id, filler = ids
    if prompt is None:
        n = 1 if src is None else src.shape[0]
        prompt = torch.full((n, 1), start_id, dtype=torch.long, device=device)
    out, done = prompt, torch.zeros(prompt.shape[0], dtype=torch.bool, device=prompt.device)
    for _ in range(max_new_tokens):
        last = logits(out, src)[:, -1].double()
        if sample:
            nxt = torch.multinomial(torch.softmax(last, dim=-1), 1, generator=generator)[:, 0]
        else:
            nxt = last.argmax(dim=-1)
        nxt = torch.where(done, torch.full_like(nxt, filler), nxt)
        out = torch.cat([out, nxt[:, None]], dim=1)
        done = done | (nxt == end_id)
        if bool(done.all()):
            break
    return out
