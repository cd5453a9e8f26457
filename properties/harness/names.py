"""The built-in targets by name, light (no torch): what `--help` lists, what the Plan
validates a name against, and what it knows of each before loading it (the devices it runs
on, the adapter levels it offers) to filter a table's cells and size a run. A test keeps
this table equal to what loading each target declares, in the registry's order
(the conformance table's columns)."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Builtin:
    description: str  # one line, for --help
    devices: tuple[str, ...]  # device types it runs on
    levels: tuple[str, ...]  # the adapter levels it offers (Target's level fields)


BOTH = ("cpu", "cuda")

BUILTIN: dict[str, Builtin] = {
    "reference-math": Builtin(
        "the reference, attention by the formula (the ground truth)",
        BOTH,
        ("attention", "mha", "layers", "model", "components", "vocabulary"),
    ),
    "reference-fused": Builtin(
        "the reference, attention through torch SDPA",
        BOTH,
        ("attention", "mha", "layers", "model", "components", "vocabulary"),
    ),
    "torch-sdpa-math": Builtin(
        "F.scaled_dot_product_attention, math backend, boolean masks",
        BOTH,
        ("attention",),
    ),
    "torch-sdpa-math-float": Builtin(
        "... math backend, additive float masks",
        BOTH,
        ("attention",),
    ),
    "torch-sdpa-flash": Builtin(
        "... flash backend, boolean masks",
        BOTH,
        ("attention",),
    ),
    "torch-sdpa-flash-float": Builtin(
        "... flash backend, additive float masks",
        BOTH,
        ("attention",),
    ),
    "torch-sdpa-efficient": Builtin(
        "... memory-efficient backend, boolean masks (CUDA only)",
        ("cuda",),
        ("attention",),
    ),
    "torch-sdpa-efficient-float": Builtin(
        "... memory-efficient backend, float masks (CUDA only)",
        ("cuda",),
        ("attention",),
    ),
    "torch-sdpa-cudnn": Builtin(
        "... cuDNN backend, boolean masks (CUDA only)",
        ("cuda",),
        ("attention",),
    ),
    "torch-sdpa-cudnn-float": Builtin(
        "... cuDNN backend, additive float masks (CUDA only)",
        ("cuda",),
        ("attention",),
    ),
    "torch-mha": Builtin(
        "nn.MultiheadAttention, batch first, weights per head",
        BOTH,
        ("mha",),
    ),
    "torch-mha-averaged": Builtin(
        "... batch first, weights averaged over heads, float masks",
        BOTH,
        ("mha",),
    ),
    "torch-mha-seq-first": Builtin(
        "... sequence first, weights per head, float masks",
        BOTH,
        ("mha",),
    ),
    "torch-mha-seq-first-averaged": Builtin(
        "... sequence first, weights averaged over heads",
        BOTH,
        ("mha",),
    ),
    "torch-mha-fast": Builtin(
        "... eval + no_grad + need_weights=False (the native fast path)",
        BOTH,
        ("mha",),
    ),
    "torch-layers-slow": Builtin(
        "nn.TransformerEncoderLayer / DecoderLayer, autograd on",
        BOTH,
        ("layers",),
    ),
    "torch-layers-fast": Builtin(
        "... in eval under no_grad (the fused fast path)",
        BOTH,
        ("layers",),
    ),
    "torch-transformer-slow": Builtin(
        "nn.Transformer and nn.TransformerEncoder, autograd on",
        BOTH,
        ("model",),
    ),
    "torch-transformer-fast": Builtin(
        "... in eval under no_grad (the fused fast path)",
        BOTH,
        ("model",),
    ),
    "torch-transformer-nested": Builtin(
        "... fast path with nested tensors for padded batches",
        BOTH,
        ("model",),
    ),
    "hf-gpt2": Builtin(
        "Hugging Face GPT2LMHeadModel, sdpa attention, KV cache (hf extra)",
        BOTH,
        ("model",),
    ),
    "hf-gpt2-eager": Builtin(
        "... eager attention (hf extra)",
        BOTH,
        ("model",),
    ),
    "hf-bert": Builtin(
        "Hugging Face BertForMaskedLM (hf extra)",
        BOTH,
        ("model",),
    ),
    "hf-bart": Builtin(
        "Hugging Face BartForConditionalGeneration, KV cache (hf extra)",
        BOTH,
        ("model",),
    ),
}
