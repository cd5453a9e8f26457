"""Training-step throughput: the reference's decoder-only GPT-2-small preset (`fused`
attention path) against torch.nn.TransformerEncoder with a causal mask at the same width,
depth and heads, measured side by side in one run.

    python -m benchmarks.throughput [--device cuda] [--batch 16] [--length 1024]
    python -m benchmarks.throughput --smoke   # tiny sizes on the CPU: checks the script runs

A step is forward, cross-entropy, backward and AdamW (fused on CUDA) under bfloat16
autocast, parameters in float32. Prints tokens per second (median over --steps timed steps
after --warmup), their ratio (reference / nn), and peak GPU memory. Target: ratio >= 1.0.
Figure to compare with (../shared/anchors/numerics.md, H100): nn.TransformerEncoder about
267k tokens/s, Hugging Face GPT-2 with SDPA about 164k.
"""

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformer_spec.reference.config import gpt2_small_config

from transformer_spec import reference as R


@dataclass(frozen=True)
class Size:
    vocab: int
    d_model: int
    n_heads: int
    d_ff: int
    n_layers: int
    length: int


GPT2_SMALL = Size(50257, 768, 12, 3072, 12, 1024)
SMOKE = Size(512, 64, 4, 256, 2, 64)


def reference_model(size: Size, device: torch.device) -> nn.Module:
    config = gpt2_small_config(
        vocab_size=size.vocab,
        d_model=size.d_model,
        n_heads=size.n_heads,
        d_ff=size.d_ff,
        n_decoder_layers=size.n_layers,
        max_len=size.length,
        attention_path="fused",
        device=str(device),
    )
    return R.build_model(config)


class TorchEncoderLM(nn.Module):
    """GPT-2's shape on nn.TransformerEncoder: learned positions, pre-LN layers with GELU,
    a causal mask, a final LayerNorm and an un-embedding tied to the embedding."""

    def __init__(self, size: Size) -> None:
        super().__init__()
        self.tokens = nn.Embedding(size.vocab, size.d_model)
        self.positions = nn.Embedding(size.length, size.d_model)
        layer = nn.TransformerEncoderLayer(
            size.d_model,
            size.n_heads,
            size.d_ff,
            dropout=0.1,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.stack = nn.TransformerEncoder(layer, size.n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(size.d_model)

    def forward(self, tokens: Tensor) -> Tensor:
        t = tokens.shape[1]
        x = self.tokens(tokens) + self.positions(torch.arange(t, device=tokens.device))
        mask = nn.Transformer.generate_square_subsequent_mask(t, device=tokens.device)
        y = self.stack(x, mask=mask, is_causal=True)
        logits: Tensor = self.norm(y) @ self.tokens.weight.T
        return logits


@dataclass
class Measured:
    tokens_per_s: float
    peak_gib: float


def measure(
    model: nn.Module, size: Size, batch: int, device: torch.device, warmup: int, steps: int
) -> Measured:
    model.train()
    fused = device.type == "cuda"
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=fused)
    g = torch.Generator(device="cpu").manual_seed(0)
    tokens = torch.randint(0, size.vocab, (batch, size.length + 1), generator=g).to(device)
    inputs, labels = tokens[:, :-1], tokens[:, 1:]

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16):
            logits = model(inputs)
        loss = F.cross_entropy(logits.float().flatten(0, 1), labels.flatten())
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
        opt.zero_grad(set_to_none=True)

    sync: Callable[[], None] = torch.cuda.synchronize if device.type == "cuda" else lambda: None
    for _ in range(warmup):
        step()
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else 0.0
    return Measured(batch * size.length / statistics.median(times), peak)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--smoke", action="store_true", help="tiny model on the CPU, 2 steps")
    args = parser.parse_args(argv)
    size = SMOKE if args.smoke else GPT2_SMALL
    if args.smoke:
        args.device, args.batch, args.warmup, args.steps = "cpu", 2, 1, 2
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(
            "benchmarks.throughput: no CUDA device on this machine; --smoke runs a tiny CPU "
            "version that checks the script, not the speed"
        )
        return 2
    torch.backends.cuda.matmul.allow_tf32 = True  # a training benchmark: the usual setting
    results = {}
    builders: dict[str, Callable[[], nn.Module]] = {
        "reference (fused)": lambda: reference_model(size, device),
        "nn.TransformerEncoder": lambda: TorchEncoderLM(size).to(device),
    }
    for name, build in builders.items():
        torch.manual_seed(0)
        model = build()
        results[name] = measure(model, size, args.batch, device, args.warmup, args.steps)
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(
        f"{where}, torch {torch.__version__}; batch {args.batch} x {size.length} tokens, "
        f"d_model {size.d_model}, {size.n_layers} layers, {size.n_heads} heads; bfloat16 "
        f"autocast; median of {args.steps} steps after {args.warmup} warm-up"
    )
    print(f"{'implementation':<24} {'tokens/s':>10} {'peak GiB':>9}")
    for name, m in results.items():
        print(f"{name:<24} {m.tokens_per_s:10.0f} {m.peak_gib:9.2f}")
    ratio = (
        results["reference (fused)"].tokens_per_s / results["nn.TransformerEncoder"].tokens_per_s
    )
    print(f"ratio reference / nn.TransformerEncoder: {ratio:.2f} (target >= 1.0)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
