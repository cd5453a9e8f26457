"""Counterexample pictures (the optional `pictures` extra: matplotlib).

When a property fails, the guard has recorded the calls of the failing (shrunk) example:
- an attention call that returned weights is drawn as two heatmaps, the target's weights
  next to the float64 reference's for the same q, k, v and mask, with the entries that
  differ by more than the cell's bound outlined in red (a causal leak shows as red boxes
  above the diagonal);
- a positional-table call is drawn as a (positions x channels) heatmap, like the notes'
  picture of 20 positions x 512 channels, next to the paper's sinusoid.
"""

import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor
from transformer_spec.properties.checks.reference_math import attention64
from transformer_spec.properties.harness.guard import Recorded
from transformer_spec.properties.harness.registry import Context
from transformer_spec.properties.targets.protocols import Conventions

if TYPE_CHECKING:
    from transformer_spec.properties.harness.results import Result

PICTURES_HINT = "pip install 'transformer-spec[pictures]' (or: pip install matplotlib)"
_ANNOTATE = 8  # matrices up to this many rows and columns get their values written in


class MissingMatplotlib(Exception):
    """The pictures need matplotlib, which is not installed."""


def pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no display needed
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise MissingMatplotlib(
            f"matplotlib is not installed ({err}); install it with: {PICTURES_HINT}"
        ) from err
    return plt


def _attends(call: Recorded, conventions: Conventions) -> Tensor | None:
    """The call's mask as True = may attend, with the causal mask in the declared alignment."""
    q, k = call.args[0], call.args[1]
    mask = call.kwargs.get("mask")
    attends = (
        None if mask is None else (mask if conventions.mask_polarity == "true_attends" else ~mask)
    )
    if call.kwargs.get("causal"):
        lq, lk = q.shape[-2], k.shape[-2]
        shift = 0 if conventions.causal_alignment == "top_left" else lk - lq
        causal = torch.ones(lq, lk, dtype=torch.bool).tril(shift)
        attends = causal if attends is None else attends & causal
    return attends


def _worst_head(got: Tensor, want: Tensor) -> tuple[int, int]:
    diff = (got - want).abs().nan_to_num(math.inf).amax(dim=(-2, -1))
    flat = int(diff.flatten().argmax())
    return flat // diff.shape[1], flat % diff.shape[1]


def _heatmap(ax: Any, m: Tensor, title: str, cmap: str, vmin: float, vmax: float) -> Any:
    image = ax.imshow(m.numpy(), cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    ax.set_title(title, fontsize=10)
    rows, cols = m.shape
    if rows <= 2 * _ANNOTATE and cols <= 2 * _ANNOTATE:  # whole positions only
        ax.set_xticks(range(cols))
        ax.set_yticks(range(rows))
    if rows <= _ANNOTATE and cols <= _ANNOTATE:
        for i in range(rows):
            for j in range(cols):
                value = float(m[i, j])
                mid, half = (vmin + vmax) / 2, (vmax - vmin) / 2
                dark = abs(value - mid) > 0.6 * half if cmap == "RdBu" else value < mid
                colour = "white" if dark else "black"
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=8, color=colour)
    return image


def _reference_weights(call: Recorded, ctx: Context) -> Tensor:
    q, k, v = call.args[0], call.args[1], call.args[2]
    c = ctx.target.conventions
    return attention64(q, k, v, _attends(call, c), scale=c.scale(q.shape[-1]))[1]


def draw_attention(call: Recorded, ctx: Context, title: str, path: Path) -> int:
    """The target's weights next to the reference's; returns how many entries are marked."""
    plt = pyplot()
    from matplotlib.patches import Rectangle

    got = call.result[1].double()
    want = _reference_weights(call, ctx)
    b, h = _worst_head(got, want)
    got, want = got[b, h], want[b, h]
    bound = ctx.tolerance.reference_floor + ctx.tolerance.invariance
    bad = ((got - want).abs() > bound) | (got.isnan() != want.isnan())
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6), constrained_layout=True)
    _heatmap(
        axes[0], got.nan_to_num(-1.0), f"{ctx.target.name} (batch {b}, head {h})", "viridis", 0, 1
    )
    image = _heatmap(axes[1], want, "reference, float64", "viridis", 0, 1)
    leaked = (want == 0) & (got != 0)  # weight on a key the reference masks out
    for i, j in bad.nonzero().tolist():
        axes[0].add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", lw=2.5))
        if leaked[i, j]:
            axes[0].text(j, i + 0.3, "leak", ha="center", color="red", fontsize=8, weight="bold")
    for ax in axes:
        ax.set_xlabel("key position")
        ax.set_ylabel("query position")
    fig.colorbar(image, ax=axes, shrink=0.8, label="attention weight")
    fig.suptitle(
        f"{title}\n{int(bad.sum())} entries (red) differ from the reference by more than "
        f"{bound:.2g}",
        fontsize=10,
    )
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return int(bad.sum())


def sinusoid(n: int, d_model: int, start: int = 0) -> Tensor:
    """The paper's table, sin on even and cos on odd channels, in float64."""
    pos = torch.arange(start, start + n, dtype=torch.float64)[:, None]
    i = torch.arange(0, d_model, 2, dtype=torch.float64)
    angle = pos / 10000 ** (i / d_model)
    table = torch.zeros(n, d_model, dtype=torch.float64)
    table[:, 0::2] = torch.sin(angle)
    table[:, 1::2] = torch.cos(angle[:, : d_model // 2])
    return table


def draw_positional(call: Recorded, ctx: Context, title: str, path: Path) -> None:
    plt = pyplot()
    table = call.result.double()
    start = call.args[1] if len(call.args) > 1 else call.kwargs.get("start", 0)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    image = _heatmap(axes[0], table, f"{ctx.target.name}: positional table", "RdBu", -1, 1)
    _heatmap(
        axes[1],
        sinusoid(table.shape[0], table.shape[1], int(start)),
        "the paper's sinusoid (sin even, cos odd channels)",
        "RdBu",
        -1,
        1,
    )
    for ax in axes:
        ax.set_xlabel("channel")
        ax.set_ylabel("position")
    fig.colorbar(image, ax=axes, shrink=0.8)
    fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def draw_failure(
    property_id: str, calls: list[Recorded], ctx: Context, folder: Path, stem: str
) -> list[Path]:
    """The pictures of one failing property: its attention call that differs most from the
    reference, and its last positional table. Raises MissingMatplotlib."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    attention = [c for c in calls if c.what == "attention" and _has_weights(c)]
    if attention:
        call = max(attention, key=lambda c: _distance(c, ctx))
        path = folder / f"{stem}-attention.png"
        draw_attention(call, ctx, f"{property_id}: the failing example's attention weights", path)
        paths.append(path)
    tables = [
        c for c in calls if c.what == "components.positional_table" and isinstance(c.result, Tensor)
    ]
    if tables:
        path = folder / f"{stem}-positions.png"
        draw_positional(
            tables[-1], ctx, f"{property_id}: the failing example's positional encoding", path
        )
        paths.append(path)
    return paths


def _has_weights(call: Recorded) -> bool:
    result = call.result
    return isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], Tensor)


def _distance(call: Recorded, ctx: Context) -> float:
    want = _reference_weights(call, ctx)
    got = call.result[1].double()
    if got.shape != want.shape:
        return -1.0
    return float((got - want).abs().nan_to_num(math.inf).max())


def drawer(folder: Path, missing: list[str]) -> "Callable[[Result, list[Recorded], Context], None]":
    """The runner's on_failure hook: draws a failing example's pictures into `folder`, or
    records (once, in `missing`) why it cannot. Without matplotlib nothing is drawn and no
    folder is made."""

    def draw(result: "Result", calls: list[Recorded], ctx: Context) -> None:
        if missing:
            return
        name = f"{ctx.target.name}-{ctx.device.type}-{ctx.dtype_name}-{result.property}"
        stem = re.sub(r"[^A-Za-z0-9._-]", "_", name)
        try:
            pyplot()  # before draw_failure makes the folder
            paths = draw_failure(result.property, calls, ctx, folder, stem)
        except MissingMatplotlib as err:
            missing.append(str(err))
            return
        result.pictures = [str(p) for p in paths]

    return draw
