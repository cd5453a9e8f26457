"""The three model shapes, presets, KV cache, generation, loss and dtypes."""

import functools
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import torch
import transformer_spec.reference as R

from .conftest import DEVICES, DTYPES, tiny_config

SHAPES = ["encoder_decoder", "decoder_only", "encoder_only"]


def _tokens(b: int, n: int, vocab: int = 23, seed: int = 0) -> torch.Tensor:
    return torch.randint(4, vocab, (b, n), generator=torch.Generator().manual_seed(seed))


def _logits(model: R.AnyModel, tgt: torch.Tensor, src: torch.Tensor) -> torch.Tensor:
    out: torch.Tensor = model(src, tgt) if isinstance(model, R.EncoderDecoderModel) else model(tgt)
    return out


def test_gpt2_small_has_exactly_124_439_808_parameters() -> None:
    # spec: MHA-GPT2-SMALL
    model = R.build_model(R.gpt2_small_config())
    assert R.count_parameters(model) == 124_439_808
    assert model.unembed.W.weight is model.embed.tokens.M  # tied


def test_gpt2_small_preset_fields() -> None:
    cfg = R.gpt2_small_config(max_len=512)  # overrides apply
    assert (cfg.vocab_size, cfg.n_heads, cfg.d_ff, cfg.max_len) == (50257, 12, 3072, 512)
    assert (cfg.positional, cfg.norm, cfg.activation) == ("learned", "pre", "gelu_tanh")
    assert cfg.tie_unembedding is True
    assert cfg.unembedding_bias is False and cfg.scale_embedding is False


def test_base_preset_is_the_original_model() -> None:
    # spec: ARCH-ORIGINAL-CONFIG, MHA-DMODEL-EQ-H-DK
    assert R.base_config().vocab_size == 37000  # the paper's shared English-German BPE
    assert R.base_config(d_model=256).d_model == 256  # overrides apply
    cfg = R.base_config()
    assert (cfg.n_encoder_layers, cfg.n_decoder_layers, cfg.d_model, cfg.n_heads, cfg.d_ff) == (
        6,
        6,
        512,
        8,
        2048,
    )
    assert cfg.d_k == 64 and cfg.attention_scale == 1 / 8
    assert (cfg.norm, cfg.positional, cfg.activation) == ("post", "sinusoidal", "relu")


def test_layers_have_two_and_three_sublayers() -> None:
    # spec: ENC-TWO-SUBLAYERS, DEC-THREE-SUBLAYERS, ARCH-DECODER-ONLY
    model = R.build_model(tiny_config())
    assert isinstance(model, R.EncoderDecoderModel)
    for enc in model.encoder.layers:
        assert isinstance(enc, R.EncoderLayer) and len(enc.sublayers) == 2
    for dec in model.decoder.layers:
        assert isinstance(dec, R.DecoderLayer) and len(dec.sublayers) == 3
        assert dec.cross_attn is not None
    gpt = R.build_model(tiny_config("decoder_only"))
    assert isinstance(gpt, R.DecoderOnlyModel)
    for dec in gpt.decoder.layers:
        assert isinstance(dec, R.DecoderLayer) and len(dec.sublayers) == 2
        assert dec.cross_attn is None


def _call_order(model: R.AnyModel) -> list[str]:
    """Filled, on each forward, with the names of the embedding, attention, feed-forward and
    un-embedding modules in the order they are called."""
    calls: list[str] = []

    def record(name: str) -> Callable[..., None]:
        return lambda *_: calls.append(name)

    for name, module in model.named_modules():
        if name in ("embed", "unembed") or isinstance(
            module, (R.MultiHeadAttention, R.FeedForward)
        ):
            module.register_forward_pre_hook(record(name))
    return calls


@pytest.mark.parametrize("shape", SHAPES)
def test_a_model_is_embedding_alternating_sublayers_then_unembedding(shape: str) -> None:
    # spec: ARCH-COMPONENTS
    model = R.build_model(tiny_config(shape)).eval()
    calls = _call_order(model)
    _logits(model, _tokens(2, 4), _tokens(2, 5, seed=1))
    encoder = [
        "embed",
        *[f"encoder.layers.{i}.{m}" for i in range(2) for m in ("self_attn", "ffn")],
    ]
    sublayers = (
        ("self_attn", "cross_attn", "ffn") if shape == "encoder_decoder" else ("self_attn", "ffn")
    )
    decoder = ["embed", *[f"decoder.layers.{i}.{m}" for i in range(2) for m in sublayers]]
    stacks = {
        "encoder_decoder": encoder + decoder,
        "decoder_only": decoder,
        "encoder_only": encoder,
    }
    assert calls == [*stacks[shape], "unembed"]


@pytest.mark.parametrize("norm", ["post", "pre"])
def test_encoder_decoder_is_its_two_stacks_composed_by_hand(norm: str) -> None:
    # spec: ARCH-ENC-DEC, ENC-STACK, DEC-STACK, XATTN-EVERY-LAYER
    torch.manual_seed(9)
    config = tiny_config(norm=norm, n_encoder_layers=3, dtype=torch.float64)
    model = R.build_model(config).eval()
    assert isinstance(model, R.EncoderDecoderModel)
    src, tgt = _tokens(2, 5), _tokens(2, 4, seed=1)

    def embed(tokens: torch.Tensor) -> torch.Tensor:  # token embedding plus positions
        out: torch.Tensor = model.embed.positions(model.embed.tokens(tokens))
        return out

    def stack(x: torch.Tensor, coder: R.Encoder | R.Decoder, *memory: torch.Tensor) -> torch.Tensor:
        for layer in coder.layers:  # each layer reads the previous one's output
            x = layer(x, *memory)
        # Pre-LN ends each stack with one more LayerNorm (GPT-2's ln_f).
        return coder.final_norm(x) if coder.final_norm is not None else x

    encoded = stack(embed(src), model.encoder)
    decoded = stack(embed(tgt), model.decoder, encoded)
    memory, _ = model.encode(src)
    assert memory.shape == (2, 5, config.d_model)  # one vector per source position
    torch.testing.assert_close(memory, encoded, rtol=0, atol=1e-12)
    keys_values: list[torch.Tensor] = []
    for layer in model.decoder.layers:
        assert isinstance(layer, R.DecoderLayer) and layer.cross_attn is not None
        layer.cross_attn.register_forward_pre_hook(lambda _m, args: keys_values.append(args[1]))
    logits = model(src, tgt)
    assert len(keys_values) == 2  # every decoder layer reads the last encoder layer's output
    assert all(torch.equal(kv, memory) for kv in keys_values)
    torch.testing.assert_close(logits, model.unembed(decoded), rtol=0, atol=1e-12)
    assert logits.shape == (2, 4, config.vocab_size)  # one distribution per target position
    sums = R.probabilities(logits).sum(-1)
    torch.testing.assert_close(sums, torch.ones_like(sums))


def _not_causal(forward: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return forward(*args, **{**kwargs, "causal": False})


@pytest.mark.parametrize("norm", ["post", "pre"])
def test_encoder_only_is_decoder_only_without_the_causal_mask(
    norm: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # spec: ARCH-ENCODER-ONLY
    torch.manual_seed(10)
    gpt = R.build_model(tiny_config("decoder_only", norm=norm, dtype=torch.float64)).eval()
    bert = R.build_model(tiny_config("encoder_only", norm=norm, dtype=torch.float64)).eval()
    assert isinstance(gpt, R.DecoderOnlyModel)
    # Same blocks: the decoder-only weights load into the encoder-only model, key for key.
    state = gpt.state_dict()
    bert.load_state_dict({k.replace("decoder.", "encoder.", 1): v for k, v in state.items()})
    tokens = _tokens(2, 6)
    tokens[1, 4:] = gpt.config.special.pad  # padding stays masked in both
    assert not torch.allclose(bert(tokens), gpt(tokens))  # the encoder-only model is not causal
    for layer in gpt.decoder.layers:
        assert isinstance(layer, R.DecoderLayer)
        forward = functools.partial(_not_causal, layer.self_attn.forward)
        monkeypatch.setattr(layer.self_attn, "forward", forward)
    torch.testing.assert_close(bert(tokens), gpt(tokens), rtol=0, atol=1e-12)


@pytest.mark.parametrize("norm", ["post", "pre"])
def test_every_sublayer_has_its_own_residual_and_layer_norm(norm: str) -> None:
    # spec: NORM-EVERY-SUBLAYER
    model = R.build_model(tiny_config(norm=norm)).eval()
    assert isinstance(model, R.EncoderDecoderModel)
    layers = [*model.encoder.layers, *model.decoder.layers]
    residuals = [res for layer in layers for res in layer.sublayers]
    assert len(residuals) == 2 * 2 + 2 * 3  # self-attention, (cross-attention,) FFN
    norms = [res.norm for res in residuals]
    for ln in norms:
        assert isinstance(ln, R.LayerNorm)
        assert ln.gain.shape == ln.bias.shape == (model.config.d_model,)
    assert len({id(p) for ln in norms for p in ln.parameters()}) == 2 * len(norms)  # none shared
    calls: Counter[int] = Counter()
    for module in [*residuals, *norms]:
        module.register_forward_hook(lambda m, _args, _out: calls.update([id(m)]))
    model(_tokens(2, 5), _tokens(2, 4, seed=1))
    assert [calls[id(m)] for m in [*residuals, *norms]] == [1] * (2 * len(residuals))


def test_unembedding_is_a_linear_map_then_softmax() -> None:
    # spec: UNEMB-LINEAR-SOFTMAX
    torch.manual_seed(11)
    config = tiny_config(tie_unembedding=False, unembedding_bias=True, dtype=torch.float64)
    unembed = R.build_model(config).unembed
    W, b = unembed.W.weight.T, unembed.W.bias  # the notes' W is (d_model, vocab)
    assert b is not None
    assert W.shape == (config.d_model, config.vocab_size) and b.shape == (config.vocab_size,)
    x = torch.randn(2, 3, config.d_model, dtype=torch.float64)
    torch.testing.assert_close(unembed(x), x @ W + b, rtol=0, atol=1e-12)
    p = unembed.distribution(x)
    assert p.shape == (2, 3, config.vocab_size)  # one vector of vocab_size entries per position
    torch.testing.assert_close(p, torch.softmax(x @ W + b, dim=-1), rtol=0, atol=1e-12)


def test_untied_unembedding_has_its_own_matrix() -> None:
    model = R.build_model(tiny_config(tie_unembedding=False, unembedding_bias=True))
    assert model.unembed.W.weight is not model.embed.tokens.M
    assert model.unembed.W.bias is not None


@pytest.mark.parametrize("shape", ["encoder_decoder", "decoder_only"])
@pytest.mark.parametrize("norm", ["post", "pre"])
def test_kv_cache_equals_full_forward(shape: str, norm: str) -> None:
    torch.manual_seed(0)
    model = R.build_model(tiny_config(shape, norm=norm)).eval()
    src, tgt = _tokens(3, 7), _tokens(3, 12, seed=1)
    full = _logits(model, tgt, src)
    step = R.incremental_logits(model, tgt, src=src if shape == "encoder_decoder" else None)
    assert (full - step).abs().max().item() <= 1e-5


@pytest.mark.parametrize("shape", ["encoder_decoder", "decoder_only"])
def test_cached_and_uncached_generation_agree(shape: str) -> None:
    torch.manual_seed(1)
    model = R.build_model(tiny_config(shape)).eval()
    src = _tokens(4, 6) if shape == "encoder_decoder" else None
    prompt = None if src is not None else _tokens(4, 3)
    a = R.generate(model, src=src, prompt=prompt, max_new_tokens=8)
    b = R.generate(model, src=src, prompt=prompt, max_new_tokens=8, use_cache=False)
    assert torch.equal(a, b)


def test_greedy_picks_the_most_probable_token_and_stops_at_end() -> None:
    torch.manual_seed(2)
    model = R.build_model(tiny_config("decoder_only")).eval()
    end = model.config.special.end
    with torch.no_grad():  # make <END> the only likely token after position 3
        model.unembed.W.weight.zero_()
        model.unembed.W.weight[end] = 0.0
    prompt = _tokens(2, 3)
    out = R.generate(model, prompt=prompt, max_new_tokens=5)
    logits = model(prompt)[:, -1]
    assert torch.equal(out[:, 3], logits.argmax(-1))
    assert out.shape[1] <= 3 + 5


def test_generation_pads_after_end_and_stops_when_all_ended() -> None:
    torch.manual_seed(3)
    model = R.build_model(
        tiny_config("decoder_only", unembedding_bias=True, tie_unembedding=False)
    ).eval()
    special = model.config.special
    with torch.no_grad():
        model.unembed.W.weight.zero_()
        bias = model.unembed.W.bias
        assert bias is not None
        bias.zero_()
        bias[special.end] = 10.0
    out = R.generate(model, prompt=_tokens(2, 2), max_new_tokens=6)
    assert out.shape == (2, 3) and bool((out[:, 2] == special.end).all())


def test_sampling_is_reproducible_and_top_k_one_is_greedy() -> None:
    torch.manual_seed(4)
    model = R.build_model(tiny_config("decoder_only")).eval()
    prompt = _tokens(3, 2)
    draw = [
        R.generate(
            model,
            prompt=prompt,
            max_new_tokens=6,
            sample=True,
            temperature=0.7,
            generator=torch.Generator().manual_seed(9),
        )
        for _ in range(2)
    ]
    assert torch.equal(draw[0], draw[1])
    top1 = R.generate(model, prompt=prompt, max_new_tokens=6, sample=True, top_k=1)
    assert torch.equal(top1, R.generate(model, prompt=prompt, max_new_tokens=6))


def test_loss_ignores_padding_labels() -> None:
    torch.manual_seed(5)
    model = R.build_model(tiny_config("decoder_only")).eval()
    tokens = _tokens(2, 6)
    tokens[0, 4:] = model.config.special.pad
    loss = R.teacher_forced_loss(model, tokens)
    logits = model(tokens[:, :-1])
    labels = tokens[:, 1:]
    keep = labels != model.config.special.pad
    manual = torch.nn.functional.cross_entropy(logits[keep], labels[keep])
    torch.testing.assert_close(loss, manual)


def test_loss_refuses_a_batch_of_only_padding() -> None:
    model = R.build_model(tiny_config("decoder_only"))
    with pytest.raises(ValueError, match=r"^tokens: every label is <PAD>"):
        R.teacher_forced_loss(model, torch.tensor([[5, 0, 0]]))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("path", ["math", "fused"])
def test_every_shape_runs_in_every_dtype_close_to_float64(
    device: str, dtype: torch.dtype, shape: str, path: str
) -> None:
    torch.manual_seed(6)
    ref = R.build_model(tiny_config(shape, dtype=torch.float64, device=device)).eval()
    model = R.build_model(
        tiny_config(shape, dtype=dtype, device=device, attention_path=path)
    ).eval()
    model.load_state_dict(ref.state_dict())
    src, tgt = _tokens(2, 5).to(device), _tokens(2, 6, seed=1).to(device)
    want, got = _logits(ref, tgt, src), _logits(model, tgt, src)
    assert got.dtype == dtype and bool(torch.isfinite(got).all())
    rel = ((got.double() - want).abs().max() / want.abs().max()).item()
    assert (
        rel
        <= {torch.float64: 1e-12, torch.float32: 1e-5, torch.bfloat16: 5e-2, torch.float16: 5e-3}[
            dtype
        ]
    )


def test_dropout_is_off_in_eval_mode() -> None:
    model = R.build_model(tiny_config("decoder_only", dropout=0.5)).eval()
    tokens = _tokens(2, 5)
    assert torch.equal(model(tokens), model(tokens))
    model.train()
    assert not torch.equal(model(tokens), model(tokens))


def test_left_padding_is_invisible_to_a_decoder() -> None:
    # No positional encoding, so [<PAD>, <PAD>, x] must give at x what [x] gives.
    torch.manual_seed(7)
    model = R.build_model(tiny_config("decoder_only", positional="none")).eval()
    tokens = _tokens(2, 4)
    padded = torch.cat([torch.zeros(2, 3, dtype=torch.long), tokens], dim=1)
    torch.testing.assert_close(model(padded)[:, 3:], model(tokens), rtol=0, atol=1e-5)


@pytest.mark.parametrize("shape", ["encoder_decoder", "encoder_only"])
def test_right_padding_of_the_source_is_invisible(shape: str) -> None:
    torch.manual_seed(8)
    model = R.build_model(tiny_config(shape)).eval()
    src, tgt = _tokens(2, 5), _tokens(2, 4, seed=1)
    padded = torch.cat([src, torch.zeros(2, 3, dtype=torch.long)], dim=1)
    if isinstance(model, R.EncoderDecoderModel):
        torch.testing.assert_close(model(padded, tgt), model(src, tgt), rtol=0, atol=1e-5)
    else:
        torch.testing.assert_close(model(padded)[:, :5], model(src), rtol=0, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float64])
def test_probabilities_of_any_shape_are_a_float32_softmax_rounded_once(dtype: torch.dtype) -> None:
    # Sampling passes float32 (batch, vocab) logits only, so no property sees these branches.
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 11).to(dtype)
    p = R.probabilities(logits)
    acc = torch.float32 if dtype != torch.float64 else torch.float64
    assert p.dtype == dtype
    assert torch.equal(p, torch.softmax(logits.to(acc), dim=-1).to(dtype))


def test_padded_target_keys_get_no_self_attention_weight() -> None:
    # Right padding under the causal mask: only the queries at <PAD> positions could see a
    # <PAD> key, so no property of outputs at real positions shows this mask.
    torch.manual_seed(6)
    model = R.build_model(tiny_config()).eval()
    assert isinstance(model, R.EncoderDecoderModel)
    tgt = _tokens(2, 6)
    tgt[0, 3:] = model.config.special.pad
    layers = [layer.self_attn for layer in model.decoder.layers]
    for attention in layers:
        assert isinstance(attention, R.MultiHeadAttention)
        attention.record_weights = True
    model.decode(tgt, *model.encode(_tokens(2, 4)))
    for attention in layers:
        assert isinstance(attention, R.MultiHeadAttention) and attention.last_weights is not None
        assert not attention.last_weights[0, :, :, 3:].any()


def test_teacher_forcing_on_two_positions_and_in_low_precision() -> None:
    torch.manual_seed(7)
    model = R.build_model(tiny_config("decoder_only", dtype=torch.bfloat16)).eval()
    tokens = _tokens(2, 2)
    loss = R.teacher_forced_loss(model, tokens)
    logits = model(tokens[:, :-1]).float()  # bfloat16 logits are scored in float32
    assert loss.dtype == torch.float32
    assert torch.equal(loss, torch.nn.functional.cross_entropy(logits[:, 0], tokens[:, 1]))


def test_sampling_with_top_k_draws_from_the_k_most_probable_only() -> None:
    torch.manual_seed(8)
    model = R.build_model(tiny_config("decoder_only")).eval()
    prompt = _tokens(2, 3)
    top3 = model(prompt)[:, -1].topk(3, dim=-1).indices
    for seed in range(20):
        step = R.generate(
            model,
            prompt=prompt,
            max_new_tokens=1,
            sample=True,
            top_k=3,
            generator=torch.Generator().manual_seed(seed),
        )[:, -1:]
        assert (step == top3).any(dim=-1).all()
    # top_k may be the whole vocabulary
    R.generate(model, prompt=prompt, max_new_tokens=1, sample=True, top_k=23)


def test_a_temperature_near_zero_samples_the_greedy_tokens() -> None:
    torch.manual_seed(9)
    model = R.build_model(tiny_config("decoder_only")).eval()
    prompt = _tokens(4, 3)
    cold = R.generate(
        model,
        prompt=prompt,
        max_new_tokens=6,
        sample=True,
        temperature=1e-6,
        generator=torch.Generator().manual_seed(0),
    )
    assert torch.equal(cold, R.generate(model, prompt=prompt, max_new_tokens=6))


def test_generation_may_fill_the_positions_table_and_without_one_go_past_it() -> None:
    model = R.build_model(tiny_config("decoder_only")).eval()  # max_len 24
    assert R.generate(model, prompt=_tokens(1, 20), max_new_tokens=4).shape == (1, 24)
    unbounded = R.build_model(tiny_config("decoder_only", positional="none", max_len=8)).eval()
    assert R.generate(unbounded, prompt=_tokens(1, 4), max_new_tokens=10).shape == (1, 14)


def test_the_cache_keeps_the_encoder_keys_and_values_from_the_first_step() -> None:
    # spec: XATTN-ENCODER-ONCE. Recomputing them every step gives the same values, so only
    # the cache's content shows whether they were kept.
    torch.manual_seed(10)
    model = R.build_model(tiny_config()).eval()
    assert isinstance(model, R.EncoderDecoderModel)
    memory = model.encode(_tokens(2, 4))
    cache = model.new_cache()
    model.decode(_tokens(2, 1), *memory, cache=cache)
    kept = [(layer.cross_attn.k, layer.cross_attn.v) for layer in cache.layers]
    assert all(k is not None and v is not None for k, v in kept)
    model.decode(_tokens(2, 1, seed=1), *memory, cache=cache)
    assert all(
        layer.cross_attn.k is k and layer.cross_attn.v is v
        for layer, (k, v) in zip(cache.layers, kept, strict=True)
    )


def test_config_accepts_the_smallest_concat_width() -> None:
    tiny_config(positional="sinusoidal_concat", d_model=4, n_heads=1)
    tiny_config(positional="sinusoidal_concat")  # d_model 32


def test_a_sequence_may_fill_the_positions_table_and_without_one_go_past_it() -> None:
    model = R.build_model(tiny_config("decoder_only")).eval()  # max_len 24
    assert model(_tokens(1, 24)).shape == (1, 24, 23)
    encoder = R.build_model(tiny_config("encoder_only")).eval()
    assert isinstance(encoder, R.EncoderOnlyModel)
    assert encoder.encode(_tokens(1, 24)).shape == (1, 24, 32)
    unbounded = R.build_model(tiny_config("decoder_only", positional="none", max_len=8)).eval()
    assert unbounded(_tokens(1, 12)).shape == (1, 12, 23)


def test_embedding_scale_follows_the_config() -> None:
    for scaled in (True, False):
        model = R.build_model(tiny_config(scale_embedding=scaled))
        assert model.embed.tokens.scale == (32**0.5 if scaled else 1.0)
