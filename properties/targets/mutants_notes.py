"""The mutants of the notes' model: seeded bugs in the reference's attention, multi-head
attention, layers, embeddings and positions, whole model, decoding, training and vocabulary,
each a bug class that real implementations have shipped (see ../shared/anchors/numerics.md in
the project's notes). `Mutant` is one entry of the catalogue (mutants.py)."""

from dataclasses import dataclass


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


NOTES: tuple[Mutant, ...] = (
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
)

VOCABULARY: tuple[Mutant, ...] = (
    # ---- vocabulary
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
)
