"""The language-model module behind the harness's Model protocol (`LanguageModel`, what
`lm_target` builds; language_model.py says what the harness provides and how the hooks are
called), the hooks' types, and the harness's own generation loop (`generate_tokens`, which
the Hugging Face adapter uses too)."""

from collections.abc import Callable
from typing import Any, Literal, Protocol

import torch
from torch import Tensor, nn
from transformer_spec.properties.targets.adapters.call import Call
from transformer_spec.properties.targets.adapters.modules import mask_values
from transformer_spec.properties.targets.conventions import MaskPolarity
from transformer_spec.properties.targets.levels import ModelSpec, Unsupported, seed_torch

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
