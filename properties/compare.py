"""Comparisons that fail with a readable message: where, by how much, against what bound."""

import math

import torch
from torch import Tensor

_SHOW = 48  # tensors up to this many elements are printed in full in a counterexample


def show(name: str, t: Tensor) -> str:
    if t.numel() <= _SHOW:
        values = t.detach().double().cpu().numpy().round(4).tolist()
        return f"{name} {tuple(t.shape)} {t.dtype}: {values}"
    return f"{name} {tuple(t.shape)} {t.dtype} (too large to print)"


def max_abs(t: Tensor) -> float:
    return float(t.detach().double().abs().max()) if t.numel() else 0.0


def worst(diff: Tensor) -> tuple[float, tuple[int, ...]]:
    flat = int(diff.double().abs().nan_to_num(math.inf).argmax())
    index = tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), diff.shape))
    return float(diff.double().abs().flatten()[flat]), index


def check_close(got: Tensor, want: Tensor, bound: float, what: str, *extra: Tensor) -> None:
    """max |got - want| <= bound, NaN in the same places, else AssertionError."""
    if got.shape != want.shape:
        raise AssertionError(f"{what}: shape {tuple(got.shape)}, expected {tuple(want.shape)}")
    g, w = got.detach().double(), want.detach().double().to(got.device)
    nan_g, nan_w = torch.isnan(g), torch.isnan(w)
    if not torch.equal(nan_g, nan_w):
        where = tuple(int(i) for i in (nan_g ^ nan_w).nonzero()[0])
        raise AssertionError(
            f"{what}: NaN at {where} in one result but not the other\n"
            f"{show('got', got)}\n{show('expected', want)}"
        )
    diff = (g - w).nan_to_num(0.0)
    err, index = worst(diff)
    if not err <= bound:
        lines = [
            f"{what}: max |difference| {err:.3g} at {index} exceeds {bound:.3g}",
            show("got", got),
            show("expected", want),
        ]
        lines += [show(f"input{i}", t) for i, t in enumerate(extra)]
        raise AssertionError("\n".join(lines))


def relative_bound(tolerance: float, *refs: Tensor) -> float:
    """A bound relative to the largest magnitude involved (at least 1)."""
    return tolerance * max([1.0, *(max_abs(r) for r in refs)])
