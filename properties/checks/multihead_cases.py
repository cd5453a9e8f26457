"""The cases of the multi-head properties (multihead, multihead_masking, beyond_model) and
how a case becomes a call of the target's module.

Calls follow the form the target declares (Target.mha_inputs, mha_causal, mha_key_padding):
- a cross-attention module ("cross") gets x_query and x_kv separate, lengths drawn
  independently, unless a property needs self-attention (one tensor in both roles);
- a self-attention module ("self", forward(x)) gets one tensor in both roles, always; a
  property that needs queries apart from keys (unequal lengths, queries moved alone) is not
  applicable to it;
- a module with no causal switch is called as it is: an always-causal module's expected
  values are the causal ones, and a property that needs a causal mask is not applicable to
  a never-causal module.
"""

from dataclasses import dataclass

import torch
from hypothesis import strategies as st
from torch import Tensor
from transformer_spec.properties.harness.registry import Context, NotApplicable
from transformer_spec.properties.harness.strategies import key_keep
from transformer_spec.properties.targets.protocols import MHA, MHASpec, Projections, to_polarity


@dataclass(frozen=True)
class MHACase:
    """Sizes of one multi-head attention call; weights and inputs come from `seed`."""

    batch: int
    n_heads: int
    d_k: int
    q_len: int
    k_len: int
    seed: int
    scale: float = 1.0  # std of the inputs; larger values sharpen the softmax

    @property
    def d_model(self) -> int:
        return self.n_heads * self.d_k

    def inputs(self, dtype: torch.dtype, device: torch.device) -> tuple[Tensor, Tensor]:
        """x_query (b, Lq, d_model) and x_kv (b, Lk, d_model), drawn in float64, rounded once."""
        g = torch.Generator().manual_seed(self.seed)
        shape = (self.batch, self.q_len, self.d_model)
        xq = torch.randn(*shape, generator=g, dtype=torch.float64) * self.scale
        shape = (self.batch, self.k_len, self.d_model)
        xkv = torch.randn(*shape, generator=g, dtype=torch.float64) * self.scale
        return xq.to(device=device, dtype=dtype), xkv.to(device=device, dtype=dtype)


def mha_cases(
    *,
    min_heads: int = 1,
    min_q_len: int = 1,
    min_k_len: int = 1,
    equal_lengths: bool = False,
    distinct_lengths: bool = False,
    max_len: int = 7,
    min_batch: int = 1,
) -> st.SearchStrategy[MHACase]:
    """Small modules: 1..4 heads (2 and more drawn most: a head-split bug needs h > 1),
    d_k 1..6, lengths up to 7, batch 1..3."""
    heads = [h for h in (2, 3, 4, 1) if h >= min_heads]

    @st.composite
    def build(draw: st.DrawFn) -> MHACase:
        q_len = draw(st.integers(min_q_len, max_len))
        if equal_lengths:
            k_len = q_len
        elif distinct_lengths:  # one draw, skipping q_len: shrinks without filtering
            k_len = draw(st.integers(min_k_len, max_len - 1))
            k_len += k_len >= q_len
        else:
            k_len = draw(st.integers(min_k_len, max_len))
        return MHACase(
            batch=draw(st.integers(min_batch, 3)),
            n_heads=draw(st.sampled_from(heads)),
            d_k=draw(st.integers(1, 6)),
            q_len=q_len,
            k_len=k_len,
            seed=draw(st.integers(0, 2**16)),
            scale=draw(st.sampled_from((1.0, 3.0))),
        )

    return build()


def cases(
    ctx: Context,
    *,
    min_heads: int = 1,
    min_q_len: int = 1,
    min_k_len: int = 1,
    equal_lengths: bool = False,
    min_batch: int = 1,
) -> st.SearchStrategy[MHACase]:
    """`mha_cases` for this target: equal lengths for a self-attention module."""
    if is_self(ctx):
        equal_lengths, min_q_len = True, max(min_q_len, min_k_len)
    return mha_cases(
        min_heads=min_heads,
        min_q_len=min_q_len,
        min_k_len=min_k_len,
        equal_lengths=equal_lengths,
        min_batch=min_batch,
    )


def is_self(ctx: Context) -> bool:
    """The module is self-attention only: x_query and x_kv are one tensor."""
    return ctx.target.mha_inputs == "self"


def default_causal(ctx: Context) -> bool:
    """The causal flag of a call that does not need one: True for an always-causal module."""
    return ctx.target.mha_causal == "always"


def inputs(ctx: Context, case: MHACase) -> tuple[Tensor, Tensor]:
    """x_query and x_kv; for a self-attention module one tensor twice (the same object)."""
    xq, xkv = case.inputs(ctx.dtype, ctx.device)
    if is_self(ctx):
        assert case.q_len == case.k_len, "a self-attention case has equal lengths"
        return xq, xq
    return xq, xkv


def build(ctx: Context, case: MHACase) -> MHA:
    factory = ctx.target.mha
    assert factory is not None
    return factory(MHASpec(case.d_model, case.n_heads, ctx.dtype, ctx.device, case.seed))


def require_projections(ctx: Context) -> None:
    """Raise NotApplicable now, while building the property, if the target hides W_Q etc."""
    if not has_projections(ctx):
        raise NotApplicable("target exposes no projection matrices")


def has_projections(ctx: Context) -> bool:
    probe = build(ctx, MHACase(batch=1, n_heads=2, d_k=2, q_len=1, k_len=1, seed=0))
    return probe.projections() is not None


def projections(module: MHA) -> Projections:
    p = module.projections()
    if p is None:
        raise AssertionError("projections() returned None for this module but not for another")
    return p


def run(
    ctx: Context,
    case: MHACase,
    module: MHA,
    x_query: Tensor,
    x_kv: Tensor,
    keep: Tensor | None = None,
    *,
    causal: bool = False,
) -> tuple[Tensor, Tensor | None]:
    """Call the module with a 'may attend' key_padding (b, Lk) converted to the declared
    polarity; check the output has the query's shape and the weights the declared one."""
    t = ctx.target
    # the harness's own invariants: calls in the form the target declared
    assert t.mha_inputs == "cross" or x_query is x_kv, "self-attention: one tensor in both roles"
    assert causal if t.mha_causal == "always" else t.mha_causal == "argument" or not causal
    assert t.mha_key_padding or keep is None, "the module takes no key padding"
    key_padding = to_polarity(keep, t.conventions.mask_polarity)
    out, weights = module(x_query, x_kv, key_padding=key_padding, causal=causal)
    (b, q_len, d_model), k_len = x_query.shape, x_kv.shape[1]
    if tuple(out.shape) != (b, q_len, d_model):
        raise AssertionError(
            f"output has shape {tuple(out.shape)}, expected (batch, L_query, d_model) = "
            f"{(b, q_len, d_model)} (L_key = {k_len})"
        )
    kind = t.conventions.weights
    if weights is not None and kind != "none":
        want = (b, case.n_heads, q_len, k_len) if kind == "per_head" else (b, q_len, k_len)
        if tuple(weights.shape) != want:
            raise AssertionError(
                f"weights have shape {tuple(weights.shape)}, expected {want} ({kind}, declared)"
            )
    return out, weights


def need_weights(weights: Tensor | None, when: str = "") -> Tensor:
    if weights is None:
        raise AssertionError(f"the target declares attention weights but returned None{when}")
    return weights


def _keep(ctx: Context, case: MHACase, data: st.DataObject, min_kept: int = 1) -> Tensor | None:
    """Key padding flags (b, Lk), True = real key, for a module that takes them; else None."""
    if not ctx.target.mha_key_padding:
        return None
    keep = data.draw(key_keep(case.batch, case.k_len, min_kept=min_kept), label="keep")
    return torch.tensor(keep, dtype=torch.bool, device=ctx.device).reshape(case.batch, case.k_len)


def _real_rows(ctx: Context, keep: Tensor | None, shape: tuple[int, int]) -> Tensor | None:
    """The query rows to check: in self-attention, the real (unpadded) positions, since a
    padded position's own output is no one's concern; in cross-attention, every row."""
    if keep is None or not is_self(ctx):
        return None
    assert tuple(keep.shape) == shape
    return keep


def _rows_only(t: Tensor, rows: Tensor | None) -> Tensor:
    return t if rows is None else t.masked_fill(~rows[..., None], 0.0)
