"""Teacher-forced loss, and autoregressive generation with or without a key/value cache
(spec TRAIN-*, GEN-*).

Training sees the whole target at once: the decoder input is the target shifted right
(starting with <START>) and the causal mask hides the future, so all positions' losses are
computed in parallel. Inference runs one step at a time, appending each chosen token.
"""

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor

from .model import AnyModel, DecoderOnlyModel, EncoderDecoderModel, KVCache, probabilities


def teacher_forced_loss(
    model: AnyModel, tokens: Int[Tensor, "b t"], *, src: Int[Tensor, "b s"] | None = None
) -> Float[Tensor, ""]:
    """Mean cross-entropy of predicting tokens[:, 1:] from tokens[:, :-1]; <PAD> labels are
    ignored. For an encoder-decoder model `src` is the source and `tokens` the target
    (beginning with <START>)."""
    logits = _teacher_logits(model, tokens, src=src)
    labels = tokens[:, 1:]
    pad = model.config.special.pad
    if not bool((labels != pad).any()):
        raise ValueError("tokens: every label is <PAD>; the loss would be undefined")
    # Half-precision logits are scored in float32; float32 and float64 in their own dtype.
    acc = torch.float32 if logits.dtype in (torch.float16, torch.bfloat16) else logits.dtype
    return F.cross_entropy(logits.flatten(0, 1).to(acc), labels.flatten(), ignore_index=pad)


def _teacher_logits(model: AnyModel, tokens: Tensor, *, src: Tensor | None) -> Tensor:
    if not isinstance(tokens, Tensor) or tokens.dim() != 2 or tokens.shape[1] < 2:
        shape = tuple(tokens.shape) if isinstance(tokens, Tensor) else type(tokens).__name__
        raise ValueError(f"tokens: expected (batch, seq) with seq >= 2, got {shape}")
    if isinstance(model, EncoderDecoderModel):
        if src is None:
            raise ValueError("src: an encoder-decoder model needs the source sequence")
        enc_dec: Tensor = model(src, tokens[:, :-1])
        return enc_dec
    if isinstance(model, DecoderOnlyModel):
        if src is not None:
            raise ValueError("src: a decoder-only model takes no source sequence")
        dec: Tensor = model(tokens[:, :-1])
        return dec
    raise TypeError("model: an encoder-only model has no next-token objective")


def _step_logits(
    model: AnyModel, tokens: Tensor, *, memory: tuple[Tensor, Tensor] | None, cache: KVCache | None
) -> Tensor:
    if isinstance(model, EncoderDecoderModel):
        assert memory is not None
        return model.decode(tokens, *memory, cache=cache)
    assert isinstance(model, DecoderOnlyModel)
    out: Tensor = model(tokens, cache=cache)
    return out


def incremental_logits(
    model: AnyModel, tokens: Int[Tensor, "b t"], *, src: Int[Tensor, "b s"] | None = None
) -> Float[Tensor, "b t vocab"]:
    """Feed `tokens` one position at a time through a fresh cache and stack the logits.
    Must equal the full forward pass (spec GEN-CACHE-EQUALS-FULL)."""
    memory = _memory(model, src)
    cache = model.new_cache()
    steps = [
        _step_logits(model, tokens[:, i : i + 1], memory=memory, cache=cache)
        for i in range(tokens.shape[1])
    ]
    return torch.cat(steps, dim=1)


def _memory(model: AnyModel, src: Tensor | None) -> tuple[Tensor, Tensor] | None:
    if isinstance(model, EncoderDecoderModel):
        if src is None:
            raise ValueError("src: an encoder-decoder model needs the source sequence")
        return model.encode(src)
    if not isinstance(model, DecoderOnlyModel):
        raise TypeError("model: an encoder-only model does not generate")
    if src is not None:
        raise ValueError("src: a decoder-only model takes no source sequence")
    return None


def _choose(
    logits: Float[Tensor, "b vocab"],
    *,
    sample: bool,
    temperature: float,
    top_k: int | None,
    generator: torch.Generator | None,
) -> Int[Tensor, " b"]:
    if not sample:
        return logits.argmax(dim=-1)  # greedy: the most probable token
    logits = logits.float() / temperature
    if top_k is not None:
        kth = logits.topk(top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return torch.multinomial(probabilities(logits), 1, generator=generator).squeeze(-1)


def _check_generate_args(
    model: AnyModel,
    prompt: Tensor,
    max_new_tokens: int,
    sample: bool,
    temperature: float,
    top_k: int | None,
) -> None:
    cfg = model.config
    if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise ValueError(f"max_new_tokens: expected an int >= 1, got {max_new_tokens!r}")
    if cfg.has_position_table and prompt.shape[1] + max_new_tokens > cfg.max_len:
        raise ValueError(
            f"max_new_tokens: prompt length {prompt.shape[1]} + {max_new_tokens} exceeds the "
            f"positions table (max_len={cfg.max_len})"
        )
    if not sample and (temperature != 1.0 or top_k is not None):
        raise ValueError("temperature, top_k: only apply with sample=True")
    if not temperature > 0:
        raise ValueError(f"temperature: expected > 0, got {temperature}")
    if top_k is not None and not 1 <= top_k <= cfg.vocab_size:
        raise ValueError(f"top_k: expected 1..{cfg.vocab_size}, got {top_k}")


@torch.no_grad()
def generate(
    model: AnyModel,
    *,
    max_new_tokens: int,
    prompt: Int[Tensor, "b p"] | None = None,
    src: Int[Tensor, "b s"] | None = None,
    sample: bool = False,
    temperature: float = 1.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
    use_cache: bool = True,
) -> Int[Tensor, "b n"]:
    """Autoregressive decoding: start from `prompt` (default: <START> for an encoder-decoder
    model), append one token per step, stop when every sequence has produced <END> or after
    `max_new_tokens`. Tokens after a sequence's <END> are <PAD>. Returns prompt + new tokens.
    Greedy takes the most probable token; `sample=True` draws from softmax(logits /
    temperature), restricted to the top_k tokens when given."""
    special = model.config.special
    memory = _memory(model, src)
    if prompt is None:
        if memory is None:
            raise ValueError("prompt: a decoder-only model needs a prompt")
        prompt = torch.full((memory[0].shape[0], 1), special.start, device=model.device)
    model.check_tokens("prompt", prompt)
    _check_generate_args(model, prompt, max_new_tokens, sample, temperature, top_k)
    cache = model.new_cache() if use_cache else None
    out, step_input = prompt, prompt
    done = torch.zeros(prompt.shape[0], dtype=torch.bool, device=prompt.device)
    for _ in range(max_new_tokens):
        logits = _step_logits(model, step_input if use_cache else out, memory=memory, cache=cache)
        nxt = _choose(
            logits[:, -1], sample=sample, temperature=temperature, top_k=top_k, generator=generator
        )
        nxt = nxt.masked_fill(done, special.pad)
        out = torch.cat([out, nxt[:, None]], dim=1)
        done = done | (nxt == special.end)
        if bool(done.all()):
            break
        step_input = nxt[:, None]
    return out
