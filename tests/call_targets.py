"""Targets plugged in through `Call` and the constructors of every level: torch.nn's modules
in their own call forms, the broken multi-head and component twins as the nn.Modules a user
would write, and approximate (linear) attention, correct and with padded keys in its
normaliser."""

from collections.abc import Callable

import torch
from torch import Tensor, nn
from transformer_spec.properties import (
    Call,
    Conventions,
    Target,
    components_target,
    layer_target,
    multihead_target,
)
from transformer_spec.properties.checks.components import D_FF, MAX_LEN, VOCAB
from transformer_spec.properties.targets.builtin import ReferenceComponents
from transformer_spec.properties.targets.levels import ComponentSpec, MHASpec

from . import broken_components, broken_mha

CPU = torch.device("cpu")
NN_CALL = Call(
    query=0,
    key=1,
    value=2,
    padding="key_padding_mask",
    padding_polarity="true_blocks",
    mask="attn_mask",
    mask_shape="q k",
    mask_polarity="true_blocks",
    causal="mask",
    weights=1,
    need_weights="need_weights",
    extra={"average_attn_weights": False},
)
NN_PROJECTIONS = {"qkv": "in_proj_weight", "o": "out_proj"}
NAN_ROW = Conventions(
    fully_masked_row="nan",
    explanations={"fully_masked_row": "nn.MultiheadAttention: NaN for all-padded keys"},
)


def nn_mha() -> Target:
    return multihead_target(
        "nn-mha-call",
        lambda d, h: nn.MultiheadAttention(d, h, batch_first=True),
        call=NN_CALL,
        projections=NN_PROJECTIONS,
        conventions=NAN_ROW,
    )


def nn_mha_seq_first_additive() -> Target:
    """Sequence first, float masks, weights averaged (nn's defaults)."""
    call = Call(
        query=0,
        key=1,
        value=2,
        padding="key_padding_mask",
        padding_form="additive",
        mask="attn_mask",
        mask_shape="q k",
        mask_form="additive",
        causal="mask",
        layout="l b d",
        weights=1,
        weights_shape="b q k",
        need_weights="need_weights",
    )
    return multihead_target(
        "nn-mha-call-seq-first",
        lambda d, h: nn.MultiheadAttention(d, h),
        call=call,
        projections=NN_PROJECTIONS,
        conventions=NAN_ROW,
    )


def _encoder(norm_first: bool) -> Callable[[int, int, int], nn.Module]:
    return lambda d, h, d_ff: nn.TransformerEncoderLayer(
        d, h, d_ff, batch_first=True, norm_first=norm_first
    )


_ZERO = ("self_attn.out_proj", "linear2")


def nn_encoder_layer() -> Target:
    call = Call(x=0, padding="src_key_padding_mask", padding_polarity="true_blocks")
    return layer_target("nn-encoder-layer", _encoder(False), kind="encoder", call=call, zero=_ZERO)


DECODER_CALL = Call(
    x=0,
    memory=1,
    padding="tgt_key_padding_mask",
    padding_polarity="true_blocks",
    memory_padding="memory_key_padding_mask",
    mask="tgt_mask",
    mask_shape="q k",
    mask_polarity="true_blocks",
    causal="mask",
)


def nn_decoder_layer() -> Target:
    return layer_target(
        "nn-decoder-layer",
        lambda d, h, d_ff: nn.TransformerDecoderLayer(d, h, d_ff, batch_first=True),
        kind="decoder",
        norm="post",
        call=DECODER_CALL,
        zero=("self_attn.out_proj", "multihead_attn.out_proj", "linear2"),
    )


def nn_components() -> Target:
    return components_target(
        "nn-components",
        embedding=nn.Embedding,
        norm=nn.LayerNorm,
        feed_forward=lambda d, d_ff: nn.Sequential(
            nn.Linear(d, d_ff), nn.ReLU(), nn.Linear(d_ff, d)
        ),
        unembed=lambda d, vocab: nn.Linear(d, vocab),
    )


# ---- the broken multi-head twins as modules ------------------------------------------------


class StepsModule(nn.Module):
    """A broken_mha twin (a `Steps` subclass) as a module: forward(query, key, value,
    key_padding_mask=None, causal=False) -> (out, weights per head), True = may attend,
    its W_Q, W_K, W_V, W_O the nn.Linear layers `inner.W_Q` ..."""

    def __init__(self, steps: Callable[[MHASpec], broken_mha.Steps], d: int, h: int) -> None:
        super().__init__()
        seed = int(torch.randint(0, 2**31 - 1, ()))  # drawn from the seed the harness set
        self.steps = steps(MHASpec(d, h, torch.float64, CPU, seed))
        self.inner = self.steps.module

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        key_padding_mask: Tensor | None = None,
        causal: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        return self.steps(query, key, key_padding=key_padding_mask, causal=causal)


STEPS_CALL = Call(query=0, key=1, value=2, padding="key_padding_mask", causal="causal", weights=1)
STEPS_PROJECTIONS = {"q": "inner.W_Q", "k": "inner.W_K", "v": "inner.W_V", "o": "inner.W_O"}


def mha_twin(name: str) -> Target:
    """broken_mha's twin `name` through multihead_target (the nanoGPT ones already are)."""
    twin = getattr(broken_mha, name)()
    if name.startswith("nanogpt_"):
        return twin  # type: ignore[no-any-return]
    steps = twin.mha
    return multihead_target(
        f"call-{name}",
        lambda d, h: StepsModule(steps, d, h),
        call=STEPS_CALL,
        projections=STEPS_PROJECTIONS,
    )


# ---- the broken component twins as modules -------------------------------------------------


class Part(nn.Module):
    """One method of a broken_components twin as a module's forward. The norm takes its gain
    and bias from this module's `weight` and `bias`, as nn.LayerNorm keeps them."""

    def __init__(self, comps: ReferenceComponents, method: str, d_model: int) -> None:
        super().__init__()
        self.comps, self.method = comps, method
        owner = {"embed": "embedding", "positional_table": "positions", "layer_norm": "norm"}
        owner |= {"feed_forward": "ffn", "unembed": "unembedding", "rms_norm": "rms"}
        owner |= {"gated_feed_forward": "gated"}
        self.part = getattr(comps, owner[method])  # registered: moved with .to(), found by path
        self.weight, self.bias = (
            nn.Parameter(torch.ones(d_model)),
            nn.Parameter(torch.zeros(d_model)),
        )

    def forward(self, x: Tensor) -> Tensor | None:
        if self.method == "positional_table":
            table = self.comps.positional_table(x.shape[1])
            return None if table is None else table.to(x.dtype)
        if self.method == "layer_norm":
            return self.comps.layer_norm_affine(x, self.weight, self.bias)
        return getattr(self.comps, self.method)(x)  # type: ignore[no-any-return]


def component_twin(name: str) -> Target:
    """broken_components' twin `name` through components_target, one Part per method; each
    part builds the twin at the width d_model its factory is given."""
    factory = getattr(broken_components, name)().components
    sample = factory(_spec(8))

    def part(method: str, width: Callable[[tuple[int, ...]], int]) -> Callable[..., nn.Module]:
        def build(*sizes: int) -> nn.Module:
            d_model = width(sizes)
            return Part(factory(_spec(d_model)), method, d_model)

        return build

    rms, gated = name.startswith("rmsnorm"), name.startswith("glu")
    twin = factory(_spec(8))

    def rotary(_: int) -> Callable[[Tensor, Tensor], Tensor]:
        return lambda x, positions: twin.rotary(x, positions)

    return components_target(
        f"call-{name}",
        embedding=part("embed", lambda s: s[1]),
        positional=part("positional_table", lambda s: s[1]),
        norm=part("rms_norm" if rms else "layer_norm", lambda s: s[0]),
        feed_forward=part("gated_feed_forward" if gated else "feed_forward", lambda s: s[0]),
        unembed=part("unembed", lambda s: s[0]),
        positional_layout=sample.positional_layout,
        embedding_scale=sample.embedding_scale,
        norm_kind="rms_norm" if rms else "layer_norm",
        norm_eps=sample.rms_norm_eps if rms else None,
        gated=("part.W_gate", "part.W_up", "part.W_down") if gated else None,
        rotary=rotary if name.startswith("rotary") else None,
    )


def _spec(d_model: int) -> ComponentSpec:
    return ComponentSpec(VOCAB, d_model, D_FF, MAX_LEN, torch.float64, CPU, 0)


# ---- approximate attention -----------------------------------------------------------------


class LinearAttention(nn.Module):
    """Linear attention (Katharopoulos et al. 2020): softmax(q k^T) replaced by
    phi(q) phi(k)^T with phi = elu + 1, normalised per query; causal by prefix sums.
    mask (b, k): True = a real key. `leak`: padded keys are dropped from the values' sum
    but left in the normaliser (the bug one public module ships)."""

    def __init__(self, d_model: int, n_heads: int, leak: bool = False) -> None:
        super().__init__()
        self.h, self.leak = n_heads, leak
        self.to_q, self.to_k, self.to_v, self.to_out = (nn.Linear(d_model, d_model) for _ in "qkvo")

    def _heads(self, t: Tensor) -> Tensor:
        b, n, d = t.shape
        return t.view(b, n, self.h, d // self.h).transpose(1, 2)

    def forward(
        self,
        x: Tensor,
        context: Tensor | None = None,
        mask: Tensor | None = None,
        causal: bool = False,
    ) -> Tensor:
        kv = x if context is None else context
        q = nn.functional.elu(self._heads(self.to_q(x))) + 1
        k = nn.functional.elu(self._heads(self.to_k(kv))) + 1
        v = self._heads(self.to_v(kv))
        k_num = k_den = k
        if mask is not None:
            keep = mask[:, None, :, None].to(k.dtype)
            k_num = k * keep
            k_den = k if self.leak else k_num
        if causal:
            state = torch.einsum("bhnd,bhne->bhnde", k_num, v).cumsum(2)
            num = torch.einsum("bhnd,bhnde->bhne", q, state)
            den = torch.einsum("bhnd,bhnd->bhn", q, k_den.cumsum(2))
        else:
            num = q @ (k_num.transpose(-2, -1) @ v)
            den = torch.einsum("bhnd,bhd->bhn", q, k_den.sum(2))
        z = num / den[..., None].clamp_min(torch.finfo(q.dtype).tiny)
        b, _, n, _ = z.shape
        return self.to_out(z.transpose(1, 2).reshape(b, n, -1))  # type: ignore[no-any-return]


APPROXIMATE = Conventions(
    exactness="approximate",
    causal_alignment=None,
    fully_masked_row="unspecified",
    explanations={
        "exactness": "linear attention: elu(x) + 1 features instead of the softmax",
        "causal_alignment": "causal by prefix sums over one sequence: equal lengths only",
        "fully_masked_row": "0 / 0 for a query with no visible key",
    },
)
LINEAR_CALL = Call(query=0, key="context", padding="mask", causal="causal")
LINEAR_PROJECTIONS = {"q": "to_q", "k": "to_k", "v": "to_v", "o": "to_out"}


def linear_attention() -> Target:
    return multihead_target(
        "linear-attention",
        LinearAttention,
        call=LINEAR_CALL,
        projections=LINEAR_PROJECTIONS,
        conventions=APPROXIMATE,
    )


def linear_attention_leaks_padding() -> Target:
    return multihead_target(
        "linear-attention-leaks-padding",
        lambda d, h: LinearAttention(d, h, leak=True),
        call=LINEAR_CALL,
        projections=LINEAR_PROJECTIONS,
        conventions=APPROXIMATE,
    )


class NoProjections:
    """A hand-written multi-head adapter without the optional projections() method."""

    def __init__(self, spec: MHASpec) -> None:
        self.inner = nn_mha().mha(spec)  # type: ignore[misc]

    def __call__(
        self, x_query: Tensor, x_kv: Tensor, *, key_padding: Tensor | None, causal: bool
    ) -> tuple[Tensor, Tensor | None]:
        return self.inner(x_query, x_kv, key_padding=key_padding, causal=causal)


def without_projections() -> Target:
    return Target(
        name="no-projections",
        description="a hand-written adapter with no projections()",
        conventions=NAN_ROW,
        mha=NoProjections,  # type: ignore[arg-type]  # no projections(): the point
    )
