"""Token embedding: a lookup table equal to one-hot times M, trainable, optionally pretrained."""

import math

import torch
import transformer_spec.reference as R

from .conftest import tiny_config


def test_lookup_equals_one_hot_times_M() -> None:
    emb = R.TokenEmbedding(11, 6).double()
    tokens = torch.randint(0, 11, (3, 5))
    torch.testing.assert_close(emb(tokens), R.one_hot_embed(tokens, emb.M), rtol=0, atol=0)


def test_matrix_is_vocab_by_d_model_and_a_token_is_one_row() -> None:
    # spec: EMB-SHAPE
    base = R.base_config()
    emb = R.TokenEmbedding(base.vocab_size, base.d_model)
    assert emb.M.shape == (base.vocab_size, 512)
    tokens = torch.tensor([[0, 5, base.vocab_size - 1]])
    out = emb(tokens)
    assert out.shape == (1, 3, 512)  # one vector of width d_model per token
    torch.testing.assert_close(out[0, 1], emb.M[5], rtol=0, atol=0)
    config = tiny_config()
    assert R.build_model(config).embed.tokens.M.shape == (config.vocab_size, config.d_model)


def test_scaled_embedding_multiplies_by_sqrt_d_model() -> None:
    emb = R.TokenEmbedding(11, 16, scale=True)
    tokens = torch.tensor([[3, 4]])
    torch.testing.assert_close(emb(tokens), emb.M[tokens] * math.sqrt(16))


def test_pretrained_matrix_is_loaded_and_keeps_training() -> None:
    # spec: EMB-INIT, EMB-TRAINABLE
    emb = R.TokenEmbedding(5, 4)
    pretrained = torch.arange(20, dtype=torch.float32).reshape(5, 4)
    emb.load_pretrained(pretrained)
    assert torch.equal(emb.M.detach(), pretrained)
    opt = torch.optim.SGD(emb.parameters(), lr=0.1)
    emb(torch.tensor([[1, 2]])).sum().backward()
    opt.step()
    assert not torch.equal(emb.M[1].detach(), pretrained[1])
    assert torch.equal(emb.M[0].detach(), pretrained[0])  # a row not in the batch is untouched


def test_pretrained_matrix_can_be_frozen() -> None:
    emb = R.TokenEmbedding(5, 4)
    emb.load_pretrained(torch.ones(5, 4), freeze=True)
    assert not emb.M.requires_grad


def test_one_hot_has_a_column_for_every_id_even_unused_ones() -> None:
    M = torch.randn(5, 3, dtype=torch.float64)
    torch.testing.assert_close(R.one_hot_embed(torch.tensor([[0, 1]]), M), M[None, :2])


def test_initial_scale_of_the_matrix() -> None:
    # std 0.02 (GPT-2), or d_model ** -0.5 when the lookup is scaled by sqrt(d_model), so that
    # scaled rows start with unit variance (the paper's shared-matrix convention).
    torch.manual_seed(0)
    plain, scaled = R.TokenEmbedding(2000, 64), R.TokenEmbedding(2000, 64, scale=True)
    assert abs(float(plain.M.detach().std()) - 0.02) < 0.001
    assert abs(float(scaled.M.detach().std()) - 64**-0.5) < 0.005
