"""Training-step throughput: the reference's decoder-only GPT-2-small preset (`fused`
attention path) against torch.nn.TransformerEncoder with a causal mask at the same width,
depth and heads, measured side by side in one run.

    python -m benchmarks.throughput [--device cuda] [--batch 16] [--compile] [--json PATH]
    python -m benchmarks.throughput --smoke   # tiny sizes on the CPU: checks the script runs

A step is forward, cross-entropy, backward and AdamW (fused on CUDA) under bfloat16
autocast, parameters in float32. Prints tokens per second (median over --steps timed steps
after --warmup), their ratio (reference / nn), and peak GPU memory. Target: ratio >= 1.0.
Figure to compare with (../shared/anchors/numerics.md, H100): nn.TransformerEncoder about
267k tokens/s, Hugging Face GPT-2 with SDPA about 164k.

`--compile` adds both models under torch.compile (`--compile-backend`, default inductor;
eager under --smoke, which checks that the step is captured without compiling kernels). The
reference is compiled with fullgraph=True: it has no graph break, and one would be an error
(the figure is then taken again without fullgraph, and the note says why). Run-time shape
checks must be off (TRANSFORMER_SPEC_TYPECHECK unset or 0): they do not work under
torch.compile. `--json PATH` writes the figures after each model, so a run cut short keeps
what it measured. A model that fails is reported and the others still run (exit 1).
"""

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

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
SMOKE = Size(512, 64, 4, 256, 1, 32)


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
    note: str = ""


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
    for _ in range(warmup):  # a compiled model compiles here
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


@dataclass(frozen=True)
class Variant:
    build: Callable[[], nn.Module]
    backend: str | None = None  # torch.compile backend; None: eager
    fullgraph: bool = False


def variants(size: Size, device: torch.device, backend: str | None) -> dict[str, Variant]:
    def ref() -> nn.Module:
        return reference_model(size, device)

    def torch_nn() -> nn.Module:
        return TorchEncoderLM(size).to(device)

    out = {"reference (fused)": Variant(ref), "nn.TransformerEncoder": Variant(torch_nn)}
    if backend is not None:
        out["reference (fused), compiled"] = Variant(ref, backend, fullgraph=True)
        out["nn.TransformerEncoder, compiled"] = Variant(torch_nn, backend)
    return out


def run_variant(v: Variant, size: Size, args: argparse.Namespace, device: torch.device) -> Measured:
    torch.manual_seed(0)
    model = v.build()
    try:
        if v.backend is None:
            return measure(model, size, args.batch, device, args.warmup, args.steps)
        try:
            compiled = torch.compile(model, backend=v.backend, fullgraph=v.fullgraph)
            return measure(compiled, size, args.batch, device, args.warmup, args.steps)  # type: ignore[arg-type]
        except Exception as err:
            if not v.fullgraph:
                raise
            torch._dynamo.reset()  # a graph break: measure what a user would get anyway
            compiled = torch.compile(model, backend=v.backend)
            m = measure(compiled, size, args.batch, device, args.warmup, args.steps)  # type: ignore[arg-type]
            m.note = f"not one graph: {type(err).__name__}: {str(err).splitlines()[0]}"
            return m
    finally:
        del model
        torch._dynamo.reset()
        if device.type == "cuda":
            torch.cuda.empty_cache()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--smoke", action="store_true", help="tiny model on the CPU, 2 steps")
    parser.add_argument("--compile", action="store_true", help="also both under torch.compile")
    parser.add_argument("--compile-backend", help="default inductor (eager under --smoke)")
    parser.add_argument("--json", help="write the figures here, after each model")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    size = SMOKE if args.smoke else GPT2_SMALL
    if args.smoke:
        args.device, args.batch, args.warmup, args.steps = "cpu", 2, 1, 2
    if args.compile and os.environ.get("TRANSFORMER_SPEC_TYPECHECK", "0") not in ("", "0"):
        parser.error(
            "--compile: run-time shape checks do not work under torch.compile; "
            "unset TRANSFORMER_SPEC_TYPECHECK or set it to 0"
        )
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(
            "benchmarks.throughput: no CUDA device on this machine; --smoke runs a tiny CPU "
            "version that checks the script, not the speed"
        )
        return 2
    torch.backends.cuda.matmul.allow_tf32 = True  # a training benchmark: the usual setting
    backend = (
        (args.compile_backend or ("eager" if args.smoke else "inductor")) if args.compile else None
    )
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    setup = (
        f"{where}, torch {torch.__version__}; batch {args.batch} x {size.length} tokens, "
        f"d_model {size.d_model}, {size.n_layers} layers, {size.n_heads} heads; bfloat16 "
        f"autocast; median of {args.steps} steps after {args.warmup} warm-up"
        + (f"; torch.compile backend {backend}" if backend else "")
    )
    print(setup, flush=True)
    results: dict[str, Measured | str] = {}
    for name, v in variants(size, device, backend).items():
        try:
            results[name] = run_variant(v, size, args, device)
        except Exception as err:  # reported; the other models still run
            results[name] = f"{type(err).__name__}: {str(err).strip().splitlines()[0]}"
        if args.json:
            _write_json(args.json, setup, results)
    print("\n".join(table(results)))
    return 0 if all(isinstance(m, Measured) for m in results.values()) else 1


def ratios(results: dict[str, "Measured | str"]) -> dict[str, float]:
    """reference / nn.TransformerEncoder, eager and compiled, where both were measured."""
    out = {}
    for suffix in ("", ", compiled"):
        ref, other = (
            results.get(f"reference (fused){suffix}"),
            results.get(f"nn.TransformerEncoder{suffix}"),
        )
        if isinstance(ref, Measured) and isinstance(other, Measured):
            out[suffix.strip(", ") or "eager"] = ref.tokens_per_s / other.tokens_per_s
    return out


def table(results: dict[str, "Measured | str"]) -> list[str]:
    lines = [f"{'implementation':<32} {'tokens/s':>10} {'peak GiB':>9}"]
    for name, m in results.items():
        if isinstance(m, Measured):
            note = f"  ({m.note})" if m.note else ""
            lines.append(f"{name:<32} {m.tokens_per_s:10.0f} {m.peak_gib:9.2f}{note}")
        else:
            lines.append(f"{name:<32} failed: {m}")
    lines += [
        f"ratio reference / nn.TransformerEncoder{'' if kind == 'eager' else ', ' + kind}: "
        f"{r:.2f} (target >= 1.0)"
        for kind, r in ratios(results).items()
    ]
    return lines


def _write_json(path: str, setup: str, results: dict[str, "Measured | str"]) -> None:
    doc = {
        "setup": setup,
        "results": {
            name: asdict(m) if isinstance(m, Measured) else {"error": m}
            for name, m in results.items()
        },
        "ratio_reference_over_nn": ratios(results),
    }
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2)


if __name__ == "__main__":
    raise SystemExit(main())
