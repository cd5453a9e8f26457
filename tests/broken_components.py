"""Broken component targets (see broken_targets.py for the pattern): each is the reference
components (ReferenceComponents) with one bug, put in by overriding one method.

MUTANTS maps each factory name to the component properties that must catch it."""

import math

import torch
from torch import Tensor
from transformer_spec.properties import Target
from transformer_spec.properties.targets.builtin import ReferenceComponents
from transformer_spec.properties.targets.levels import Components, ComponentSpec, PositionalLayout

from transformer_spec import reference as R


def _target(name: str, cls: type[ReferenceComponents]) -> Target:
    def build(spec: ComponentSpec) -> Components:
        return cls(spec)

    return Target(name=name, description=name.replace("-", " "), components=build)


class _SinCosSwapped(ReferenceComponents):
    def positional_table(self, n_positions: int, start: int = 0) -> Tensor | None:
        pe = super().positional_table(n_positions, start)
        assert pe is not None
        pairs = 2 * (self.d_model // 2)
        out = pe.clone()
        out[:, 0:pairs:2], out[:, 1:pairs:2] = pe[:, 1:pairs:2], pe[:, 0:pairs:2]
        return out


class _OffByOne(ReferenceComponents):
    def positional_table(self, n_positions: int, start: int = 0) -> Tensor | None:
        pe = R.sinusoidal_interleaved(n_positions, self.d_model, start=start + 1)
        return pe.to(self.dtype)


class _Base1000(ReferenceComponents):
    def positional_table(self, n_positions: int, start: int = 0) -> Tensor | None:
        pe = R.sinusoidal_interleaved(n_positions, self.d_model, base=1000.0, start=start)
        return pe.to(self.dtype)


class _ConcatDeclaredInterleaved(ReferenceComponents):
    def __init__(self, spec: ComponentSpec, layout: PositionalLayout = "concat_t2t") -> None:
        super().__init__(spec, "concat_t2t")
        self.positional_layout = "interleaved"


class _InterleavedDeclaredConcat(ReferenceComponents):
    def __init__(self, spec: ComponentSpec, layout: PositionalLayout = "interleaved") -> None:
        super().__init__(spec, "interleaved")
        self.positional_layout = "concat_t2t"


class _T2TTimescalesOverN(ReferenceComponents):
    """The concatenated layout with timescales 10000^(-j/n) instead of 10000^(-j/(n-1))."""

    def __init__(self, spec: ComponentSpec, layout: PositionalLayout = "concat_t2t") -> None:
        super().__init__(spec, "concat_t2t")

    def positional_table(self, n_positions: int, start: int = 0) -> Tensor | None:
        n = self.d_model // 2
        pos = torch.arange(start, start + n_positions, dtype=torch.float64)[:, None]
        w = 10000.0 ** (-torch.arange(n, dtype=torch.float64) / n)
        pe = torch.cat([torch.sin(pos * w), torch.cos(pos * w)], 1)
        return torch.nn.functional.pad(pe, (0, self.d_model % 2)).to(self.dtype)


class _StartIgnored(ReferenceComponents):
    def positional_table(self, n_positions: int, start: int = 0) -> Tensor | None:
        return super().positional_table(n_positions, 0)


class _PositionsMultiplied(ReferenceComponents):
    @torch.no_grad()
    def embed_with_positions(self, tokens: Tensor) -> Tensor:
        pe = super().positional_table(tokens.shape[1])
        assert pe is not None
        return self.embed(tokens) * pe


class _EmbeddingScaled(ReferenceComponents):
    """Scales by sqrt(d_model) while declaring embedding_scale 1."""

    @torch.no_grad()
    def embed(self, tokens: Tensor) -> Tensor:
        return super().embed(tokens) * math.sqrt(self.d_model)


class _EmbeddingMixesNeighbours(ReferenceComponents):
    @torch.no_grad()
    def embed(self, tokens: Tensor) -> Tensor:
        e = super().embed(tokens)
        return e + e.roll(1, dims=1)


def _norm(x: Tensor, dims: tuple[int, ...], unbiased: bool = False, center: bool = True) -> Tensor:
    xs = x.float()
    mean = xs.mean(dim=dims, keepdim=True) if center else torch.zeros_like(xs)
    var = ((xs - mean) ** 2).sum(dim=dims, keepdim=True) / max(
        1, math.prod(xs.shape[d] for d in dims) - int(unbiased)
    )
    return ((xs - mean) / torch.sqrt(var + 1e-5)).to(x.dtype)


class _UnbiasedVariance(ReferenceComponents):
    def layer_norm(self, x: Tensor) -> Tensor:
        return _norm(x, (-1,), unbiased=True)


class _NormOverPositions(ReferenceComponents):
    def layer_norm(self, x: Tensor) -> Tensor:
        return _norm(x, (-2,))


class _BatchStatistics(ReferenceComponents):
    def layer_norm(self, x: Tensor) -> Tensor:
        return _norm(x, (0, -1))


class _RMSNorm(ReferenceComponents):
    def layer_norm(self, x: Tensor) -> Tensor:
        return _norm(x, (-1,), center=False)


class _LNBiasSubtracted(ReferenceComponents):
    """Correct at gain 1 and bias 0 (a fresh model): the bias is subtracted."""

    def layer_norm_affine(self, x: Tensor, gain: Tensor, bias: Tensor) -> Tensor:
        return self.layer_norm(x) * gain - bias


class _FFNMixesPositions(ReferenceComponents):
    @torch.no_grad()
    def feed_forward(self, x: Tensor) -> Tensor:
        return super().feed_forward(x + x.roll(1, dims=1))


class _LinearFFN(ReferenceComponents):
    @torch.no_grad()
    def feed_forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.ffn.W_2(self.ffn.W_1(x))
        return out


class _UnembedMixesPositions(ReferenceComponents):
    @torch.no_grad()
    def unembed(self, x: Tensor) -> Tensor:
        return super().unembed(x + x.roll(1, dims=1))


class _RMSNormCentres(ReferenceComponents):
    """An RMSNorm that subtracts the mean first: a bias-free LayerNorm in its place."""

    @torch.no_grad()
    def rms_norm(self, x: Tensor) -> Tensor:
        return super().rms_norm(x - x.mean(-1, keepdim=True))


class _RMSNormWrongEps(ReferenceComponents):
    """Declares eps 1e-6 and uses 1e-2 (a config field read from the wrong place)."""

    @torch.no_grad()
    def rms_norm(self, x: Tensor) -> Tensor:
        xs = x.double()
        out = xs * torch.rsqrt(xs.pow(2).mean(-1, keepdim=True) + 1e-2)
        return out.to(x.dtype)


class _GatedUpActivated(ReferenceComponents):
    """SiLU on the up branch, the gate left linear (W_gate and W_up swapped)."""

    @torch.no_grad()
    def gated_feed_forward(self, x: Tensor) -> Tensor:
        g = self.gated
        out: Tensor = g.W_down(g.act(g.W_up(x)) * g.W_gate(x))
        return out


class _RotaryInterleaved(ReferenceComponents):
    """Rotates pairs (2i, 2i + 1) while declaring half-split pairs (i, i + d/2)."""

    @torch.no_grad()
    def rotary(self, x: Tensor, positions: Tensor) -> Tensor:
        return R.apply_rotary(x, positions, pairing="interleaved")


class _RotaryGrows(ReferenceComponents):
    """Scales what it rotates by 1 + position / 100: no longer a rotation."""

    @torch.no_grad()
    def rotary(self, x: Tensor, positions: Tensor) -> Tensor:
        grow = (1 + positions.to(x.dtype) / 100)[:, None]
        return R.apply_rotary(x, positions) * grow


class _RotaryAbsolute(ReferenceComponents):
    """Angles from position squared: scores depend on absolute positions."""

    @torch.no_grad()
    def rotary(self, x: Tensor, positions: Tensor) -> Tensor:
        return R.apply_rotary(x, positions * positions)


def rotary_interleaved_declared_half() -> Target:
    return _target("rotary-interleaved-declared-half", _RotaryInterleaved)


def rotary_grows() -> Target:
    return _target("rotary-grows", _RotaryGrows)


def rotary_absolute() -> Target:
    return _target("rotary-absolute", _RotaryAbsolute)


def rmsnorm_centres() -> Target:
    return _target("rmsnorm-centres", _RMSNormCentres)


def rmsnorm_wrong_eps() -> Target:
    return _target("rmsnorm-wrong-eps", _RMSNormWrongEps)


def glu_up_activated() -> Target:
    return _target("glu-up-activated", _GatedUpActivated)


def pe_sin_cos_swapped() -> Target:
    return _target("pe-sin-cos-swapped", _SinCosSwapped)


def pe_off_by_one() -> Target:
    return _target("pe-off-by-one", _OffByOne)


def pe_base_1000() -> Target:
    return _target("pe-base-1000", _Base1000)


def concat_declared_interleaved() -> Target:
    return _target("concat-declared-interleaved", _ConcatDeclaredInterleaved)


def interleaved_declared_concat() -> Target:
    return _target("interleaved-declared-concat", _InterleavedDeclaredConcat)


def t2t_timescales_over_n() -> Target:
    return _target("t2t-timescales-over-n", _T2TTimescalesOverN)


def pe_start_ignored() -> Target:
    return _target("pe-start-ignored", _StartIgnored)


def positions_multiplied() -> Target:
    return _target("positions-multiplied", _PositionsMultiplied)


def embedding_scaled_undeclared() -> Target:
    return _target("embedding-scaled-undeclared", _EmbeddingScaled)


def embedding_mixes_neighbours() -> Target:
    return _target("embedding-mixes-neighbours", _EmbeddingMixesNeighbours)


def ln_unbiased_variance() -> Target:
    return _target("ln-unbiased-variance", _UnbiasedVariance)


def ln_over_positions() -> Target:
    return _target("ln-over-positions", _NormOverPositions)


def ln_batch_statistics() -> Target:
    return _target("ln-batch-statistics", _BatchStatistics)


def ln_rmsnorm() -> Target:
    return _target("ln-rmsnorm", _RMSNorm)


def ln_bias_subtracted() -> Target:
    return _target("ln-bias-subtracted", _LNBiasSubtracted)


def ffn_mixes_positions() -> Target:
    return _target("ffn-mixes-positions", _FFNMixesPositions)


def ffn_linear() -> Target:
    return _target("ffn-linear", _LinearFFN)


def unembed_mixes_positions() -> Target:
    return _target("unembed-mixes-positions", _UnembedMixesPositions)


_PE = "components.positional_"
MUTANTS: dict[str, tuple[str, ...]] = {
    "pe_sin_cos_swapped": (
        f"{_PE}table_matches_formula",
        f"{_PE}range_and_origin",
        f"{_PE}relative_rotation",
    ),
    "pe_off_by_one": (f"{_PE}table_matches_formula", f"{_PE}range_and_origin"),
    "pe_base_1000": (f"{_PE}table_matches_formula", f"{_PE}relative_rotation"),
    "concat_declared_interleaved": (
        f"{_PE}table_matches_formula",
        f"{_PE}range_and_origin",
        f"{_PE}relative_rotation",
    ),
    "interleaved_declared_concat": (
        f"{_PE}table_matches_formula",
        f"{_PE}range_and_origin",
        f"{_PE}relative_rotation",
    ),
    "t2t_timescales_over_n": (f"{_PE}table_matches_formula", f"{_PE}relative_rotation"),
    "pe_start_ignored": (f"{_PE}start_index",),
    "positions_multiplied": ("components.positions_added",),
    "embedding_scaled_undeclared": ("components.embedding_is_onehot_lookup",),
    "embedding_mixes_neighbours": (
        "components.embedding_is_onehot_lookup",
        "components.embedding_context_free",
    ),
    "ln_unbiased_variance": ("components.layer_norm_matches_formula",),
    "ln_over_positions": (
        "components.layer_norm_matches_formula",
        "components.layer_norm_per_row",
    ),
    "ln_batch_statistics": (
        "components.layer_norm_matches_formula",
        "components.layer_norm_per_row",
    ),
    "ln_rmsnorm": (
        "components.layer_norm_matches_formula",
        "components.layer_norm_shift_scale_invariant",
    ),
    "ln_bias_subtracted": ("components.layer_norm_gain_and_bias",),
    "ffn_mixes_positions": ("components.feed_forward_positionwise",),
    "ffn_linear": ("components.feed_forward_nonlinear",),
    "unembed_mixes_positions": ("components.unembed_positionwise",),
    "rmsnorm_centres": (
        "components.rms_norm_matches_formula",
        "components.rms_norm_rescales_without_centring",
    ),
    "rmsnorm_wrong_eps": ("components.rms_norm_matches_formula",),
    "glu_up_activated": ("components.gated_ffn_matches_formula",),
    "rotary_interleaved_declared_half": ("components.rotary_matches_formula",),
    "rotary_grows": ("components.rotary_matches_formula", "components.rotary_preserves_norm"),
    "rotary_absolute": ("components.rotary_matches_formula", "components.rotary_scores_relative"),
}
