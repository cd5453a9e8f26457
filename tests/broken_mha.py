"""Broken multi-head attention targets (see broken_targets.py for the pattern): each is the
reference module's forward written out step by step (`Steps`) with ONE step wrong, or
nanoGPT's CausalSelfAttention (tests/self_attention_modules.py) with one line wrong.

MUTANTS maps each factory name to the multihead properties that must catch it."""

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor
from transformer_spec.properties import Target
from transformer_spec.properties.targets.adapters.self_attention import self_attention_target
from transformer_spec.properties.targets.builtin import ReferenceMHA
from transformer_spec.properties.targets.levels import MHASpec

from transformer_spec import reference as R

from .self_attention_modules import CausalSelfAttention


class Steps(ReferenceMHA):
    """The reference module (math path, its own W_Q, W_K, W_V, W_O), one overridable method
    per step of the formula. Unchanged, it passes every multihead property."""

    def __init__(self, spec: MHASpec) -> None:
        super().__init__(spec, "math")

    def split(self, x: Tensor) -> Tensor:
        return self.module.split_heads(x)

    def merge(self, z: Tensor) -> Tensor:
        return self.module.merge_heads(z)

    def queries(self, x_query: Tensor) -> Tensor:
        return self.split(self.module.W_Q(x_query))

    def keys_values(self, x_query: Tensor, x_kv: Tensor) -> tuple[Tensor, Tensor]:
        m = self.module  # grouped key/value heads, when the spec asks, shared per group
        return m.share(self.split(m.W_K(x_kv))), m.share(self.split(m.W_V(x_kv)))

    def scores(self, q: Tensor, k: Tensor) -> Tensor:
        return R.attention_scores(q, k)

    def mask(self, key_padding: Tensor | None, causal: bool, q: Tensor, k: Tensor) -> Tensor | None:
        c = R.causal_mask(q.shape[-2], k.shape[-2], device=q.device) if causal else None
        pad = R.padding_mask(key_padding) if key_padding is not None else None
        return R.combine_masks(pad, c)

    def softmax(self, scores: Tensor, mask: Tensor | None) -> Tensor:
        if mask is not None:
            scores = scores.masked_fill(~mask, -math.inf)
        low = scores.dtype in (torch.float16, torch.bfloat16)  # float32 softmax, as the reference
        w = torch.softmax(scores, -1, dtype=torch.float32 if low else scores.dtype)
        return w.nan_to_num(0.0).to(scores.dtype)  # a row with no visible key: zeros

    def output(self, z: Tensor) -> Tensor:
        out: Tensor = self.module.W_O(self.merge(z))
        return out

    def returned_weights(self, w: Tensor) -> Tensor:
        return w

    @torch.no_grad()
    def __call__(
        self, x_query: Tensor, x_kv: Tensor, *, key_padding: Tensor | None, causal: bool
    ) -> tuple[Tensor, Tensor | None]:
        q = self.queries(x_query)
        k, v = self.keys_values(x_query, x_kv)
        w = self.softmax(self.scores(q, k), self.mask(key_padding, causal, q, k))
        return self.output(w @ v), self.returned_weights(w)


def _target(name: str, cls: Callable[[MHASpec], Steps]) -> Target:
    return Target(name=name, description=name.replace("-", " "), mha=cls)


def _roll_positions(x: Tensor) -> Tensor:
    """Mixes each position with the previous one (a token shift): no longer row-wise."""
    return x + 0.5 * x.roll(1, dims=1)


def steps() -> Target:
    """The unbroken step-by-step module (the control: every property passes on it)."""
    return _target("steps", Steps)


def view_without_transpose() -> Target:
    class Bug(Steps):
        def split(self, x: Tensor) -> Tensor:
            b, n, _ = x.shape
            return x.view(b, self.module.n_heads, n, self.module.d_k)

    return _target("view-without-transpose", Bug)


def heads_concat_reversed() -> Target:
    class Bug(Steps):
        def merge(self, z: Tensor) -> Tensor:
            return self.module.merge_heads(z.flip(1))

    return _target("heads-concat-reversed", Bug)


def no_W_O() -> Target:
    class Bug(Steps):
        def output(self, z: Tensor) -> Tensor:
            return self.merge(z)

    return _target("no-W_O", Bug)


def scale_sqrt_d_model() -> Target:
    class Bug(Steps):
        def scores(self, q: Tensor, k: Tensor) -> Tensor:
            return R.attention_scores(q, k, scale=1 / math.sqrt(self.module.d_model))

    return _target("scale-sqrt-d_model", Bug)


def causal_ignored() -> Target:
    class Bug(Steps):
        def mask(
            self, key_padding: Tensor | None, causal: bool, q: Tensor, k: Tensor
        ) -> Tensor | None:
            return super().mask(key_padding, False, q, k)

    return _target("causal-ignored", Bug)


def key_padding_ignored() -> Target:
    class Bug(Steps):
        def mask(
            self, key_padding: Tensor | None, causal: bool, q: Tensor, k: Tensor
        ) -> Tensor | None:
            return super().mask(None, causal, q, k)

    return _target("key-padding-ignored", Bug)


def averaged_weights_declared_per_head() -> Target:
    class Bug(Steps):
        def returned_weights(self, w: Tensor) -> Tensor:
            return w.mean(dim=1)

    return _target("averaged-weights-declared-per-head", Bug)


def weights_not_normalised() -> Target:
    class Bug(Steps):
        def returned_weights(self, w: Tensor) -> Tensor:
            return w * 1.25

    return _target("weights-not-normalised", Bug)


def cross_kv_from_query() -> Target:
    """Cross-attention that takes keys and values from x_query (self-attention by mistake)."""

    class Bug(Steps):
        def keys_values(self, x_query: Tensor, x_kv: Tensor) -> tuple[Tensor, Tensor]:
            return super().keys_values(x_query, x_query)

    return _target("cross-kv-from-query", Bug)


def query_and_kv_swapped() -> Target:
    """Queries from x_kv, keys and values from x_query (arguments swapped; padding dropped,
    since it no longer fits the keys)."""

    class Bug(Steps):
        @torch.no_grad()
        def __call__(
            self, x_query: Tensor, x_kv: Tensor, *, key_padding: Tensor | None, causal: bool
        ) -> tuple[Tensor, Tensor | None]:
            return super().__call__(x_kv, x_query, key_padding=None, causal=causal)

    return _target("query-and-kv-swapped", Bug)


def mixes_batch() -> Target:
    class Bug(Steps):
        def output(self, z: Tensor) -> Tensor:
            out = super().output(z)
            return out + 0.1 * out.roll(1, dims=0)

    return _target("mixes-batch", Bug)


def queries_mix_positions() -> Target:
    class Bug(Steps):
        def queries(self, x_query: Tensor) -> Tensor:
            return super().queries(_roll_positions(x_query))

    return _target("queries-mix-positions", Bug)


def keys_mix_positions() -> Target:
    class Bug(Steps):
        def keys_values(self, x_query: Tensor, x_kv: Tensor) -> tuple[Tensor, Tensor]:
            k = self.split(self.module.W_K(_roll_positions(x_kv)))
            return k, self.split(self.module.W_V(x_kv))

    return _target("keys-mix-positions", Bug)


def keys_from_W_V() -> Target:
    class Bug(Steps):
        def keys_values(self, x_query: Tensor, x_kv: Tensor) -> tuple[Tensor, Tensor]:
            v = self.split(self.module.W_V(x_kv))
            return v, v

    return _target("keys-from-W_V", Bug)


def heads_talk() -> Target:
    """Each head's scores borrow half of the previous head's (heads no longer independent)."""

    class Bug(Steps):
        def scores(self, q: Tensor, k: Tensor) -> Tensor:
            s = super().scores(q, k)
            return s + 0.5 * s.roll(1, dims=1)

    return _target("heads-talk", Bug)


def fully_padded_gives_nan() -> Target:
    """softmax over a row of -inf: NaN for an item whose keys are all padded, where the
    declared policy (the default) is zeros."""

    class Bug(Steps):
        def softmax(self, scores: Tensor, mask: Tensor | None) -> Tensor:
            if mask is not None:
                scores = scores.masked_fill(~mask, -math.inf)
            return torch.softmax(scores.float(), -1).to(scores.dtype)

    return _target("fully-padded-gives-nan", Bug)


def top_left_declared_bottom_right() -> Target:
    """Causal attention aligned top-left (query i sees keys 0..i, as SDPA's is_causal) in a
    target that declares bottom-right (the default): equal lengths cannot tell them apart."""

    class Bug(Steps):
        def mask(
            self, key_padding: Tensor | None, causal: bool, q: Tensor, k: Tensor
        ) -> Tensor | None:
            q_len, k_len = q.shape[-2], k.shape[-2]
            c = R.causal_mask(q_len, k_len, alignment="top_left", device=q.device)
            pad = R.padding_mask(key_padding) if key_padding is not None else None
            return R.combine_masks(pad, c if causal else None)

    return _target("top-left-declared-bottom-right", Bug)


def padding_dropped_when_causal() -> Target:
    """The causal mask replaces the key padding mask instead of combining with it."""

    class Bug(Steps):
        def mask(
            self, key_padding: Tensor | None, causal: bool, q: Tensor, k: Tensor
        ) -> Tensor | None:
            return super().mask(None if causal else key_padding, causal, q, k)

    return _target("padding-dropped-when-causal", Bug)


def no_weights_when_causal() -> Target:
    """Declares per-head weights, returns None for them on causal calls (a fused causal
    path that cannot give weights)."""

    class Bug(Steps):
        @torch.no_grad()
        def __call__(
            self, x_query: Tensor, x_kv: Tensor, *, key_padding: Tensor | None, causal: bool
        ) -> tuple[Tensor, Tensor | None]:
            out, w = super().__call__(x_query, x_kv, key_padding=key_padding, causal=causal)
            return out, None if causal else w

    return _target("no-weights-when-causal", Bug)


def nanogpt_q_k_swapped() -> Target:
    """nanoGPT's CausalSelfAttention reading c_attn's thirds as k, q, v (the comment in
    nanoGPT says "key, query, value"; the split is q, k, v)."""

    class Bug(CausalSelfAttention):
        def qkv(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
            q, k, v = super().qkv(x)
            return k, q, v

    return self_attention_target("nanogpt-q-k-swapped", Bug, causal="always")


def nanogpt_view_without_transpose() -> Target:
    """nanoGPT's CausalSelfAttention splitting heads with view(B, nh, T, hs), no transpose."""

    class Bug(CausalSelfAttention):
        def heads(self, t: Tensor) -> Tensor:
            B, T, C = t.size()
            return t.view(B, self.n_head, T, C // self.n_head)

        def forward(self, x: Tensor) -> Tensor:
            B, T, C = x.size()
            y = F.scaled_dot_product_attention(*self.qkv(x), is_causal=True)
            out: Tensor = self.c_proj(y.reshape(B, T, C))  # the inverse view, no transpose
            return out

    return self_attention_target("nanogpt-view-without-transpose", Bug, causal="always")


FORMULA = "multihead.equals_concat_of_heads_then_W_O"
WEIGHTS = "multihead.weights_from_W_Q_W_K_only"

# factory -> properties that must fail on it
MUTANTS: dict[str, tuple[str, ...]] = {
    "view_without_transpose": (FORMULA, WEIGHTS),
    "heads_concat_reversed": (FORMULA,),
    "no_W_O": (FORMULA,),
    "scale_sqrt_d_model": (FORMULA, WEIGHTS),
    "causal_ignored": ("multihead.causal_no_future_leak",),
    "key_padding_ignored": ("multihead.padded_keys_have_no_effect",),
    "fully_padded_gives_nan": (
        "multihead.fully_padded_item_follows_policy",
        "multihead.causal_alignment_as_declared",
        "multihead.padding_and_causal_combine",
    ),
    "averaged_weights_declared_per_head": ("multihead.weights_are_distributions_per_head", WEIGHTS),
    "weights_not_normalised": ("multihead.weights_are_distributions_per_head", WEIGHTS),
    "cross_kv_from_query": (
        FORMULA,
        "multihead.output_has_query_shape",
        "multihead.output_row_depends_only_on_its_query_row",
    ),
    "query_and_kv_swapped": (FORMULA, "multihead.output_has_query_shape"),
    "mixes_batch": ("multihead.batch_items_independent",),
    "queries_mix_positions": (FORMULA, "multihead.output_row_depends_only_on_its_query_row"),
    "keys_mix_positions": (FORMULA, "multihead.key_value_rows_are_a_set"),
    "keys_from_W_V": (FORMULA, WEIGHTS),
    "heads_talk": (FORMULA, WEIGHTS, "multihead.one_heads_queries_leave_other_heads_unchanged"),
    "top_left_declared_bottom_right": ("multihead.causal_alignment_as_declared",),
    "padding_dropped_when_causal": ("multihead.padding_and_causal_combine",),
    "no_weights_when_causal": ("multihead.causal_weights_hide_future_keys",),
    "nanogpt_q_k_swapped": (FORMULA,),
    "nanogpt_view_without_transpose": (FORMULA,),
}
