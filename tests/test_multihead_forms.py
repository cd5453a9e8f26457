"""Multi-head targets in every form they can honestly declare (issue 17), and the gaps of
issue 20 at this level.

- Self-attention modules (forward(x), always or never causal) are declared in a few lines
  with adapters/self_attention.py, and every multi-head property runs on them except those
  that need what the module does not have (separate query and key inputs, weights, a key
  padding mask, a causal mask), each reported not applicable with that reason.
- Honest declarations of the other conventions pass: NaN, finite or unspecified rows where
  no key is visible, top-left or no causal alignment for unequal lengths.
- Each broken twin of the new properties passes every other multi-head property: the gap
  was real.
"""

import dataclasses
import inspect
import math
import re
from collections.abc import Callable

import pytest
import torch
from torch import Tensor
from transformer_spec.properties import Conventions, Target
from transformer_spec.properties.checks import select
from transformer_spec.properties.harness.loading import load_target
from transformer_spec.properties.harness.registry import Context
from transformer_spec.properties.harness.results import Result
from transformer_spec.properties.harness.runner import run_property
from transformer_spec.properties.harness.tolerance import tolerance_for
from transformer_spec.properties.targets.adapters.self_attention import self_attention_target
from transformer_spec.properties.targets.levels import MHASpec, Unsupported

from transformer_spec import reference as R

from . import broken_mha
from .self_attention_modules import (
    CausalSelfAttention,
    encoder_target,
    nanogpt_manual_target,
    nanogpt_target,
)

CPU = torch.device("cpu")
CROSS_ONLY = {  # properties that need queries apart from keys and values
    "multihead.output_has_query_shape",
    "multihead.one_heads_queries_leave_other_heads_unchanged",
    "multihead.output_row_depends_only_on_its_query_row",
    "multihead.causal_alignment_as_declared",
}
NEED_WEIGHTS = {
    "multihead.weights_are_distributions_per_head",
    "multihead.weights_from_W_Q_W_K_only",
    "multihead.causal_weights_hide_future_keys",
}
NEED_PADDING = {
    "multihead.padded_keys_have_no_effect",
    "multihead.fully_padded_item_follows_policy",
    "multihead.padding_and_causal_combine",
}
NEED_GROUPS = {"multihead.grouped_query_equals_repeated_heads"}  # none of these groups heads
NEED_CAUSAL = {
    "multihead.causal_no_future_leak",
    "multihead.padding_and_causal_combine",
    "multihead.causal_weights_hide_future_keys",
}


def run_all(target: Target, dtype: torch.dtype = torch.float32) -> dict[str, Result]:
    ctx = Context(target, CPU, dtype, tolerance_for(dtype, CPU))
    return {p.id: run_property(p, ctx, profile="ci", seed=0) for p in select(["multihead.*"])}


def failures(results: dict[str, Result]) -> dict[str, str]:
    return {pid: r.message[:400] for pid, r in results.items() if r.outcome == "fail"}


def ran(results: dict[str, Result]) -> set[str]:
    return {pid for pid, r in results.items() if r.outcome in ("pass", "convention")}


def test_a_nanogpt_attention_is_declared_in_at_most_ten_lines() -> None:
    lines = [line for line in inspect.getsource(nanogpt_target).splitlines() if line.strip()]
    assert len(lines) <= 10, lines
    t = nanogpt_target()
    assert (t.mha_inputs, t.mha_causal, t.mha_key_padding) == ("self", "always", False)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize(
    ("factory", "lacks", "n_run"),
    [
        # nanoGPT on SDPA: no weights, no padding
        (nanogpt_target, CROSS_ONLY | NEED_WEIGHTS | NEED_PADDING | NEED_GROUPS, 4),
        # nanoGPT's slow path, with its weights and a key padding mask: all but cross-only
        (nanogpt_manual_target, CROSS_ONLY | NEED_GROUPS, 10),
        # an encoder's attention: never causal, separate q/k/v projections
        (encoder_target, CROSS_ONLY | NEED_CAUSAL | NEED_GROUPS, 7),
    ],
    ids=["nanogpt", "nanogpt-manual", "encoder"],
)
def test_self_attention_modules_run_every_property_they_can(
    factory: Callable[[], Target], lacks: set[str], n_run: int, dtype: torch.dtype
) -> None:
    results = run_all(factory(), dtype)
    assert not failures(results)
    assert ran(results) == set(results) - lacks and len(ran(results)) == n_run
    reasons = {
        "self-attention only": CROSS_ONLY,
        "no weights": NEED_WEIGHTS,
        "no per-head weights": NEED_WEIGHTS | CROSS_ONLY,
        "no key padding": NEED_PADDING,
        "never causal": NEED_CAUSAL,
        "no grouped key/value heads": NEED_GROUPS,
    }
    for pid in lacks:
        reason = results[pid].reason
        assert results[pid].outcome == "not_applicable", pid
        assert any(k in reason and pid in ids for k, ids in reasons.items()), (pid, reason)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mha_inputs": "both"}, "mha_inputs='both'; expected one of ['cross', 'self']"),
        ({"mha_causal": "sometimes"}, "mha_causal='sometimes'; expected one of"),
        ({"mha_key_padding": "yes"}, "mha_key_padding='yes'; expected True or False"),
        ({"mha_causal": "always"}, "mha_causal='always' needs mha_inputs='self'"),
    ],
)
def test_a_wrong_mha_form_is_refused_when_declared(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        dataclasses.replace(load_target("reference-math"), **kwargs)  # type: ignore[arg-type]
    t = load_target("reference-math")
    with pytest.raises(ValueError, match="the target offers none"):
        Target(name="x", description="x", attention=t.attention, mha_inputs="self")


def test_the_self_attention_adapter_names_what_is_wrong() -> None:
    spec = MHASpec(8, 2, torch.float32, CPU, 0)
    cases: list[tuple[dict[str, object], type[Exception], str]] = [
        (
            {"qkv": "attn"},
            ValueError,
            "projections['qkv']: CausalSelfAttention has no submodule or parameter 'attn'",
        ),
        ({"out": "c_attn"}, ValueError, "projections['o']: 'c_attn' has weight of shape (24, 8)"),
        ({"qkv": ("c_proj", "c_proj")}, ValueError, "expected one path or three"),
        ({"split": "qqv"}, ValueError, "split: 'qqv', expected an order of"),
        ({"causal": "argument"}, ValueError, "causal: 'argument', expected 'always' or"),
    ]
    for kwargs, error, message in cases:
        with pytest.raises(error, match=re.escape(message)):
            options: dict[str, object] = {"causal": "always", **kwargs}
            target = self_attention_target("t", CausalSelfAttention, **options)  # type: ignore[arg-type]
            assert target.mha is not None
            target.mha(spec)


def test_fused_projections_map_to_the_notes_columns() -> None:
    """c_attn's rows d..2d are k (split "qkv"); W_K = those rows transposed, so x W_K is
    what the module computes; split "kqv" reads them as q."""
    spec = MHASpec(8, 2, torch.float64, CPU, 3)
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    for split in ("qkv", "kqv"):
        t = self_attention_target("t", CausalSelfAttention, causal="always", split=split)
        assert t.mha is not None
        m = t.mha(spec)
        p = m.projections()
        assert p is not None
        module = m.module  # type: ignore[attr-defined]
        k = module.c_attn(x).split(8, dim=-1)[1]
        W, b = (p.W_Q, p.b_Q) if split == "kqv" else (p.W_K, p.b_K)
        assert b is not None and torch.allclose(x @ W + b, k)


# ---- honest declarations pass -------------------------------------------------------


class NaNRows(broken_mha.Steps):
    """softmax over a row of -inf: NaN where no key is visible."""

    def softmax(self, scores: Tensor, mask: Tensor | None) -> Tensor:
        if mask is not None:
            scores = scores.masked_fill(~mask, -math.inf)
        low = scores.dtype in (torch.float16, torch.bfloat16)
        return torch.softmax(scores, -1, dtype=torch.float32 if low else None).to(scores.dtype)


class UniformRows(broken_mha.Steps):
    """A row with no visible key spreads its weight over every key (finite, not zero)."""

    def softmax(self, scores: Tensor, mask: Tensor | None) -> Tensor:
        w = super().softmax(scores, mask)
        empty = w.sum(-1, keepdim=True) == 0
        return torch.where(empty, torch.full_like(w, 1.0 / w.shape[-1]), w)


class TopLeft(broken_mha.Steps):
    def mask(self, key_padding: Tensor | None, causal: bool, q: Tensor, k: Tensor) -> Tensor | None:
        c = R.causal_mask(q.shape[-2], k.shape[-2], alignment="top_left", device=q.device)
        pad = R.padding_mask(key_padding) if key_padding is not None else None
        return R.combine_masks(pad, c if causal else None)


class SquareCausalOnly(broken_mha.Steps):
    def mask(self, key_padding: Tensor | None, causal: bool, q: Tensor, k: Tensor) -> Tensor | None:
        if causal and q.shape[-2] != k.shape[-2]:
            raise Unsupported("causal attention needs equal lengths here")
        return super().mask(key_padding, causal, q, k)


def _declared(name: str, cls: type[broken_mha.Steps], **conventions: object) -> Target:
    explained = dict.fromkeys(conventions, "declared so, honestly")
    return Target(
        name=name,
        description=name,
        conventions=Conventions(explanations=explained, **conventions),  # type: ignore[arg-type]
        mha=cls,
    )


HONEST = {
    "nan-rows": lambda: _declared("nan-rows", NaNRows, fully_masked_row="nan"),
    "finite-rows": lambda: _declared("finite-rows", UniformRows, fully_masked_row="finite"),
    "unspecified-rows": lambda: _declared(
        "unspecified-rows", UniformRows, fully_masked_row="unspecified"
    ),
    "top-left": lambda: _declared("top-left", TopLeft, causal_alignment="top_left"),
    "square-causal-only": lambda: _declared(
        "square-causal-only", SquareCausalOnly, causal_alignment=None
    ),
    "reference-as-self-attention": lambda: dataclasses.replace(
        load_target("reference-math"), mha_inputs="self"
    ),
    "reference-never-causal": lambda: dataclasses.replace(
        load_target("reference-math"), mha_causal="never"
    ),
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("name", sorted(HONEST))
def test_an_honest_declaration_passes_every_multihead_property(
    name: str, dtype: torch.dtype
) -> None:
    results = run_all(HONEST[name](), dtype)
    assert not failures(results), failures(results)
    alignment = results["multihead.causal_alignment_as_declared"]
    if name == "square-causal-only":
        assert "declares no causal alignment for unequal lengths" in alignment.reason
    elif name == "top-left":
        assert alignment.outcome == "convention"
    if name in ("nan-rows", "finite-rows"):  # these rows were met, and checked
        assert results["multihead.padding_and_causal_combine"].outcome == "convention"


def test_the_reference_as_self_attention_runs_all_but_the_cross_only_properties() -> None:
    results = run_all(HONEST["reference-as-self-attention"]())
    assert ran(results) == set(results) - CROSS_ONLY


@pytest.mark.parametrize(
    ("factory", "pid"),
    [
        ("top_left_declared_bottom_right", "multihead.causal_alignment_as_declared"),
        ("padding_dropped_when_causal", "multihead.padding_and_causal_combine"),
        ("no_weights_when_causal", "multihead.causal_weights_hide_future_keys"),
    ],
)
def test_the_gap_was_real_only_the_new_property_catches_its_twin(factory: str, pid: str) -> None:
    results = run_all(getattr(broken_mha, factory)())
    assert set(failures(results)) == {pid}
