"""What the commands check of their own options before torch is imported (report paths, the
pictures folder), and the built-in targets listed under `--help`; the run's options are the
Plan's to check (transformer_spec.properties.harness.plan). Nothing here imports torch."""

import os
from collections.abc import Sequence
from pathlib import Path

from transformer_spec.properties.harness.errors import UsageError as UsageError
from transformer_spec.properties.harness.names import BUILTIN
from transformer_spec.properties.harness.plan import CHECK_TARGETS

from ._extras import HF_EXTRA_HINT as HF_EXTRA_HINT


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


CHECK_DEFAULT = " ".join(CHECK_TARGETS)
TABLE_DEFAULT = "every built-in target that runs on the device"


def targets_epilog(default: str) -> str:
    """The built-in targets, listed under a command's help, with that command's default."""
    width = max(map(len, BUILTIN))
    lines = [f"  {name:<{width}}  {b.description}" for name, b in BUILTIN.items()]
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


def reports(*paths: str | None) -> None:
    """Each report path given is writable (a folder that exists); UsageError names the
    first that is not."""
    for path in paths:
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
