"""Unit tests of the reference's features beyond the notes (issue 32), small enough for the
mutation run (tools/mutation_report.py UNIT_TESTS): the exact masks, slopes, rotations and
statistics, which the properties see only through tolerances or at their defaults."""

import math

import pytest
import torch

from transformer_spec import reference as R


def _rope(x: torch.Tensor, positions: list[int], pairing: str, base: float, r: int) -> torch.Tensor:
    """RoFormer's rotation written out pair by pair, in float64."""
    out = x.clone()
    for t, m in enumerate(positions):
        for i in range(r // 2):
            theta = m * base ** (-2 * i / r)
            a, b = (i, i + r // 2) if pairing == "half_split" else (2 * i, 2 * i + 1)
            xa, xb = x[..., t, a], x[..., t, b]
            out[..., t, a] = xa * math.cos(theta) - xb * math.sin(theta)
            out[..., t, b] = xb * math.cos(theta) + xa * math.sin(theta)
    return out


@pytest.mark.parametrize("pairing", ["half_split", "interleaved"])
@pytest.mark.parametrize(("base", "rotary_dim"), [(10000.0, None), (500000.0, 4), (1000.0, 6)])
def test_apply_rotary_is_the_rotation_of_each_pair(
    pairing: str, base: float, rotary_dim: int | None
) -> None:
    x = torch.randn(2, 3, 8, dtype=torch.float64)
    positions = [0, 5, 63]
    got = R.apply_rotary(
        x,
        torch.tensor(positions),
        pairing=pairing,  # type: ignore[arg-type]
        base=base,
        rotary_dim=rotary_dim,
    )
    want = _rope(x, positions, pairing, base, rotary_dim or 8)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)


def test_apply_rotary_defaults_are_roformers_half_split_base_10000() -> None:
    x, positions = torch.randn(1, 4, 8, dtype=torch.float64), torch.arange(4)
    torch.testing.assert_close(
        R.apply_rotary(x, positions),
        R.apply_rotary(x, positions, pairing="half_split", base=10000.0, rotary_dim=8),
        rtol=0,
        atol=0,
    )
    angles = R.rotary_angles(torch.tensor([3]), 4)
    assert angles.dtype == torch.float64
    torch.testing.assert_close(angles, torch.tensor([[3.0, 3.0 / 100.0]], dtype=torch.float64))


def test_the_sliding_window_shows_itself_and_the_w_minus_1_keys_before() -> None:
    got = R.sliding_window_mask(4, 4, 2).int().tolist()
    assert got == [[1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]]
    assert R.sliding_window_mask(2, 5, 3).int().tolist() == [[0, 1, 1, 1, 0], [0, 0, 1, 1, 1]]


def test_alibi_bias_and_slopes_are_the_papers() -> None:
    assert R.alibi_slopes(8).tolist() == [2.0 ** -(i + 1) for i in range(8)]
    assert R.alibi_slopes(6).tolist() == [2**-2, 2**-4, 2**-6, 2**-8, 2**-1, 2**-3]
    assert R.alibi_slopes(3).dtype == torch.float64
    bias = R.alibi_bias(2, 2, 3)  # two queries, the last two of three keys
    assert bias.dtype == torch.float64
    assert bias.tolist() == [
        [[-0.0625, 0.0, 0.0625], [-0.125, -0.0625, 0.0]],
        [[-0.00390625, 0.0, 0.00390625], [-0.0078125, -0.00390625, 0.0]],
    ]
    with pytest.raises(ValueError, match="n_heads"):
        R.alibi_slopes(0)


def test_rmsnorm_is_its_formula_with_its_gain_and_float32_statistics() -> None:
    x = torch.randn(3, 8, dtype=torch.float64)
    norm = R.RMSNorm(8, eps=1e-6).double()
    with torch.no_grad():
        norm.gain.copy_(torch.linspace(0.5, 2.0, 8))
    want = x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * norm.gain
    torch.testing.assert_close(norm(x), want, rtol=0, atol=1e-13)
    low = R.RMSNorm(8, eps=1e-6).to(torch.bfloat16)
    xb = x.to(torch.bfloat16)
    in_float32 = xb.float() * torch.rsqrt(xb.float().pow(2).mean(-1, keepdim=True) + 1e-6)
    assert torch.equal(low(xb), in_float32.to(torch.bfloat16))


def test_geglu_gates_with_gelu_and_swiglu_with_silu() -> None:
    for kind, act in (("swiglu", torch.nn.SiLU), ("geglu", torch.nn.GELU)):
        ffn = R.GatedFeedForward(4, 8, kind=kind)  # type: ignore[arg-type]
        assert isinstance(ffn.act, act) and ffn.W_gate.bias is None and ffn.W_down.bias is None


def test_fused_attention_with_a_bias_refuses_the_causal_flag() -> None:
    q = torch.zeros(1, 1, 2, 4)
    with pytest.raises(ValueError, match="is_causal"):
        R.fused_attention(q, q, q, bias=torch.zeros(1, 2, 2), is_causal=True)


def test_a_fully_masked_row_is_zero_on_the_fused_path_with_a_bias() -> None:
    q = torch.randn(1, 1, 2, 4)
    mask = torch.tensor([[False, False], [True, True]])
    out = R.fused_attention(q, q, q, mask=mask, bias=torch.zeros(1, 2, 2))
    assert torch.equal(out[0, 0, 0], torch.zeros(4)) and bool(out[0, 0, 1].abs().sum() > 0)


# ---- what the mutation run of issue 32 found no property reaching (each a survivor) ------


def _config(**changes: object) -> R.TransformerConfig:
    """Not tests/conftest.tiny_config: the mutation run copies this file beside its own
    conftest, so it imports nothing from the project's."""
    sizes: dict[str, object] = dict(
        vocab_size=12,
        shape="decoder_only",
        d_model=16,
        n_heads=4,
        d_ff=32,
        n_encoder_layers=0,
        n_decoder_layers=1,
        max_len=16,
    )
    return R.TransformerConfig(**{**sizes, **changes})  # type: ignore[arg-type]


def _first_layer(model: R.DecoderOnlyModel | R.EncoderDecoderModel) -> R.DecoderLayer:
    layer = model.decoder.layers[0]
    assert isinstance(layer, R.DecoderLayer)
    return layer


def _decoder(**changes: object) -> R.DecoderOnlyModel:
    model = R.build_model(_config(dropout=0.0, **changes)).eval()
    assert isinstance(model, R.DecoderOnlyModel)
    return model


def test_the_decoder_layers_are_built_with_the_configs_features() -> None:
    """n_kv_heads, rotary_dim, norm_kind and ALiBi reach every self-attention sublayer (the
    harness's models never ask for a partial rotary, RMSNorm or ALiBi, and a model that
    ignores n_kv_heads builds the same function with more weights)."""
    grouped = _first_layer(
        _decoder(positional="rotary", rotary_dim=2, n_kv_heads=1, norm_kind="rms_norm")
    )
    attn = grouped.self_attn
    assert attn.W_K.out_features == attn.W_V.out_features == 4  # one key/value head of d_k 4
    assert attn.rotary == R.Rotary("half_split", 10000.0, 2)
    assert not attn.alibi and attn.window is None
    residuals = [m for m in grouped.sublayers if isinstance(m, R.Residual)]
    assert len(residuals) == 2 and all(isinstance(m.norm, R.RMSNorm) for m in residuals)
    alibi_model = _decoder(positional="alibi")
    alibi = _first_layer(alibi_model).self_attn
    assert alibi.alibi and alibi.rotary is None
    assert alibi_model.embed.positions.table is None  # no absolute table beside ALiBi


def test_cross_attention_takes_no_positions_and_no_window() -> None:
    config = R.TransformerConfig(
        vocab_size=12,
        d_model=16,
        n_heads=4,
        d_ff=32,
        n_encoder_layers=1,
        n_decoder_layers=1,
        max_len=16,
        dropout=0.0,
        positional="rotary",
    )
    model = R.build_model(config)
    assert isinstance(model, R.EncoderDecoderModel)
    layer = _first_layer(model)
    assert layer.self_attn.rotary is not None
    assert layer.cross_attn is not None and layer.cross_attn.rotary is None
    assert not layer.cross_attn.alibi and layer.cross_attn.window is None


def test_the_fused_path_adds_a_float64_bias_and_hides_masked_keys_as_the_formula_does() -> None:
    torch.manual_seed(0)
    q, k, v = torch.randn(3, 1, 2, 3, 4).unbind(0)
    bias = R.alibi_bias(2, 3, 3)[None]  # float64, as the reference makes it
    mask = torch.tensor([[True, False, True], [True, True, False], [False, True, True]])
    fused = R.fused_attention(q, k, v, mask=mask, bias=bias)
    math_path = R.scaled_dot_product_attention(q, k, v, mask=mask, bias=bias)[0]
    torch.testing.assert_close(fused, math_path, atol=1e-6, rtol=1e-5)


def test_interleaved_rotary_of_a_four_dimensional_input_is_the_rotation_of_each_pair() -> None:
    x = torch.randn(2, 2, 3, 8, dtype=torch.float64)  # (b, h, t, d_k), as attention has it
    got = R.apply_rotary(x, torch.tensor([0, 1, 7]), pairing="interleaved")
    torch.testing.assert_close(got, _rope(x, [0, 1, 7], "interleaved", 10000.0, 8))


@pytest.mark.parametrize("width", [0, 3, 10])
def test_a_rotary_width_that_is_odd_zero_or_wider_than_the_head_is_refused(width: int) -> None:
    with pytest.raises(ValueError, match=f"rotary_dim: {width} must be even"):
        R.apply_rotary(torch.zeros(1, 2, 8), torch.arange(2), rotary_dim=width)


def test_a_negative_start_position_is_refused() -> None:
    with pytest.raises(ValueError, match="start: expected a position >= 0, got -1"):
        _decoder(positional="rotary")(torch.tensor([[4, 5]]), start=-1)


def test_the_attention_sublayer_turns_by_its_configs_pairing_base_and_width() -> None:
    # d_k 8, 4 channels turned: with 2, both pairings and every base give the same rotation.
    model = _decoder(
        d_model=32,
        positional="rotary",
        rotary_pairing="interleaved",
        rotary_base=500.0,
        rotary_dim=4,
    )
    attn = _first_layer(model).self_attn
    x = torch.randn(1, 4, 3, 8)  # (b, heads, n, d_k)
    want = R.apply_rotary(x, torch.arange(5, 8), pairing="interleaved", base=500.0, rotary_dim=4)
    torch.testing.assert_close(attn.turn(x, 5), want, atol=0, rtol=0)
    assert torch.equal(attn.turn(x, 5)[..., 4:], x[..., 4:])  # the channels past rotary_dim
    assert not torch.equal(want, R.apply_rotary(x, torch.arange(5, 8), rotary_dim=4))


@pytest.mark.unchecked  # asserts our own messages (tests/test_bad_inputs.py runs them)
@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"n_kv_heads": 0}, "n_kv_heads"),
        ({"norm_kind": "batch_norm"}, "norm_kind: 'batch_norm' is not one of"),
        ({"ffn": "reglu"}, "ffn: 'reglu' is not one of"),
        ({"positional": "rotary", "rotary_pairing": "adjacent"}, "rotary_pairing: 'adjacent'"),
        ({"rotary_base": 1}, "rotary_base: expected a number > 1"),
        ({"rotary_dim": 4}, "rotary_dim, rotary_pairing: only apply"),
        ({"rotary_pairing": "interleaved"}, "rotary_dim, rotary_pairing: only apply"),
        ({"positional": "rotary", "d_model": 12, "n_heads": 4}, "d_k=3 is odd"),
        ({"sliding_window": 0}, "sliding_window"),
        ({"shape": "encoder_decoder", "n_encoder_layers": 1, "sliding_window": 2}, "decoder-only"),
        (
            {"shape": "encoder_decoder", "n_encoder_layers": 1, "positional": "alibi"},
            "decoder-only",
        ),
    ],
)
def test_each_bad_value_beyond_the_notes_is_refused_naming_its_field(
    changes: dict[str, object], named: str
) -> None:
    with pytest.raises(ValueError, match=named):
        _config(**changes)


def test_the_values_next_to_the_refused_ones_are_taken() -> None:
    _config(positional="rotary", rotary_base=1.5, rotary_dim=4)
    _config(d_model=12, n_heads=4)  # an odd d_k without rotary


def _alibi_formula(mha: R.MultiHeadAttention, x: torch.Tensor) -> torch.Tensor:
    """softmax(QK^T / sqrt(d_k) + ALiBi bias, causal) V, head by head, then W_O."""
    b, t, _ = x.shape
    h, d_k = mha.n_heads, mha.d_k

    def heads(y: torch.Tensor) -> torch.Tensor:
        return y.view(b, t, h, d_k).transpose(1, 2)

    q, k, v = heads(mha.W_Q(x)), heads(mha.W_K(x)), heads(mha.W_V(x))
    scores = q @ k.transpose(-2, -1) / math.sqrt(d_k) + R.alibi_bias(h, t, t).to(x.dtype)
    future = torch.ones(t, t, dtype=torch.bool).triu(1)
    weights = scores.masked_fill(future, float("-inf")).softmax(-1)
    out: torch.Tensor = mha.W_O((weights @ v).transpose(1, 2).reshape(b, t, h * d_k))
    return out


@pytest.mark.parametrize("path", ["math", "fused"])
def test_alibi_attention_adds_the_papers_bias_to_each_heads_scores(path: str) -> None:
    torch.manual_seed(0)
    mha = R.MultiHeadAttention(16, 4, alibi=True, path=path).double()  # type: ignore[arg-type]
    x = torch.randn(2, 5, 16, dtype=torch.float64)
    torch.testing.assert_close(mha(x, causal=True)[0], _alibi_formula(mha, x))


def test_an_alibi_model_decodes_through_its_cache_as_in_one_pass() -> None:
    torch.manual_seed(0)
    model = _decoder(positional="alibi").double()
    tokens = torch.tensor([[4, 7, 5, 9, 6, 8]])
    torch.testing.assert_close(R.incremental_logits(model, tokens), model(tokens))


def test_the_attention_modules_own_checks_of_groups_and_windows() -> None:
    with pytest.raises(ValueError, match="n_kv_heads: 3 does not divide n_heads=4"):
        R.MultiHeadAttention(16, 4, n_kv_heads=3)
    with pytest.raises(ValueError, match="window: expected >= 1 keys, got 0"):
        R.MultiHeadAttention(16, 4, window=0)
    assert R.MultiHeadAttention(16, 4, window=1).window == 1  # itself alone
    assert R.MultiHeadAttention(16, 4, n_kv_heads=2).W_K.out_features == 8


def test_cross_attention_refuses_positions_and_windows() -> None:
    x, memory = torch.randn(1, 2, 16), torch.randn(1, 3, 16)
    for settings in ({"alibi": True}, {"window": 2}, {"rotary": R.Rotary()}):
        mha = R.MultiHeadAttention(16, 4, **settings)
        with pytest.raises(ValueError, match="x_kv: rotary, ALiBi and windows apply to self"):
            mha(x, memory)


def test_a_rotary_encoder_decoder_decodes_through_its_cache_as_in_one_pass() -> None:
    """The decoder's rotary positions advance with the cache (`offset` from decode)."""
    torch.manual_seed(0)
    config = _config(shape="encoder_decoder", n_encoder_layers=1, positional="rotary", dropout=0.0)
    model = R.build_model(config).eval().double()
    assert isinstance(model, R.EncoderDecoderModel)
    src, tgt = torch.tensor([[4, 5, 6]]), torch.tensor([[1, 7, 8, 9, 10]])
    torch.testing.assert_close(R.incremental_logits(model, tgt, src=src), model(src, tgt))
