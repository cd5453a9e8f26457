"""One encoder or decoder layer on its own: the residual path, the decoder's built-in causal
mask, padding, and batch independence (spec NORM-RESIDUAL, DEC-CAUSAL-BUILTIN, MASK-*).

Layers are tiny (d_model 8 or 16, 1, 2 or 4 heads, d_ff 2 * d_model) and built per example
from a drawn seed and norm placement, so a failure shrinks to a small layer and a short
sequence. Inputs are drawn with mean and scale away from 0 and 1, so that x and
LayerNorm(x) differ visibly (a post-LN layer that returns x, or a pre-LN one that
returns LayerNorm(x), is caught).
"""

from dataclasses import dataclass

import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import Tensor
from transformer_spec.properties.checks.reference_math import layer_norm64
from transformer_spec.properties.harness.compare import check_close, max_abs, relative_bound
from transformer_spec.properties.harness.registry import Check, Context, prop
from transformer_spec.properties.targets.protocols import (
    Layer,
    LayerKind,
    LayerSpec,
    NormPlacement,
    to_polarity,
)

_SUBLAYERS: dict[LayerKind, int] = {"encoder": 2, "decoder": 3, "decoder_only": 2}
_LN_EPS = 1e-5  # assumed LayerNorm epsilon; any eps in [0, 1e-5] is within the bound


@dataclass(frozen=True)
class LayerCase:
    kind: LayerKind
    norm: NormPlacement
    d_model: int
    n_heads: int
    batch: int
    length: int
    memory_length: int
    seed: int

    def build(self, ctx: Context) -> Layer:
        factory = ctx.target.layers
        assert factory is not None  # guaranteed by needs=("layers",)
        spec = LayerSpec(
            kind=self.kind,
            norm=self.norm,
            d_model=self.d_model,
            n_heads=self.n_heads,
            d_ff=2 * self.d_model,
            dtype=ctx.dtype,
            device=ctx.device,
            seed=self.seed,
        )
        return factory(spec)

    def inputs(self, ctx: Context) -> tuple[Tensor, Tensor | None]:
        """x (batch, length, d_model) with per-row mean in [-2, 2] and std in [0.5, 3]; the
        memory of a decoder layer with cross-attention, else None."""
        g = torch.Generator().manual_seed(self.seed)
        shape = (self.batch, self.length, self.d_model)
        mean = torch.rand(*shape[:2], 1, generator=g, dtype=torch.float64) * 4 - 2
        std = torch.rand(*shape[:2], 1, generator=g, dtype=torch.float64) * 2.5 + 0.5
        x = torch.randn(shape, generator=g, dtype=torch.float64) * std + mean
        memory = None
        if self.kind == "decoder":
            m_shape = (self.batch, self.memory_length, self.d_model)
            memory = torch.randn(m_shape, generator=g, dtype=torch.float64)
            memory = memory.to(ctx.device, ctx.dtype)
        return x.to(ctx.device, ctx.dtype), memory


def layer_cases(ctx: Context, kinds: tuple[LayerKind, ...]) -> st.SearchStrategy[LayerCase]:
    offered = [k for k in kinds if k in ctx.target.layer_kinds]

    @st.composite
    def build(draw: st.DrawFn) -> LayerCase:
        d_model = draw(st.sampled_from((8, 16)))
        return LayerCase(
            kind=draw(st.sampled_from(offered)),
            norm=draw(st.sampled_from(ctx.target.layer_norms)),
            d_model=d_model,
            n_heads=draw(st.sampled_from((1, 2, 4))),
            batch=draw(st.integers(1, 3)),
            length=draw(st.integers(2, 7)),
            memory_length=draw(st.integers(1, 7)),
            seed=draw(st.integers(0, 2**16)),
        )

    return build()


def _call(
    ctx: Context,
    layer: Layer,
    x: Tensor,
    memory: Tensor | None,
    keep: Tensor | None = None,
    memory_keep: Tensor | None = None,
) -> Tensor:
    """Run the layer with 'is a real token' flags converted to the declared polarity; check
    the output's shape."""
    polarity = ctx.target.conventions.mask_polarity
    out = layer(
        x,
        memory,
        key_padding=to_polarity(keep, polarity),
        memory_padding=to_polarity(memory_keep, polarity),
    )
    if not isinstance(out, Tensor) or out.shape != x.shape:
        got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise AssertionError(f"layer returned {got}, expected {tuple(x.shape)}")
    return out


def _layer_norm64(ctx: Context, x: Tensor, times: int) -> Tensor:
    """LayerNorm (gain 1, bias 0, the declared variant) applied `times` times, in float64."""
    y = x.double().cpu()
    for _ in range(times):
        y = layer_norm64(y, ctx.target.conventions, _LN_EPS)
    return y


@prop(
    "layers.residual_path",
    clauses=("NORM-RESIDUAL", "NORM-POST-LN", "NORM-PRE-LN"),
    needs=("layers",),
    conventions=("layer_norm_variance", "layer_norm_eps"),
)
def residual_path(ctx: Context) -> Check:
    """With every sublayer's output projection zeroed, a layer returns its input x (pre-LN)
    or LayerNorm(x) after each sublayer (post-LN): the residual path is there.

    Bound: a few ulps of the output, plus what an eps anywhere in [0, 1e-5] changes
    (rows have std >= 0.5, so at most 1e-5 / (2 * 0.25) relative per LayerNorm)."""

    @given(layer_cases(ctx, ("encoder", "decoder", "decoder_only")))
    def check(case: LayerCase) -> None:
        layer = case.build(ctx)
        layer.zero_sublayer_outputs()
        x, memory = case.inputs(ctx)
        got = _call(ctx, layer, x, memory)
        times = _SUBLAYERS[case.kind] if case.norm == "post" else 0
        want = _layer_norm64(ctx, x, times)
        eps = float(torch.finfo(ctx.precision).eps)
        bound = (8 * eps + times * _LN_EPS / 0.5) * max(1.0, max_abs(want))
        what = f"{case.norm}-LN {case.kind} layer with zeroed sublayers vs " + (
            f"LayerNorm applied {times} times to x" if times else "x"
        )
        check_close(got.cpu(), want, bound, what, x)

    return check


@prop(
    "layers.decoder_causal",
    clauses=("DEC-CAUSAL-BUILTIN", "MASK-CAUSAL-NO-LEAK"),
    needs=("layers.decoder",),
)
def decoder_causal(ctx: Context) -> Check:
    """A decoder layer's output at positions <= t is unchanged when the input after t
    changes (its self-attention is causal without being asked)."""

    @given(layer_cases(ctx, ("decoder", "decoder_only")), st.data())
    def check(case: LayerCase, data: st.DataObject) -> None:
        t = data.draw(st.integers(0, case.length - 2), label="t")
        layer = case.build(ctx)
        x, memory = case.inputs(ctx)
        later = x.clone()
        later[:, t + 1 :] = -3 * later[:, t + 1 :] + 1
        a, b = _call(ctx, layer, x, memory), _call(ctx, layer, later, memory)
        bound = relative_bound(ctx.tolerance.invariance, a, b)
        check_close(
            b[:, : t + 1],
            a[:, : t + 1],
            bound,
            f"{case.kind} layer outputs <= {t} after x[{t + 1}:]",
        )

    return check


def _keep(case: LayerCase, length: int, data: st.DataObject, label: str) -> Tensor:
    """Each item keeps n >= 1 positions: its first n (right padding) or its last n (left
    padding, where a decoder's causal mask alone would let every real query see the pads)."""
    kept = data.draw(
        st.lists(st.integers(1, length), min_size=case.batch, max_size=case.batch), label=label
    )
    left = data.draw(st.booleans(), label=f"{label}_left")
    n = torch.tensor(kept)[:, None]
    at = torch.arange(length)[None, :]
    return at >= length - n if left else at < n


@prop(
    "layers.padding_no_effect",
    clauses=("MASK-PAD-NO-EFFECT", "XATTN-KV-FROM-ENCODER"),
    needs=("layers",),
    conventions=("mask_polarity",),
)
def padding_no_effect(ctx: Context) -> Check:
    """Changing the content of padded positions (self-attention keys, or the memory of a
    decoder layer's cross-attention) leaves the outputs at real positions unchanged."""

    @given(layer_cases(ctx, ("encoder", "decoder", "decoder_only")), st.data())
    def check(case: LayerCase, data: st.DataObject) -> None:
        layer = case.build(ctx)
        x, memory = case.inputs(ctx)
        keep = _keep(case, case.length, data, "kept").to(ctx.device)
        mem_keep = _keep(case, case.memory_length, data, "memory_kept").to(ctx.device)
        x2, m2 = torch.where(keep[..., None], x, 5 * x.flip(-1) + 2), memory
        if memory is None:
            a = _call(ctx, layer, x, None, keep)
            b = _call(ctx, layer, x2, None, keep)
        else:
            a = _call(ctx, layer, x, memory, keep, mem_keep)
            m2 = torch.where(mem_keep[..., None], memory, -4 * memory + 1)
            b = _call(ctx, layer, x2, m2, keep, mem_keep)
        # Over the real positions: a left-padded decoder's leading pads may hold NaN.
        real = keep[..., None].expand_as(a)
        bound = relative_bound(ctx.tolerance.invariance, a[real], b[real])
        check_close(
            b[real],
            a[real],
            bound,
            f"{case.kind} layer outputs at real positions after padding changed",
        )

    return check


@prop("layers.batch_items_independent", clauses=("ARCH-BATCH-INDEPENDENT",), needs=("layers",))
def batch_items_independent(ctx: Context) -> Check:
    """Each batch item's layer output equals running it alone."""

    @given(layer_cases(ctx, ("encoder", "decoder", "decoder_only")))
    def check(case: LayerCase) -> None:
        layer = case.build(ctx)
        x, memory = case.inputs(ctx)
        full = _call(ctx, layer, x, memory)
        alone = _call(ctx, layer, x[:1], None if memory is None else memory[:1])
        bound = relative_bound(ctx.tolerance.invariance, full)
        check_close(alone, full[:1], bound, f"{case.kind} layer: first item alone vs in the batch")

    return check
