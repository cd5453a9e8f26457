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


def check_rows_sum_to_one(w: Tensor, bound: float, what: str) -> None:
    """Every row of attention weights `w` (..., Lk) sums to 1 within `bound`."""
    ones = torch.ones(w.shape[:-1], dtype=torch.float64)
    check_close(w.double().sum(-1), ones, bound, what, w)


def check_rows(
    got: Tensor, want: Tensor, attends: Tensor, policy: str, bound: float, what: str
) -> None:
    """Output rows (got: (..., Lq, d)) against the float64 formula where the mask `attends`
    (..., Lq, Lk) leaves the query a key, and against the declared fully-masked-row policy
    where it leaves none (however the row was emptied: padding, the causal flag, or both)."""
    open_rows = torch.broadcast_to(attends.to(got.device).any(-1, keepdim=True), got.shape)
    zero = torch.zeros((), dtype=got.dtype, device=got.device)
    check_close(got.where(open_rows, zero), want.to(got.device).where(open_rows, 0.0), bound, what)
    empty = got[~open_rows]
    if empty.numel():
        follows_policy(empty, policy, f"{what}: a query row with no visible key")


def follows_policy(values: Tensor, policy: str, what: str) -> None:
    """A fully masked row's values, as the target declared: zeros, NaN, finite, or anything
    ("unspecified")."""
    ok = {
        "zeros": bool((values == 0).all()),
        "nan": bool(torch.isnan(values).all()),
        "finite": bool(torch.isfinite(values).all()),
        "unspecified": True,
    }[policy]
    if not ok:
        raise AssertionError(
            f"{what} should be {policy} (declared fully_masked_row), got "
            f"{values.flatten()[:6].double().tolist()}"
        )


def relative_bound(tolerance: float, *refs: Tensor) -> float:
    """A bound relative to the largest magnitude involved (at least 1)."""
    return tolerance * max([1.0, *(max_abs(r) for r in refs)])
