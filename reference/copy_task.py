"""The copy task: the classic first check that a from-scratch Transformer learns (spec
TRAIN-TEACHER-FORCING, GEN-GREEDY). The encoder reads random symbols, the decoder must write
them back; greedy decoding from <START> is scored by token accuracy."""

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from .config import TransformerConfig
from .generation import generate, teacher_forced_loss
from .model import build_model


@dataclass(frozen=True)
class CopyTaskResult:
    accuracy: float  # fraction of copied tokens right, greedy decoding, held-out sequences
    seconds: float  # training and evaluation wall time
    steps: int
    final_loss: float
    model: nn.Module | None = field(default=None, repr=False, compare=False)  # the trained one


def copy_batch(
    n: int, *, length: int, n_symbols: int, config: TransformerConfig, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """Source: random symbols (ids after the special tokens); target: <START> src <END>."""
    first = max(vars(config.special).values()) + 1
    src = torch.randint(first, first + n_symbols, (n, length), generator=generator)
    start = torch.full((n, 1), config.special.start)
    end = torch.full((n, 1), config.special.end)
    return src.to(config.device), torch.cat([start, src, end], 1).to(config.device)


def train_copy_task(
    *,
    length: int = 10,
    n_symbols: int = 10,
    steps: int = 500,
    batch: int = 64,
    seed: int = 0,
    on_step: Callable[[int, float], None] | None = None,
    every: int = 50,
) -> CopyTaskResult:
    """Train a small post-LN encoder-decoder (2 + 2 layers, d_model 64, 4 heads) with AdamW,
    a linear warm-up (100 steps, or half of a shorter run), a linear decay to zero and
    gradient clipping, then greedy-decode 1000 fresh sequences. `on_step(step, loss)` is
    called every `every` steps and after the last one (the CLI prints progress)."""
    if n_symbols < 2 or length < 1:
        raise ValueError(
            f"n_symbols, length: need >= 2 symbols and length >= 1, got {n_symbols}, {length}"
        )
    if steps < 1 or batch < 1:
        raise ValueError(f"steps, batch: need >= 1 each, got {steps}, {batch}")
    if every < 1:
        raise ValueError(f"every: need >= 1, got {every}")
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    config = TransformerConfig(
        vocab_size=4 + n_symbols,
        d_model=64,
        n_heads=4,
        d_ff=256,
        n_encoder_layers=2,
        n_decoder_layers=2,
        max_len=length + 2,
        dropout=0.0,
    )
    model = build_model(config)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.98), weight_decay=0.0)
    # The decay matters: at a constant 1e-3 Adam spikes the loss after it has converged
    # (seed 0: loss 0.002 at step 400, 0.55 at step 500), and a run that ends on a spike
    # scored 0.87 in CI.
    warmup = max(1, min(100, steps // 2))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warmup, (steps - s) / (steps - warmup + 1))
    )
    g = torch.Generator().manual_seed(seed)
    loss = torch.tensor(float("nan"))
    for step in range(1, steps + 1):
        src, tgt = copy_batch(batch, length=length, n_symbols=n_symbols, config=config, generator=g)
        loss = teacher_forced_loss(model, tgt, src=src)
        opt.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        schedule.step()
        if on_step is not None and (step % every == 0 or step == steps):
            on_step(step, float(loss.detach()))
    model.eval()
    held_out = torch.Generator().manual_seed(seed + 1)
    src, _ = copy_batch(1000, length=length, n_symbols=n_symbols, config=config, generator=held_out)
    out = generate(model, src=src, max_new_tokens=length + 1)
    copied = out[:, 1 : length + 1]
    accuracy = (copied == src).float().mean().item() if copied.shape[1] == length else 0.0
    return CopyTaskResult(accuracy, time.perf_counter() - t0, steps, float(loss.detach()), model)
