"""A family of correct implementations, one per combination of declarable conventions, and
for each convention a broken twin that declares it but does otherwise (issue 17).

Every member is written from the formula in the variant it declares: mask polarity x causal
alignment x fully-masked-row policy x weights x score scale x statistics dtype x determinism
at the attention level; the same inside multi-head modules, with weights averaged or not,
self-attention-only inputs, causal always / never / by argument, and with or without a key
padding mask; grouped key/value heads shared three ways (issue 32); LayerNorm variance x eps
placement x statistics dtype, and rotary pairing x base x width x angle dtype for the
components.
A correct member must pass every property in every dtype; a twin must fail.

Members are reached by name as `tests.family:NAME` (the module's __getattr__ builds them), so
the checker, the conformance table and `benchmarks.false_alarms --family` can load them in
worker processes. `pairwise()` picks a covering set: every pair of values of two conventions
appears together in at least one member; `product()` is every combination.
"""

import functools
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, cast

import torch
from torch import Tensor
from transformer_spec.properties.targets.conventions import Conventions, ScoreScale
from transformer_spec.properties.targets.levels import (
    ComponentSpec,
    MHASpec,
    Projections,
    Unsupported,
)
from transformer_spec.properties.targets.protocols import Target


def declaring(values: dict[str, Any]) -> Conventions:
    """Conventions with these values, each difference from the reference's explained."""
    base = Conventions()
    why = "declared by this family member"
    return Conventions(
        **values, explanations={n: why for n, v in values.items() if v != getattr(base, n)}
    )


# ------------------------------------------------------------------ attention variants


@dataclass(frozen=True)
class Attn:
    """What one attention kernel does (and, for a correct member, declares)."""

    polarity: str = "true_attends"  # mask_polarity
    alignment: str = "bottom_right"  # causal_alignment; "refuses" = None
    empty_row: str = "zeros"  # fully_masked_row
    weights: str = "per_head"
    scale: str = "1/sqrt(d_k)"  # or "none" or a number as text
    statistics: str = "build"  # statistics_dtype ("bfloat16" only as a twin's actual)
    deterministic: bool = True

    def scale_value(self) -> ScoreScale:
        if self.scale in ("1/sqrt(d_k)", "none"):
            return cast(ScoreScale, self.scale)
        return float(self.scale)


ATTN_CHOICES: dict[str, tuple[Any, ...]] = {
    "polarity": ("true_attends", "true_blocks"),
    "alignment": ("bottom_right", "top_left", "refuses"),
    "empty_row": ("zeros", "nan", "finite", "unspecified"),
    "weights": ("per_head", "none"),
    "scale": ("1/sqrt(d_k)", "none", "0.25"),
    "statistics": ("build", "float32"),
    "deterministic": (True, False),
}


def _visible(q: Tensor, k: Tensor, mask: Tensor | None, causal: bool, how: Attn) -> Tensor | None:
    """True where a query may attend, from the mask (in `how`'s polarity) and the flag."""
    lq, lk = q.shape[-2], k.shape[-2]
    attends = None if mask is None else (mask if how.polarity == "true_attends" else ~mask)
    if causal:
        if lq != lk and how.alignment == "refuses":
            raise Unsupported("this kernel takes the causal flag only for equal lengths")
        shift = lk - lq if how.alignment == "bottom_right" else 0
        rows = torch.arange(lq, device=q.device)[:, None]
        tri = torch.arange(lk, device=q.device)[None, :] <= rows + shift
        attends = tri if attends is None else attends & tri
    return attends


def _softmax(scores: Tensor, attends: Tensor | None, how: Attn) -> Tensor:
    """Masked softmax with the declared fully-masked-row behaviour."""
    if attends is None:
        return torch.softmax(scores, -1)
    if how.empty_row == "finite":  # the "-1e9" style: an empty row averages every value
        return torch.softmax(scores.masked_fill(~attends, torch.finfo(scores.dtype).min), -1)
    w = torch.softmax(scores.masked_fill(~attends, -math.inf), -1)  # empty rows: NaN
    if how.empty_row == "zeros":
        return w.nan_to_num(0.0)
    if how.empty_row == "unspecified":  # any value at all: here the mean of the values
        return w.nan_to_num(1.0 / scores.shape[-1])
    return w


def make_attention(how: Attn) -> Callable[..., tuple[Tensor, Tensor | None]]:
    scale = declaring({"score_scale": how.scale_value()}).scale

    def attention(
        q: Tensor, k: Tensor, v: Tensor, *, mask: Tensor | None, causal: bool
    ) -> tuple[Tensor, Tensor | None]:
        attends = _visible(q, k, mask, causal, how)
        perm = None
        if not how.deterministic:  # a kernel whose summation order varies (atomics, say)
            perm = torch.randperm(k.shape[-2]).to(q.device)
            k, v = k[..., perm, :], v[..., perm, :]
            attends = None if attends is None else attends[..., perm]
        scores = (q @ k.transpose(-2, -1)) * scale(q.shape[-1])
        if how.statistics != "build":
            scores = scores.to(getattr(torch, how.statistics))
        w = _softmax(scores, attends, how).to(q.dtype)
        out = w @ v
        if perm is not None:
            w = w[..., torch.argsort(perm)]
        return out, (w if how.weights == "per_head" else None)

    return attention


def _attn_conventions(how: Attn) -> Conventions:
    values: dict[str, Any] = {
        "mask_polarity": how.polarity,
        "causal_alignment": None if how.alignment == "refuses" else how.alignment,
        "fully_masked_row": how.empty_row,
        "weights": how.weights,
        "score_scale": how.scale_value(),
        "statistics_dtype": how.statistics,
        "deterministic": how.deterministic,
    }
    return declaring(values)


def attention_target(name: str, declared: Attn, actual: Attn | None = None) -> Target:
    return Target(
        name=name,
        description=f"family: {declared}" + (f", but does {actual}" if actual else ""),
        conventions=_attn_conventions(declared),
        attention=make_attention(actual or declared),
    )


# ------------------------------------------------------------------ multi-head variants


@dataclass(frozen=True)
class Heads:
    """A multi-head module: the attention variant inside, and how it can be called."""

    attn: Attn = Attn()
    weights: str = "per_head"  # per_head, averaged, none
    inputs: str = "cross"  # mha_inputs
    causal: str = "argument"  # mha_causal
    key_padding: bool = True  # mha_key_padding
    drops_padding_when_causal: bool = False  # a twin's bug (issue 20)
    share: str = "none"  # grouped key/value heads: "none" (not built), "expand", "index", ...


MHA_CHOICES: dict[str, tuple[Any, ...]] = {
    **{k: v for k, v in ATTN_CHOICES.items() if k != "weights"},
    "weights": ("per_head", "averaged", "none"),
    "inputs": ("cross", "self"),
    "causal": ("argument", "always", "never"),
    "key_padding": (True, False),
}
_ATTN_FIELDS = ("polarity", "alignment", "empty_row", "scale", "statistics", "deterministic")


def _heads(row: dict[str, Any]) -> Heads:
    attn = Attn(**{k: row[k] for k in _ATTN_FIELDS})
    rest = {k: row[k] for k in ("weights", "inputs", "causal", "key_padding")}
    return Heads(attn=attn, **rest)


def _valid_heads(row: dict[str, Any]) -> bool:
    return not (row["inputs"] == "cross" and row["causal"] == "always")


class FamilyMHA:
    """softmax(scale q k^T) v per head on columns i*d_k:(i+1)*d_k of X W + b, then W_O."""

    def __init__(self, spec: MHASpec, how: Heads) -> None:
        g = torch.Generator().manual_seed(spec.seed)
        d = spec.d_model

        def draw(*shape: int) -> Tensor:
            t = torch.randn(*shape, generator=g, dtype=torch.float64) / math.sqrt(d)
            return t.to(spec.device, spec.dtype)

        # Grouped members build n_kv_heads key/value heads when asked; the rest ignore it.
        n_kv = spec.n_kv_heads if how.share != "none" and spec.n_kv_heads else spec.n_heads
        widths = {"Q": d, "K": n_kv * d // spec.n_heads, "V": n_kv * d // spec.n_heads, "O": d}
        self.W = {n: draw(d, widths[n]) if n != "O" else draw(d, d) for n in "QKVO"}
        self.b = {n: draw(widths[n]) for n in "QKVO"}
        self.n_heads, self.n_kv, self.how = spec.n_heads, n_kv, how
        self.attend = make_attention(replace(how.attn, weights="per_head"))

    def __call__(
        self, x_query: Tensor, x_kv: Tensor, *, key_padding: Tensor | None, causal: bool
    ) -> tuple[Tensor, Tensor | None]:
        how = self.how
        x_kv = x_query if how.inputs == "self" else x_kv
        causal = {"always": True, "never": False}.get(how.causal, causal)
        if how.drops_padding_when_causal and causal:
            key_padding = None
        mask = None if key_padding is None else key_padding[:, None, None, :]
        q = self._split(x_query @ self.W["Q"] + self.b["Q"], self.n_heads)
        k, v = (self._split(x_kv @ self.W[n] + self.b[n], self.n_kv) for n in "KV")
        k, v = self._share(k), self._share(v)
        z, w = self.attend(q, k, v, mask=mask, causal=causal)
        b, _, lq, _ = z.shape
        out = z.transpose(1, 2).reshape(b, lq, -1) @ self.W["O"] + self.b["O"]
        assert w is not None
        weights = {"per_head": w, "averaged": w.mean(1), "none": None}[how.weights]
        return out, weights

    def _split(self, t: Tensor, heads: int) -> Tensor:
        b, length, d = t.shape
        return t.view(b, length, heads, d // heads).transpose(1, 2)

    def _share(self, kv: Tensor) -> Tensor:
        """Key/value head j serves query heads j*group .. (j+1)*group - 1, written three
        ways as libraries write it (a twin tiles them instead)."""
        group = self.n_heads // self.n_kv
        if group == 1:
            return kv
        b, g, length, d_k = kv.shape
        share = self.how.share
        if share == "expand":  # transformers' repeat_kv
            return (
                kv[:, :, None].expand(b, g, group, length, d_k).reshape(b, g * group, length, d_k)
            )
        if share == "index":  # a gather by head index
            return kv[:, torch.arange(g * group, device=kv.device) // group]
        if share == "tile":  # head i reads kv head i mod g (x-transformers; declared strided)
            return kv.repeat(1, group, 1, 1)
        return torch.repeat_interleave(kv, group, dim=1)

    def projections(self) -> Projections:
        W, b = self.W, self.b
        return Projections(W["Q"], W["K"], W["V"], W["O"], b["Q"], b["K"], b["V"], b["O"])


def mha_target(name: str, declared: Heads, actual: Heads | None = None) -> Target:
    conventions = _attn_conventions(replace(declared.attn, weights=declared.weights))
    if declared.share == "tile":  # a tiled repeat, declared: query head i reads i mod g
        conventions = replace(
            conventions,
            kv_head_groups="strided",
            explanations={**conventions.explanations, "kv_head_groups": "declared by this member"},
        )
    how = actual or declared
    return Target(
        name=name,
        description=f"family: {declared}" + (f", but does {actual}" if actual else ""),
        conventions=conventions,
        mha=lambda spec: FamilyMHA(spec, how),
        mha_inputs=declared.inputs,  # type: ignore[arg-type]
        mha_causal=declared.causal,  # type: ignore[arg-type]
        mha_key_padding=declared.key_padding,
    )


# Grouped-query members: how the key/value heads are shared, with the multi-head choices
# that change what the grouped property compares (weights, inputs, score scale).
GQA_CHOICES: dict[str, tuple[Any, ...]] = {
    "share": ("expand", "index", "interleave", "tile"),
    "weights": ("per_head", "averaged", "none"),
    "inputs": ("cross", "self"),
    "scale": ("1/sqrt(d_k)", "none"),
}


def _gqa(row: dict[str, Any]) -> Heads:
    return Heads(
        attn=Attn(scale=row["scale"]),
        weights=row["weights"],
        inputs=row["inputs"],
        share=row["share"],
    )


# ------------------------------------------------------------------ rotary variants


@dataclass(frozen=True)
class Rope:
    """A rotary embedding as libraries write it: pairing, base, rotated width, and the
    dtype its angles are taken in (transformers: float32 whatever the model's dtype)."""

    pairing: str = "half_split"
    base: float = 10000.0
    width: str = "full"  # or "4": a partial rotary over the first 4 channels
    angles: str = "float64"


ROPE_CHOICES: dict[str, tuple[Any, ...]] = {
    "pairing": ("half_split", "interleaved"),
    "base": (10000.0, 500000.0, 1000000.0),
    "width": ("full", "4"),
    "angles": ("float64", "float32"),
}


class RotaryOnly:
    """Components with a rotary embedding alone: half-split by rotate_half (GPT-NeoX,
    transformers' Llama), interleaved by complex multiplication (Meta's Llama)."""

    positional_layout = "none"
    embedding_scale = 1.0

    def __init__(self, spec: ComponentSpec, declared: Rope, how: Rope) -> None:
        self.how = how
        self.rotary_pairing, self.rotary_base = declared.pairing, declared.base
        self.rotary_dim = None if declared.width == "full" else int(declared.width)

    def rotary(self, x: Tensor, positions: Tensor) -> Tensor:
        how = self.how
        r = x.shape[-1] if how.width == "full" else int(how.width)
        angle_dtype = getattr(torch, how.angles)
        inv_freq = 1.0 / how.base ** (torch.arange(0, r, 2, dtype=angle_dtype) / r)
        angles = positions.to(angle_dtype)[:, None].cpu() * inv_freq[None, :]
        rot, rest = x[..., :r], x[..., r:]
        if how.pairing == "half_split":
            emb = torch.cat([angles, angles], dim=-1).to(x.device)
            cos, sin = emb.cos().to(x.dtype), emb.sin().to(x.dtype)
            half = rot.shape[-1] // 2
            rotate_half = torch.cat([-rot[..., half:], rot[..., :half]], dim=-1)
            turned = rot * cos + rotate_half * sin
        else:
            pairs = rot.double().reshape(*rot.shape[:-1], -1, 2)
            z = torch.view_as_complex(pairs.contiguous())
            turn = torch.polar(torch.ones_like(angles.double()), angles.double()).to(x.device)
            turned = torch.view_as_real(z * turn).flatten(-2).to(x.dtype)
        return torch.cat([turned, rest], dim=-1)

    def __getattr__(self, name: str) -> Callable[..., None]:
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *args, **kwargs: None  # every other component: not offered


def rope_target(name: str, declared: Rope, actual: Rope | None = None) -> Target:
    how = actual or declared
    return Target(
        name=name,
        description=f"family: {declared}" + (f", but does {actual}" if actual else ""),
        components=lambda spec: RotaryOnly(spec, declared, how),  # type: ignore[arg-type,return-value]
    )


# ------------------------------------------------------------------ LayerNorm variants


@dataclass(frozen=True)
class Norm:
    variance: str = "biased"
    eps: str = "inside_sqrt"
    statistics: str = "build"  # "bfloat16" only as a twin's actual


NORM_CHOICES: dict[str, tuple[Any, ...]] = {
    "variance": ("biased", "unbiased"),
    "eps": ("inside_sqrt", "outside_sqrt"),
    "statistics": ("build", "float32"),
}


class NormOnly:
    """Components with a LayerNorm alone (the other component properties: not applicable)."""

    positional_layout = "none"
    embedding_scale = 1.0
    layer_norm_eps = 1e-5

    def __init__(self, spec: ComponentSpec, how: Norm) -> None:
        self.spec, self.how = spec, how

    def layer_norm(self, x: Tensor) -> Tensor:
        y = x if self.how.statistics == "build" else x.to(getattr(torch, self.how.statistics))
        centred = y - y.mean(-1, keepdim=True)
        var = y.var(-1, unbiased=self.how.variance == "unbiased", keepdim=True)
        eps = self.layer_norm_eps
        if self.how.eps == "inside_sqrt":
            out = centred / torch.sqrt(var + eps)
        else:
            out = centred / (torch.sqrt(var) + eps)
        return out.to(x.dtype)

    def layer_norm_affine(self, x: Tensor, gain: Tensor, bias: Tensor) -> Tensor:
        return self.layer_norm(x) * gain + bias

    def __getattr__(self, name: str) -> Callable[..., None]:
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *args, **kwargs: None  # every other component: not offered


def norm_target(name: str, declared: Norm, actual: Norm | None = None) -> Target:
    values: dict[str, Any] = {
        "layer_norm_variance": declared.variance,
        "layer_norm_eps": declared.eps,
        "statistics_dtype": declared.statistics,
    }
    how = actual or declared
    return Target(
        name=name,
        description=f"family: {declared}" + (f", but does {actual}" if actual else ""),
        conventions=declaring(values),
        components=lambda spec: NormOnly(spec, how),  # type: ignore[arg-type,return-value]
    )


# ------------------------------------------------------------------ covering sets


Valid = Callable[[dict[str, Any]], bool]
Row = dict[str, Any]


@functools.cache
def _pairwise(key: str) -> tuple[tuple[tuple[str, Any], ...], ...]:
    choices, valid = _SETS[key]
    rows = product(choices, valid)
    names = list(choices)
    covers = [frozenset(itertools.combinations([(n, r[n]) for n in names], 2)) for r in rows]
    uncovered = set().union(*covers)
    chosen: list[Row] = []
    while uncovered:
        best = max(range(len(rows)), key=lambda i: len(covers[i] & uncovered))
        chosen.append(rows[best])
        uncovered -= covers[best]
    return tuple(tuple(r.items()) for r in chosen)


def pairwise(key: str) -> list[Row]:
    """A small set of combinations of _SETS[key] in which every pair of values of two fields
    that some valid combination holds appears together at least once (greedy: each step
    takes the combination covering most new pairs; ties go to the first in product order,
    so the set is the same on every run)."""
    return [dict(r) for r in _pairwise(key)]


def product(choices: dict[str, tuple[Any, ...]], valid: Valid | None = None) -> list[Row]:
    names = list(choices)
    rows = [dict(zip(names, c, strict=True)) for c in itertools.product(*choices.values())]
    return [r for r in rows if valid is None or valid(r)]


_SETS: dict[str, tuple[dict[str, tuple[Any, ...]], Valid | None]] = {
    "attn": (ATTN_CHOICES, None),
    "mha": (MHA_CHOICES, _valid_heads),
    "norm": (NORM_CHOICES, None),
    "gqa": (GQA_CHOICES, None),
    "rope": (ROPE_CHOICES, None),
}
_BOOLEANS = {"deterministic": ("det", "nondet"), "key_padding": ("pad", "nopad")}


def _slug(field: str, value: Any) -> str:
    if field in _BOOLEANS:
        return _BOOLEANS[field][0 if value else 1]
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).replace("1/sqrt(d_k)", "isqrt").replace(".", "")


def _name(prefix: str, row: Row) -> str:
    return prefix + "_" + "_".join(_slug(f, v) for f, v in row.items())


# ------------------------------------------------------------------ broken twins

# For each convention: (declared, actually done). Each twin differs from a correct member
# in one convention only, so its failure is that convention's.
ATTN_TWINS: dict[str, tuple[Attn, Attn]] = {
    "polarity_inverted": (Attn(polarity="true_blocks"), Attn(polarity="true_attends")),
    "bottom_right_does_top_left": (Attn(alignment="bottom_right"), Attn(alignment="top_left")),
    "top_left_does_bottom_right": (Attn(alignment="top_left"), Attn(alignment="bottom_right")),
    "zeros_gives_nan": (Attn(empty_row="zeros"), Attn(empty_row="nan")),
    "nan_gives_zeros": (Attn(empty_row="nan"), Attn(empty_row="zeros")),
    "finite_gives_nan": (Attn(empty_row="finite"), Attn(empty_row="nan")),
    "weights_missing": (Attn(weights="per_head"), Attn(weights="none")),
    "scale_none_does_sqrt": (Attn(scale="none"), Attn(scale="1/sqrt(d_k)")),
    "scale_const_does_sqrt": (Attn(scale="0.25"), Attn(scale="1/sqrt(d_k)")),
    "scale_sqrt_does_none": (Attn(), Attn(scale="none")),
    "statistics_build_does_float32": (Attn(), Attn(statistics="float32")),
    "statistics_float32_does_bfloat16": (Attn(statistics="float32"), Attn(statistics="bfloat16")),
    "deterministic_draws_rng": (Attn(), Attn(deterministic=False)),
}
MHA_TWINS: dict[str, tuple[Heads, Heads]] = {
    "bottom_right_does_top_left": (Heads(), Heads(attn=Attn(alignment="top_left"))),
    "per_head_returns_averaged": (Heads(), Heads(weights="averaged")),
    "always_causal_is_not": (
        Heads(inputs="self", causal="always"),
        Heads(inputs="self", causal="never"),
    ),
    "never_causal_is": (Heads(causal="never"), Heads(causal="always", inputs="self")),
    "drops_padding_when_causal": (Heads(), Heads(drops_padding_when_causal=True)),
    "scale_none_does_sqrt": (
        Heads(attn=Attn(scale="none")),
        Heads(attn=Attn(scale="1/sqrt(d_k)")),
    ),
}
GQA_TWINS: dict[str, tuple[Heads, Heads]] = {
    "interleave_does_tile": (Heads(share="interleave"), Heads(share="tile")),
    "tile_does_interleave": (Heads(share="tile"), Heads(share="interleave")),
}
ROPE_TWINS: dict[str, tuple[Rope, Rope]] = {
    "half_split_does_interleaved": (Rope(), Rope(pairing="interleaved")),
    "interleaved_does_half_split": (Rope(pairing="interleaved"), Rope()),
    "base_10000_does_500000": (Rope(), Rope(base=500000.0)),
    "full_does_partial": (Rope(), Rope(width="4")),
}
NORM_TWINS: dict[str, tuple[Norm, Norm]] = {
    "biased_does_unbiased": (Norm(), Norm(variance="unbiased")),
    "unbiased_does_biased": (Norm(variance="unbiased"), Norm()),
    "inside_does_outside": (Norm(), Norm(eps="outside_sqrt")),
    "outside_does_inside": (Norm(eps="outside_sqrt"), Norm()),
    "statistics_build_does_bfloat16": (Norm(), Norm(statistics="bfloat16")),
    "statistics_float32_does_bfloat16": (Norm(statistics="float32"), Norm(statistics="bfloat16")),
}
# The dtypes in which a twin's difference is visible: a float32 softmax inside a 16-bit build
# is more accurate than the build, not wrong, so only float64 shows it; statistics in
# bfloat16 show in the 32- and 64-bit builds. (A float32 LayerNorm inside a float64 build is
# within what an unknown eps in [0, 1e-5] may change, so that twin is bfloat16.)
TWIN_DTYPES: dict[str, tuple[str, ...]] = {
    "statistics_build_does_float32": ("float64",),
    "statistics_float32_does_bfloat16": ("float64", "float32"),
    "statistics_build_does_bfloat16": ("float64", "float32"),
}


# ------------------------------------------------------------------ names


def _members() -> dict[str, Callable[[], Target]]:
    make: dict[str, Callable[[str, Row], Target]] = {
        "attn": lambda name, row: attention_target(name, Attn(**row)),
        "mha": lambda name, row: mha_target(name, _heads(row)),
        "norm": lambda name, row: norm_target(name, Norm(**row)),
        "gqa": lambda name, row: mha_target(name, _gqa(row)),
        "rope": lambda name, row: rope_target(name, Rope(**row)),
    }
    found: dict[str, Callable[[], Target]] = {}
    for key, (choices, valid) in _SETS.items():
        for row in product(choices, valid):
            name = _name(key, row)
            found[name] = functools.partial(make[key], name, row)
    twins: list[tuple[str, Callable[..., Target], dict[str, Any]]] = [
        ("attn", attention_target, ATTN_TWINS),
        ("mha", mha_target, MHA_TWINS),
        ("norm", norm_target, NORM_TWINS),
        ("gqa", mha_target, GQA_TWINS),
        ("rope", rope_target, ROPE_TWINS),
    ]
    for key, build, table in twins:
        for twin, (declared, actual) in table.items():
            name = f"twin_{key}_{twin}"
            found[name] = functools.partial(build, name, declared, actual)
    return found


MEMBERS = _members()


def correct(full: bool = False) -> list[str]:
    """The correct members' names: a pairwise covering set, or every combination."""
    names = []
    for key, (choices, valid) in _SETS.items():
        rows = product(choices, valid) if full else pairwise(key)
        names += [_name(key, r) for r in rows]
    return names


def twins() -> list[str]:
    return [n for n in MEMBERS if n.startswith("twin_")]


def twin_dtypes(name: str) -> tuple[str, ...]:
    key = name.split("_", 2)[2]
    return TWIN_DTYPES.get(key, ("float64", "float32", "bfloat16", "float16"))


def spec(name: str) -> str:
    """The checker's target argument for a member."""
    return f"tests.family:{name}"


def __getattr__(name: str) -> Callable[[], Target]:
    if name in MEMBERS:
        return MEMBERS[name]
    raise AttributeError(f"module 'tests.family' has no member {name!r}")
