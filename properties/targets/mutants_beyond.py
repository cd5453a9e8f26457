"""The mutants of the code beyond the notes: seeded bugs in the reference's RMSNorm, gated
feed-forward networks, rotary positions, grouped-query attention, sliding windows and ALiBi
(the catalogue, mutants.py, holds them with the notes' ones)."""

from transformer_spec.properties.targets.mutants_notes import Mutant, _m

BEYOND_COMPONENTS: tuple[Mutant, ...] = (
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
)

BEYOND_ATTENTION: tuple[Mutant, ...] = (
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
