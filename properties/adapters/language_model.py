"""A language-model module as a target, with the harness providing what the module lacks.

The user's callable builds an `nn.Module` from the `ModelSpec` (the harness seeds torch's RNG
from spec.seed first, then moves the module to spec's device and dtype and puts it in eval
mode). The module maps tokens (b, t) to logits (b, t, vocab), returned alone, as the first
item of a tuple (nanoGPT's `(logits, loss)`) or as `.logits` (Hugging Face's outputs); an
encoder-decoder module is called as module(src, tokens). Code that returns only the last
position's logits unless targets are passed (nanoGPT's GPT) declares the name of that
argument, `targets_kwarg="targets"`: the harness then always passes targets, and the
module's own loss is the one the training properties check.

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
from typing import Any, get_args

import torch
from torch import Tensor, nn

from ..targets import Conventions, FixedModel, ModelKind, ModelSpec, Target

Build = Callable[[ModelSpec], nn.Module]
Incremental = Callable[[nn.Module, Tensor, Tensor | None], Tensor]
TakeLogits = Callable[[Any], Tensor]


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
    ) -> None:
        self.module = module.to(device=spec.device, dtype=spec.dtype).eval()
        self.kind, self.name, self.spec = spec.kind, name, spec
        self.targets_kwarg, self.ignore_index = targets_kwarg, ignore_index
        self.take_logits, self.incremental = take_logits, incremental
        self.pad_id, self.start_id, self.end_id = pad_id, start_id, end_id
        self._probe()
        trains = train and self.kind != "encoder_only"
        self.generate = self._generate if generate and self.kind != "encoder_only" else None
        self.harness_loss = trains and targets_kwarg is None
        self.loss = self._loss if trains else None
        self.parameters = self._parameters if trains else None
        self._embedding_path = embedding
        self.embedding_parameter = self._embedding_parameter if trains else None
        self.load_pretrained_embedding = self._load_pretrained if trains else None

    # ---- the module's outputs ---------------------------------------------------------------

    def _call(self, tokens: Tensor, src: Tensor | None, targets: Tensor | None) -> object:
        args = (tokens,) if self.kind != "encoder_decoder" else (src, tokens)
        if self.targets_kwarg is None:
            return self.module(*args)
        labels = tokens if targets is None else targets  # any valid ids give every position
        return self.module(*args, **{self.targets_kwarg: labels})

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
        if prompt is None:
            n = 1 if src is None else src.shape[0]
            prompt = torch.full((n, 1), self.start_id, dtype=torch.long, device=self.spec.device)
        filler = self.end_id if self.pad_id is None else self.pad_id
        out, done = prompt, torch.zeros(prompt.shape[0], dtype=torch.bool, device=prompt.device)
        for _ in range(max_new_tokens):
            last = self.logits(out, src)[:, -1].double()
            if sample:
                probs = torch.softmax(last, dim=-1)
                nxt = torch.multinomial(probs, 1, generator=generator)[:, 0]
            else:
                nxt = last.argmax(dim=-1)
            nxt = torch.where(done, torch.full_like(nxt, filler), nxt)
            out = torch.cat([out, nxt[:, None]], dim=1)
            done = done | (nxt == self.end_id)
            if bool(done.all()):
                break
        return out

    # ---- training -----------------------------------------------------------------------------

    def _loss(self, tokens: Tensor, src: Tensor | None = None) -> Tensor:
        inputs, labels = tokens[:, :-1], tokens[:, 1:]
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
    generate: bool = True,
    train: bool = True,
    d_ff_ratio: int | None = None,
    positional_off: bool = False,
    fixed: FixedModel | None = None,
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
    generate, train: False when the module should not be checked for that;
    d_ff_ratio: the module's FFN width is this multiple of d_model (nanoGPT's 4);
    positional_off: True when `build` honours spec.positional=False;
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
        raise ValueError(f"lm_target {name!r}: build must be a callable taking a ModelSpec")
    for what, value in (("targets_kwarg", targets_kwarg), ("embedding", embedding)):
        if value is not None and not (isinstance(value, str) and value):
            raise ValueError(f"lm_target {name!r}: {what}={value!r}; expected a non-empty name")

    def make(spec: ModelSpec) -> LanguageModel:
        torch.manual_seed(spec.seed)
        module = build(spec)
        if not isinstance(module, nn.Module):
            raise ValueError(
                f"lm_target {name!r}: build returned {type(module).__name__}, not an nn.Module"
            )
        return LanguageModel(
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
            generate=generate,
            train=train,
        )

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
