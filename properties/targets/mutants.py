"""The mutant catalogue: seeded bugs in the reference, each a bug class that real
implementations have shipped (see ../shared/anchors/numerics.md in the project's notes).

A mutant is one textual change to one module of `transformer_spec.reference`. `applied(m)`
imports a fresh copy of the reference with that change (and of the built-in targets that
wrap it), without touching any file, and puts the original modules back afterwards. The
mutated reference is then checked like any other target (`transformer-spec mutants`).
"""

import contextlib
import importlib
import importlib.abc
import importlib.machinery
import sys
import types
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

_PACKAGE = "transformer_spec.reference"
_WRAPPERS = "transformer_spec.properties.targets.builtin"


@dataclass(frozen=True)
class Mutant:
    name: str  # kebab-case, stable: the kill matrix is keyed by it
    bug: str  # the bug in one line, as a user would describe it
    module: str  # the module of transformer_spec.reference that changes
    old: str  # text that occurs exactly once in that module
    new: str
    bf16_invisible: str = ""  # why bfloat16 cannot show this bug, if it cannot


def _m(name: str, bug: str, module: str, old: str, new: str, bf16_invisible: str = "") -> Mutant:
    return Mutant(name, bug, module, old, new, bf16_invisible)


CATALOGUE: tuple[Mutant, ...] = (
    # ---- attention: scale, softmax, masks
    _m(
        "scale-1/d_k",
        "scores scaled by 1/d_k instead of 1/sqrt(d_k)",
        "attention",
        "scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale",
        "scale = 1.0 / q.shape[-1] if scale is None else scale",
    ),
    _m(
        "scale-1/sqrt(d_model)",
        "scores scaled by 1/sqrt(d_model) (all heads' width) instead of 1/sqrt(d_k)",
        "attention",
        "scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale",
        "scale = 1.0 / math.sqrt(q.shape[-1] * q.shape[1]) if scale is None else scale",
    ),
    _m(
        "scale-missing",
        "scores not scaled at all",
        "attention",
        "return (q @ k.transpose(-2, -1)) * scale",
        "return q @ k.transpose(-2, -1)",
    ),
    _m(
        "softmax-over-queries",
        "softmax taken over the query axis instead of the key axis",
        "attention",
        "weights = torch.softmax(scores, dim=-1, dtype=acc)",
        "weights = torch.softmax(scores, dim=-2, dtype=acc)",
    ),
    _m(
        "keys-from-other-batch-item",
        "each batch item attends to the keys of another item (batch order reversed)",
        "attention",
        "return (q @ k.transpose(-2, -1)) * scale",
        "return (q @ k.flip(0).transpose(-2, -1)) * scale",
    ),
    _m(
        "key-position-bias",
        "a bias growing with the key's position is added to the scores (a relative-position "
        "bias left on where none is declared)",
        "attention",
        "return (q @ k.transpose(-2, -1)) * scale",
        "return (q @ k.transpose(-2, -1)) * scale + 0.5 * torch.arange(k.shape[-2], "
        "device=k.device, dtype=q.dtype)",
    ),
    _m(
        "softmax-in-bfloat16",
        "the softmax runs in bfloat16 for every dtype but float64 (a low-precision fast path "
        "taken too widely)",
        "attention",
        "acc = torch.float32 if q.dtype in _LOW_PRECISION else q.dtype",
        "acc = torch.bfloat16 if q.dtype != torch.float64 else q.dtype",
        bf16_invisible="in a bfloat16 run a bfloat16 softmax is what the plain same-dtype "
        "formula does, and the tolerance allows 4x that formula's error",
    ),
    _m(
        "mask-polarity-inverted",
        "boolean mask read as True = blocked where True = may attend is declared",
        "attention",
        'scores = scores.masked_fill(~mask, float("-inf"))',
        'scores = scores.masked_fill(mask, float("-inf"))',
    ),
    _m(
        "fully-masked-row-nan",
        "a query row with no visible key gives NaN where the policy says zeros",
        "attention",
        "        scores = scores.masked_fill(~row_open, 0.0)\n",
        "",
    ),
    _m(
        "causal-off-by-one",
        "causal mask lets each position see one position into the future",
        "masks",
        "return j <= i + shift",
        "return j <= i + shift + 1",
    ),
    _m(
        "causal-top-left",
        "top-left causal alignment where bottom-right is declared",
        "masks",
        'shift = k_len - q_len if alignment == "bottom_right" else 0',
        "shift = 0",
    ),
    _m(
        "causal-window-2",
        "the causal mask keeps only the token itself and the one before it (a sliding window "
        "where full causal attention is meant)",
        "masks",
        "    return j <= i + shift\n",
        "    return (j <= i + shift) & (j >= i + shift - 1)\n",
    ),
    # ---- multi-head attention
    _m(
        "head-split-without-transpose",
        "heads split by view(b, h, n, d_k) without the transpose",
        "multihead",
        "return x.view(b, n, width // self.d_k, self.d_k).transpose(1, 2)",
        "return x.view(b, width // self.d_k, n, self.d_k)",
    ),
    _m(
        "heads-concatenated-reversed",
        "heads concatenated in reverse order before W^O",
        "multihead",
        "return x.transpose(1, 2).reshape(b, n, self.d_model)",
        "return x.flip(1).transpose(1, 2).reshape(b, n, self.d_model)",
    ),
    _m(
        "W_O-missing",
        "the output projection W^O is never applied",
        "multihead",
        "return self.W_O(self.merge_heads(z))",
        "return self.merge_heads(z)",
    ),
    _m(
        "cross-kv-from-decoder",
        "cross-attention takes its keys and values from the decoder, not the encoder",
        "multihead",
        "x_kv = x_kv if x_kv is not None else x_query",
        "x_kv = x_query",
    ),
    _m(
        "cache-written-before-read",
        "the KV cache is read before the new key is appended: a step cannot see itself",
        "multihead",
        "k, v = torch.cat([cache.k, k], dim=-2), torch.cat([cache.v, v], dim=-2)",
        "k, v = cache.k, cache.v",
    ),
    # ---- layers, residuals, LayerNorm
    _m(
        "residual-missing-post-ln",
        "post-LN sublayer without its residual: LayerNorm(Sublayer(x))",
        "norm",
        "out = self.norm(x + self.drop(sublayer(x)))",
        "out = self.norm(self.drop(sublayer(x)))",
    ),
    _m(
        "residual-missing-pre-ln",
        "pre-LN sublayer without its residual: Sublayer(LayerNorm(x))",
        "norm",
        "out = x + self.drop(sublayer(self.norm(x)))",
        "out = self.drop(sublayer(self.norm(x)))",
    ),
    _m(
        "pre-post-ln-swapped",
        "pre-LN computed where post-LN is declared, and the reverse",
        "norm",
        'if self.placement == "pre":',
        'if self.placement == "post":',
    ),
    _m(
        "layernorm-over-sequence",
        "LayerNorm statistics taken over the sequence axis instead of the features",
        "norm",
        "mean = xs.mean(dim=-1, keepdim=True)\n        var = xs.var(dim=-1, keepdim=True, "
        "unbiased=False)",
        "mean = xs.mean(dim=-2, keepdim=True)\n        var = xs.var(dim=-2, keepdim=True, "
        "unbiased=False)",
    ),
    _m(
        "layernorm-batch-statistics",
        "LayerNorm statistics shared across the batch (BatchNorm-like)",
        "norm",
        "mean = xs.mean(dim=-1, keepdim=True)\n        var = xs.var(dim=-1, keepdim=True, "
        "unbiased=False)",
        "mean = xs.mean(dim=(0, -1), keepdim=True)\n        var = xs.var(dim=(0, -1), "
        "keepdim=True, unbiased=False)",
    ),
    _m(
        "layernorm-unbiased-variance",
        "LayerNorm with the unbiased (n - 1) variance",
        "norm",
        "unbiased=False",
        "unbiased=True",
    ),
    _m(
        "layernorm-eps-0.1",
        "LayerNorm epsilon 0.1 where 1e-5 is declared (BatchNorm's momentum in the eps field)",
        "norm",
        "torch.rsqrt(var + self.eps)",
        "torch.rsqrt(var + 0.1)",
    ),
    _m(
        "layernorm-bias-subtracted",
        "LayerNorm's bias subtracted instead of added (a fresh model, bias 0, looks correct)",
        "norm",
        "return normed * self.gain + self.bias",
        "return normed * self.gain - self.bias",
    ),
    _m(
        "dropout-active-in-eval",
        "residual dropout applied in eval mode too",
        "norm",
        "out = self.norm(x + self.drop(sublayer(x)))",
        "out = self.norm(x + nn.functional.dropout(sublayer(x), self.drop.p, training=True))",
    ),
    _m(
        "encoder-causal",
        "the encoder's self-attention is causal",
        "layers",
        "x = self.sublayers[0](x, lambda y: self.self_attn(y, mask=mask)[0])",
        "x = self.sublayers[0](x, lambda y: self.self_attn(y, mask=mask, causal=True)[0])",
    ),
    _m(
        "encoder-padding-ignored",
        "the encoder's self-attention ignores the padding mask",
        "layers",
        "x = self.sublayers[0](x, lambda y: self.self_attn(y, mask=mask)[0])",
        "x = self.sublayers[0](x, lambda y: self.self_attn(y)[0])",
    ),
    _m(
        "decoder-not-causal",
        "the decoder's self-attention has no causal mask",
        "layers",
        "y, mask=self_mask, causal=True, cache=self_cache, offset=offset",
        "y, mask=self_mask, causal=False, cache=self_cache, offset=offset",
    ),
    _m(
        "decoder-padding-ignored",
        "the decoder's self-attention ignores the padding mask (only the causal mask is applied)",
        "layers",
        "y, mask=self_mask, causal=True, cache=self_cache, offset=offset",
        "y, causal=True, cache=self_cache, offset=offset",
    ),
    _m(
        "ffn-activation-missing",
        "the FFN's non-linearity is missing: two linear maps collapse into one",
        "feedforward",
        "out: Tensor = self.W_2(self.act(self.W_1(x)))",
        "out: Tensor = self.W_2(self.W_1(x))",
    ),
    _m(
        "ffn-mixes-neighbours",
        "the feed-forward network mixes each position with the previous one",
        "feedforward",
        "out: Tensor = self.W_2(self.act(self.W_1(x)))",
        "out: Tensor = self.W_2(self.act(self.W_1(x + x.roll(1, dims=1))))",
    ),
    # ---- embeddings and positions
    _m(
        "sin-cos-swapped",
        "sinusoid channels swapped: cos on even, sin on odd",
        "positional",
        "pe[:, 0::2] = torch.sin(angle)",
        "pe[:, 0::2] = torch.cos(angle)",
    ),
    _m(
        "positions-off-by-one",
        "positions counted from 1 instead of 0",
        "positional",
        "pos = torch.arange(start, start + n_positions, dtype=torch.float64)[:, None]",
        "pos = torch.arange(start + 1, start + 1 + n_positions, dtype=torch.float64)[:, None]",
    ),
    _m(
        "frequency-base-1000",
        "sinusoid frequencies from base 1000 instead of 10000",
        "positional",
        "base: float = 10000.0",
        "base: float = 1000.0",
    ),
    _m(
        "positional-start-ignored",
        "the positional table ignores its start offset: every slice begins at position 0",
        "positional",
        "pos = torch.arange(start, start + n_positions, dtype=torch.float64)[:, None]",
        "pos = torch.arange(0, n_positions, dtype=torch.float64)[:, None]",
    ),
    _m(
        "positions-added-twice",
        "the positional encoding is added twice",
        "positional",
        "return x + self.table[offset : offset + seq].to(x.dtype)",
        "return x + 2 * self.table[offset : offset + seq].to(x.dtype)",
    ),
    _m(
        "embedding-mixes-neighbours",
        "each token's embedding is mixed with its left neighbour's (a convolution where a "
        "lookup is declared)",
        "embedding",
        "x = self.M[tokens]",
        "x = self.M[tokens] + 0.5 * self.M[tokens.roll(1, dims=-1)]",
    ),
    _m(
        "embedding-scale-dropped",
        "the declared sqrt(d_model) embedding scale is never applied",
        "embedding",
        "self.scale = math.sqrt(d_model) if scale else 1.0",
        "self.scale = 1.0",
    ),
    _m(
        "embedding-detached",
        "token embeddings detached before the layers: M learns only as the un-embedding",
        "embedding",
        "x = self.M[tokens]",
        "x = self.M.detach()[tokens]",
    ),
    _m(
        "pretrained-always-frozen",
        "a pretrained embedding is frozen even when fine-tuning is asked",
        "embedding",
        "self.M.requires_grad_(not freeze)",
        "self.M.requires_grad_(False)",
    ),
    # ---- whole model, decoding, training
    _m(
        "decoder-only-pad-mask-dropped",
        "a decoder-only model builds no padding mask from <PAD> tokens",
        "model",
        "self.embed(tokens, offset),\n            self_mask=padding_mask(keep),",
        "self.embed(tokens, offset),\n            self_mask=None,",
    ),
    _m(
        "cache-positions-not-advanced",
        "incremental decoding gives every new token the position of the first",
        "model",
        "offset = start + (cache.length if cache is not None else 0)",
        "offset = start",
    ),
    _m(
        "source-padding-ignored",
        "cross-attention ignores the source's padding mask",
        "model",
        "memory_mask=padding_mask(src_keep),",
        "memory_mask=None,",
    ),
    _m(
        "unembedding-mixes-positions",
        "the un-embedding reads each position mixed with the previous one",
        "model",
        "out: Tensor = self.W(x)",
        "out: Tensor = self.W(x + 0.5 * x.roll(1, dims=-2))",
    ),
    _m(
        "unembedding-input-in-bfloat16",
        "the un-embedding's input is rounded to bfloat16 (an autocast region drawn too wide)",
        "model",
        "out: Tensor = self.W(x)",
        "out: Tensor = self.W(x.bfloat16().to(x.dtype))",
        bf16_invisible="in a bfloat16 model the rounding is a no-op",
    ),
    _m(
        "softmax-over-batch",
        "next-token probabilities normalised over the batch instead of the vocabulary",
        "model",
        "return torch.softmax(logits, dim=-1, dtype=acc).to(logits.dtype)",
        "return torch.softmax(logits, dim=0, dtype=acc).to(logits.dtype)",
    ),
    _m(
        "greedy-argmin",
        "greedy decoding takes the least probable token",
        "generation",
        "return logits.argmax(dim=-1)",
        "return logits.argmin(dim=-1)",
    ),
    _m(
        "sampling-is-greedy",
        "sample=True still returns the most probable token",
        "generation",
        "    if not sample:\n        return logits.argmax(dim=-1)",
        "    if True:\n        return logits.argmax(dim=-1)",
    ),
    _m(
        "generation-runs-past-end",
        "generation does not stop at <END>: it pads on to the length limit",
        "generation",
        "        if bool(done.all()):\n            break\n",
        "",
    ),
    _m(
        "loss-counts-padding",
        "the loss scores <PAD> labels (ignore_index left at -100)",
        "generation",
        "ignore_index=pad)",
        "ignore_index=-100)",
    ),
    # ---- beyond the notes: RMSNorm, gated feed-forward networks
    _m(
        "rmsnorm-subtracts-mean",
        "RMSNorm centres its input first (a LayerNorm without bias, not an RMSNorm)",
        "norm",
        "mean_square = xs.pow(2).mean(dim=-1, keepdim=True)",
        "xs = xs - xs.mean(dim=-1, keepdim=True)\n        "
        "mean_square = xs.pow(2).mean(dim=-1, keepdim=True)",
    ),
    _m(
        "rmsnorm-sum-not-mean",
        "RMSNorm divides by the root of the sum of squares, not of their mean",
        "norm",
        "mean_square = xs.pow(2).mean(dim=-1, keepdim=True)",
        "mean_square = xs.pow(2).sum(dim=-1, keepdim=True)",
    ),
    _m(
        "rmsnorm-eps-outside-sqrt",
        "RMSNorm adds eps to the root mean square instead of inside the square root",
        "norm",
        "normed = (xs * torch.rsqrt(mean_square + self.eps)).to(x.dtype)",
        "normed = (xs / (mean_square.sqrt() + self.eps)).to(x.dtype)",
        "bfloat16 rounds away the difference, about eps / rms, on rows of size 0.01",
    ),
    _m(
        "glu-gate-up-swapped",
        "the activation acts on the up projection instead of the gate (W_gate and W_up swapped)",
        "feedforward",
        "self.W_down(self.act(self.W_gate(x)) * self.W_up(x))",
        "self.W_down(self.act(self.W_up(x)) * self.W_gate(x))",
    ),
    _m(
        "glu-activation-after-product",
        "the gated FFN applies its activation to the product, act(x W_gate * x W_up)",
        "feedforward",
        "self.W_down(self.act(self.W_gate(x)) * self.W_up(x))",
        "self.W_down(self.act(self.W_gate(x) * self.W_up(x)))",
    ),
    _m(
        "glu-gate-dropped",
        "the gated FFN drops its gate: act(x W_up) W_down, an MLP in a gated FFN's place",
        "feedforward",
        "self.W_down(self.act(self.W_gate(x)) * self.W_up(x))",
        "self.W_down(self.act(self.W_up(x)))",
    ),
    _m(
        "rope-pairing-swapped",
        "rotary pairs channels 2i and 2i + 1 where channel i with i + d/2 is declared",
        "rotary",
        "a, b = rot[..., : r // 2], rot[..., r // 2 :]",
        "a, b = rot[..., 0::2], rot[..., 1::2]",
    ),
    _m(
        "rope-scales-the-pairs",
        "rotary scales the rotated pairs by 1.01 (a rotation that is no longer one)",
        "rotary",
        "return torch.cat([turned, rest], dim=-1)",
        "return torch.cat([turned * 1.01, rest], dim=-1)",
        "bfloat16 rounds a 1% change of a norm to within its own rounding",
    ),
    _m(
        "rope-rotation-sign",
        "rotary turns every pair the other way (the sine's sign flipped)",
        "rotary",
        "turned = torch.cat([a * cos - b * sin, b * cos + a * sin], dim=-1)",
        "turned = torch.cat([a * cos + b * sin, b * cos - a * sin], dim=-1)",
    ),
    _m(
        "rope-base-1000",
        "rotary frequencies from base 1000 instead of the declared 10000",
        "rotary",
        "inv_freq = base ** (-2.0 * i / rotary_dim)",
        "inv_freq = (base / 10) ** (-2.0 * i / rotary_dim)",
    ),
    _m(
        "rope-frequencies-over-d",
        "rotary frequencies base^(-i / r) (the factor 2 lost): pairs turn too slowly",
        "rotary",
        "inv_freq = base ** (-2.0 * i / rotary_dim)",
        "inv_freq = base ** (-1.0 * i / rotary_dim)",
    ),
    _m(
        "rope-absolute-angle",
        "rotary angles grow faster than the position (position squared): scores are no "
        "longer relative",
        "rotary",
        "return positions.to(torch.float64)[:, None] * inv_freq[None, :]",
        "return (positions.to(torch.float64) ** 2)[:, None] * inv_freq[None, :]",
    ),
    _m(
        "unknown-units-dropped",
        "units missing from the vocabulary are dropped instead of becoming <UNK>",
        "vocabulary",
        "ids = [self.unit_to_id.get(u, self.special.unk) for u in units]",
        "ids = [self.unit_to_id[u] for u in units if u in self.unit_to_id]",
    ),
    _m(
        "padding-on-the-left",
        "batches padded on the left where right padding is declared",
        "vocabulary",
        "rows = [list(s) + [self.special.pad] * (width - len(s)) for s in sequences]",
        "rows = [[self.special.pad] * (width - len(s)) + list(s) for s in sequences]",
    ),
    # ---- beyond the notes: grouped-query attention, windows, rotary in the model, ALiBi
    _m(
        "gqa-heads-tiled",
        "grouped key/value heads tiled (repeat) instead of repeated per group "
        "(repeat_interleave): query head i reads key/value head i mod g, not i // (h / g)",
        "multihead",
        "return kv.repeat_interleave(self.group, dim=1)",
        "return kv.repeat(1, self.group, 1, 1)",
    ),
    _m(
        "window-one-too-wide",
        "the sliding window shows w + 1 keys (itself and w before) where w is declared",
        "masks",
        "return (d >= 0) & (d < window)",
        "return (d >= 0) & (d <= window)",
    ),
    _m(
        "window-one-too-narrow",
        "the sliding window shows w - 1 keys where w is declared",
        "masks",
        "return (d >= 0) & (d < window)",
        "return (d >= 0) & (d < window - 1)",
    ),
    _m(
        "window-excludes-self",
        "the sliding window hides the query's own key: it sees the w - 1 keys before it only",
        "masks",
        "return (d >= 0) & (d < window)",
        "return (d > 0) & (d <= window - 1)",
    ),
    _m(
        "window-lost-with-cache",
        "the sliding window is applied to the full pass only; decoding with the cache sees "
        "every cached key",
        "multihead",
        "if self.window is not None:  # the window's distances are bottom-right",
        "if self.window is not None and cache is None:",
    ),
    _m(
        "rotary-positions-restart-in-cache",
        "rotary positions restart at 0 on every call: a token decoded after the cache is "
        "rotated as if it were the first",
        "multihead",
        "positions = torch.arange(offset, offset + x.shape[-2], device=x.device)",
        "positions = torch.arange(x.shape[-2], device=x.device)",
    ),
    _m(
        "rotary-queries-only",
        "rotary positions applied to the queries but not to the keys",
        "multihead",
        "k, v = (k if cross else self.turn(k, offset)), self.split_heads(self.W_V(x_kv))",
        "k, v = k, self.split_heads(self.W_V(x_kv))",
    ),
    _m(
        "rotary-dropped-in-layers",
        "the attention layers are built without their rotary positions: the model declares "
        "rotary and applies none",
        "layers",
        'rotary=rotary if c.positional == "rotary" and not cross else None,',
        "rotary=None,",
    ),
    _m(
        "alibi-slopes-reversed",
        "ALiBi slopes in the reverse order: the first head gets the smallest",
        "alibi",
        "slopes = _power_of_two_slopes(below)",
        "slopes = _power_of_two_slopes(below)[::-1]",
    ),
    _m(
        "alibi-bias-rewards-distance",
        "the ALiBi bias has the wrong sign: far keys are favoured, not penalised",
        "alibi",
        "return -alibi_slopes(n_heads).to(device)[:, None, None] * d",
        "return alibi_slopes(n_heads).to(device)[:, None, None] * d",
    ),
    _m(
        "alibi-extra-heads-wrong-slopes",
        "ALiBi for a head count that is not a power of two takes the odd slopes of the finer "
        "sequence instead of the even ones",
        "alibi",
        "slopes += _power_of_two_slopes(2 * below)[0::2][: n_heads - below]",
        "slopes += _power_of_two_slopes(2 * below)[1::2][: n_heads - below]",
    ),
)


def select(patterns: Sequence[str] | None) -> list[Mutant]:
    if not patterns:
        return list(CATALOGUE)
    return [m for m in CATALOGUE if any(p in m.name for p in patterns)]


class StaleMutant(Exception):
    """The reference changed: the mutant's original text no longer occurs exactly once."""


class _Loader(importlib.abc.Loader):
    def __init__(self, source: str, origin: str) -> None:
        self.source, self.origin = source, origin

    def exec_module(self, module: types.ModuleType) -> None:
        exec(compile(self.source, self.origin, "exec"), module.__dict__)


class _Finder(importlib.abc.MetaPathFinder):
    """Serves the one mutated module from its mutated source; leaves every other import to
    the normal machinery."""

    def __init__(self, mutant: Mutant) -> None:
        self.mutant, self.fullname = mutant, f"{_PACKAGE}.{mutant.module}"

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != self.fullname:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.origin is None:
            raise StaleMutant(f"{self.mutant.name}: module {fullname} not found")
        with open(spec.origin, encoding="utf-8") as f:
            source = f.read()
        if source.count(self.mutant.old) != 1:
            raise StaleMutant(
                f"{self.mutant.name}: its original text occurs {source.count(self.mutant.old)} "
                f"times in {fullname}, expected once"
            )
        loader = _Loader(source.replace(self.mutant.old, self.mutant.new), spec.origin)
        return importlib.machinery.ModuleSpec(fullname, loader, origin=spec.origin)


def _ours(name: str) -> bool:
    return name in (_PACKAGE, _WRAPPERS) or name.startswith(_PACKAGE + ".")


# (parent package, attribute) that `from parent import attr` would find before sys.modules
_BINDINGS = (
    ("transformer_spec", "reference"),
    ("transformer_spec.properties.targets", "builtin"),
)


def _swap_in(finder: _Finder) -> types.ModuleType:
    """Forget our modules, serve the mutated one, and import the built-in targets anew."""
    for name in [n for n in sys.modules if _ours(n)]:
        del sys.modules[name]
    for parent, attr in _BINDINGS:
        if hasattr(sys.modules[parent], attr):
            delattr(sys.modules[parent], attr)
    sys.meta_path.insert(0, finder)
    return importlib.import_module(_WRAPPERS)


@contextlib.contextmanager
def applied(mutant: Mutant) -> Iterator[types.ModuleType]:
    """The built-in targets module, freshly imported over the mutated reference; the original
    modules are back in place afterwards."""
    if any(isinstance(f, _Finder) for f in sys.meta_path):  # two bugs would show as one
        raise RuntimeError(f"{mutant.name}: another mutant is still applied")
    saved = {name: mod for name, mod in sys.modules.items() if _ours(name)}
    bound = {(p, a): getattr(sys.modules[p], a, None) for p, a in _BINDINGS}
    finder = _Finder(mutant)
    try:
        yield _swap_in(finder)
    finally:
        sys.meta_path.remove(finder)
        for name in [n for n in sys.modules if _ours(n)]:
            del sys.modules[name]
        sys.modules.update(saved)
        for (parent, attr), value in bound.items():
            if value is not None:
                setattr(sys.modules[parent], attr, value)
