"""What the command line can check before torch or any target is imported: option values,
report paths, and the built-in targets' one-line descriptions for `check --help`. Nothing
here imports torch (a bad option is answered at once, not after seconds of imports)."""

import argparse
import os
import re
from collections.abc import Sequence
from pathlib import Path

# The reference's dtype names (transformer_spec.reference.config.DTYPES; a test keeps them
# the same).
DTYPE_NAMES = ("float64", "float32", "bfloat16", "float16")
DEFAULT_CALL_TIMEOUT = 60.0  # seconds; the same as properties.guard's
_DEVICE = re.compile(r"^(cpu|cuda)(:\d+)?$")

# Every built-in target in one line (a test keeps the names those of the registry).
BUILTIN_HELP: dict[str, str] = {
    "reference-math": "the reference, attention by the formula (the ground truth)",
    "reference-fused": "the reference, attention through torch SDPA",
    "torch-sdpa-math": "F.scaled_dot_product_attention, math backend, boolean masks",
    "torch-sdpa-flash": "... flash backend, boolean masks",
    "torch-sdpa-efficient": "... memory-efficient backend, boolean masks (CUDA only)",
    "torch-sdpa-cudnn": "... cuDNN backend, boolean masks (CUDA only)",
    "torch-sdpa-math-float": "... math backend, additive float masks",
    "torch-sdpa-flash-float": "... flash backend, additive float masks",
    "torch-sdpa-efficient-float": "... memory-efficient backend, float masks (CUDA only)",
    "torch-sdpa-cudnn-float": "... cuDNN backend, additive float masks (CUDA only)",
    "torch-mha": "nn.MultiheadAttention, batch first, weights per head",
    "torch-mha-averaged": "... batch first, weights averaged over heads, float masks",
    "torch-mha-seq-first": "... sequence first, weights per head, float masks",
    "torch-mha-seq-first-averaged": "... sequence first, weights averaged over heads",
    "torch-mha-fast": "... eval + no_grad + need_weights=False (the native fast path)",
    "torch-layers-slow": "nn.TransformerEncoderLayer / DecoderLayer, autograd on",
    "torch-layers-fast": "... in eval under no_grad (the fused fast path)",
    "torch-transformer-slow": "nn.Transformer and nn.TransformerEncoder, autograd on",
    "torch-transformer-fast": "... in eval under no_grad (the fused fast path)",
    "torch-transformer-nested": "... fast path with nested tensors for padded batches",
    "hf-gpt2": "Hugging Face GPT2LMHeadModel, sdpa attention, KV cache (hf extra)",
    "hf-gpt2-eager": "... eager attention (hf extra)",
    "hf-bert": "Hugging Face BertForMaskedLM (hf extra)",
    "hf-bart": "Hugging Face BartForConditionalGeneration, KV cache (hf extra)",
}


class UsageError(Exception):
    """A bad option: the command exits 2 with this one line."""


HF_EXTRA_HINT = "pip install 'transformer-spec[hf]' (or: pip install transformers)"


def missing_extra(names: Sequence[str]) -> tuple[list[str], list[str]]:
    """(the targets whose extra is installed, those whose extra is not): the Hugging Face
    targets (hf-*, hf:CLASS) need transformers. Used on default target lists only: a target
    named on the command line keeps its exit-2 error, which says how to install it."""
    import importlib.util

    has_hf = importlib.util.find_spec("transformers") is not None
    needs = [n for n in names if n.startswith(("hf-", "hf:")) and not has_hf]
    return [n for n in names if n not in needs], needs


def skipped_line(skipped: Sequence[str]) -> str:
    return (
        f"skipped {len(skipped)} default target(s) whose extra is not installed: "
        f"{', '.join(skipped)} (the hf extra: {HF_EXTRA_HINT})"
    )


CHECK_DEFAULT = "reference-math reference-fused"
TABLE_DEFAULT = "every built-in target that runs on the device"


def targets_epilog(default: str) -> str:
    """The built-in targets, listed under a command's help, with that command's default."""
    width = max(map(len, BUILTIN_HELP))
    lines = [f"  {name:<{width}}  {what}" for name, what in BUILTIN_HELP.items()]
    return "\n".join(
        [
            f"built-in targets (default: {default}):",
            *lines,
            "  mutant:NAME" + " " * (width - 9) + "the reference with one seeded bug "
            "(`transformer-spec mutants --list`)",
            "  hf:CLASSNAME" + " " * (width - 10) + "any Hugging Face model class, built tiny "
            "with no download (hf extra; hf:CLASSNAME:eager for eager attention)",
        ]
    )


def dtypes(words: list[str]) -> list[str]:
    chosen = list(DTYPE_NAMES) if words == ["all"] else words
    unknown = [d for d in chosen if d not in DTYPE_NAMES]
    if unknown:
        raise UsageError(f"--dtype {unknown[0]!r}: expected one of {list(DTYPE_NAMES)} or 'all'")
    return chosen


def common(args: argparse.Namespace, *reports: str | None) -> None:
    """The options `check` and `table` share, as far as they can be checked without torch:
    --dtype, --device's spelling, --call-timeout, --known-failures (readable) and the
    report paths (writable). UsageError names the first bad one."""
    args.dtype = dtypes(args.dtype or ["float32"])
    if not _DEVICE.match(args.device):
        raise UsageError(f"--device: {args.device!r} is not a device; expected 'cpu' or 'cuda[:N]'")
    if not args.call_timeout >= 0:
        raise UsageError(
            f"--call-timeout {args.call_timeout:g}: expected seconds >= 0 (0: no limit)"
        )
    if getattr(args, "jobs", 1) < 1:
        raise UsageError(f"--jobs {args.jobs}: expected >= 1")
    for path in reports:
        if path:
            writable(path)


def common_reports(*reports: str | None) -> None:
    for path in reports:
        if path:
            writable(path)


def writable(path: str) -> None:
    resolved = Path(path).resolve()
    if resolved.is_dir():
        raise UsageError(f"report path {path!r}: is a folder; expected a file path")
    parent = resolved.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise UsageError(
            f"report path {path!r}: folder {str(parent)!r} does not exist or is not writable"
        )


def pictures_folder(pictures: str | None, html: str | None) -> Path | None:
    """--pictures DIR, or beside the --html page (PAGE_pictures/); None: no pictures."""
    if pictures:
        folder = Path(pictures)
    elif html:
        folder = Path(html).with_name(Path(html).stem + "_pictures")
    else:
        return None
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--pictures {str(folder)!r}: exists and is not a folder")
    where = folder if folder.is_dir() else folder.resolve().parent
    if not where.is_dir() or not os.access(where, os.W_OK):
        raise UsageError(
            f"--pictures {str(folder)!r}: folder {str(where)!r} does not exist or is not writable"
        )
    return folder


def shard(word: str | None) -> tuple[int, int] | None:
    """--shard I/N as (I, N), 1 <= I <= N."""
    if word is None:
        return None
    found = re.fullmatch(r"(\d+)/(\d+)", word)
    if not found or not 1 <= int(found[1]) <= int(found[2]):
        raise UsageError(f"--shard {word!r}: expected I/N with 1 <= I <= N, e.g. 2/3")
    return int(found[1]), int(found[2])
