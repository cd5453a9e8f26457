"""A small GPT in nanoGPT's style (written here, not copied): learned positions, pre-LN
blocks with a fused q, k, v projection, a tied un-embedding, an FFN of width 4 * n_embd,
`forward(idx, targets=None) -> (logits, loss)` with logits for the last position only when
no targets are given, nanoGPT's `generate` (sampling from torch's global RNG, top_k=1 for
greedy), a padding mask `attention_mask` (True = attend, Hugging Face's polarity) and a
key/value cache for decoding one token at a time.

Broken twins, each a flag: `causal=False` (the mask is off), `cache_positions=False` (the
cache does not advance positions: every cached step is embedded at position 0).

Notation: b batch, t length, c n_embd, h n_head.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Cache = list[tuple[Tensor, Tensor]]  # per block: keys and values so far, (b, h, t, c // h)


@dataclass(frozen=True)
class GPTConfig:  # nanoGPT's field names, in its order
    block_size: int
    vocab_size: int
    n_layer: int
    n_head: int
    n_embd: int
    causal: bool = True  # False: the broken twin without its causal mask
    cache_positions: bool = True  # False: the twin whose cache does not advance positions
    positional: bool = True  # False: no position embedding is added (ModelSpec.positional)
    # False: the twin whose queries with no visible key (the leading pads of a left-padded
    # sequence) get NaN, which the next layer spreads to the real tokens (0 * NaN).
    empty_rows_zero: bool = True


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd)
        self.n_head, self.causal = config.n_head, config.causal
        self.empty_rows_zero = config.empty_rows_zero

    def forward(
        self, x: Tensor, past: tuple[Tensor, Tensor] | None = None, keep: Tensor | None = None
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        b, t, c = x.shape
        q, k, v = (
            z.view(b, t, self.n_head, c // self.n_head).transpose(1, 2)
            for z in self.c_attn(x).split(c, dim=2)
        )
        if past is not None:  # decoding: the cached keys and values come first
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
        scores = q @ k.transpose(-2, -1) / math.sqrt(k.shape[-1])
        if self.causal:
            s = k.shape[2]
            future = torch.ones(t, s, dtype=torch.bool, device=x.device).triu(s - t + 1)
            scores = scores.masked_fill(future, float("-inf"))
        if keep is not None:  # (b, s), True = attend: padded keys are left out
            scores = scores.masked_fill(~keep[:, None, None, :], float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        if keep is not None and self.empty_rows_zero:  # a row of -inf only: softmax gives NaN
            weights = weights.nan_to_num(0.0)
        y = weights @ v
        return self.c_proj(y.transpose(1, 2).reshape(b, t, c)), (k, v)


class MLP(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd)

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.c_proj(F.gelu(self.c_fc(x)))
        return out


class Block(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1, self.attn = nn.LayerNorm(config.n_embd), CausalSelfAttention(config)
        self.ln_2, self.mlp = nn.LayerNorm(config.n_embd), MLP(config)

    def forward(
        self, x: Tensor, past: tuple[Tensor, Tensor] | None = None, keep: Tensor | None = None
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        a, kv = self.attn(self.ln_1(x), past, keep)
        x = x + a
        return x + self.mlp(self.ln_2(x)), kv


class Trunk(nn.Module):
    """nanoGPT's `transformer` ModuleDict as a module (typed attributes, same names)."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.block_size, config.n_embd)
        self.h = nn.ModuleList([Block(config) for _ in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(config.n_embd)


class GPT(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.transformer = Trunk(config)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight  # tied, as nanoGPT does

    def forward(
        self,
        idx: Tensor,
        targets: Tensor | None = None,
        cache: Cache | None = None,
        attention_mask: Tensor | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        start = cache[0][0].shape[2] if cache else 0
        if not self.config.cache_positions and cache:
            start = 0
        pos = torch.arange(start, start + idx.shape[1], device=idx.device)
        x = self.transformer.wte(idx)
        x = x + self.transformer.wpe(pos) if self.config.positional else x
        for i, block in enumerate(self.transformer.h):
            past = cache[i] if cache is not None and i < len(cache) else None
            x, kv = block(x, past, attention_mask)
            if cache is not None:  # decoding: keep this block's keys and values
                cache[i : i + 1] = [kv]
        x = self.transformer.ln_f(x)
        if targets is None:  # inference: the last position only, as nanoGPT does
            return self.lm_head(x[:, [-1], :]), None
        logits = self.lm_head(x)
        # nanoGPT's own line: .view needs contiguous targets, as a data loader gives them.
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)
        return logits, loss

    @torch.no_grad()
    def generate(
        self, idx: Tensor, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None
    ) -> Tensor:
        """nanoGPT's loop: max_new_tokens tokens (no end token), each drawn with
        torch.multinomial from the global RNG among the top_k logits (top_k=1: greedy)."""
        for _ in range(max_new_tokens):
            logits = self(idx[:, -self.config.block_size :])[0][:, -1] / temperature
            if top_k is not None:
                v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
                logits[logits < v[:, [-1]]] = -float("Inf")
            probs = F.softmax(logits, dim=-1)
            idx = torch.cat([idx, torch.multinomial(probs, num_samples=1)], dim=1)
        return idx


def decode_one_at_a_time(module: nn.Module, tokens: Tensor, src: Tensor | None) -> Tensor:
    """Feed tokens through the cache one position at a time; the stacked logits (b, t, V)."""
    cache: Cache = []
    steps = [module(tokens[:, i : i + 1], cache=cache)[0] for i in range(tokens.shape[1])]
    return torch.cat(steps, dim=1)
