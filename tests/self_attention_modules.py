"""Self-attention modules as people write them (forward(x) -> y), for the self-attention
adapter's tests: nanoGPT's CausalSelfAttention (fused c_attn, SDPA is_causal=True), the same
written out by hand with its weights and a key padding mask, and an encoder's attention
(never causal, separate q/k/v projections). Each `*_target` is the whole declaration."""

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformer_spec.properties import Conventions, Target
from transformer_spec.properties.targets.adapters.self_attention import self_attention_target


class CausalSelfAttention(nn.Module):
    """nanoGPT's model.py CausalSelfAttention (flash path), dropout left out."""

    def __init__(self, n_embd: int, n_head: int) -> None:
        super().__init__()
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)  # key, query, value for all heads
        self.c_proj = nn.Linear(n_embd, n_embd)
        self.n_head, self.n_embd = n_head, n_embd

    def heads(self, t: Tensor) -> Tensor:
        B, T, C = t.size()
        return t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)

    def qkv(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        return self.heads(q), self.heads(k), self.heads(v)

    def forward(self, x: Tensor) -> Tensor:
        B, T, C = x.size()
        q, k, v = self.qkv(x)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # re-assemble all head outputs
        out: Tensor = self.c_proj(y)
        return out


class ManualCausalSelfAttention(CausalSelfAttention):
    """nanoGPT's slow path (att = softmax(masked q k^T / sqrt(hs))), returning the weights,
    with an optional key padding mask (b, T), True = may attend; a row with no visible key
    gets zero weights."""

    def forward(  # type: ignore[override]
        self, x: Tensor, key_padding: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        B, T, C = x.size()
        q, k, v = self.qkv(x)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        mask = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
        if key_padding is not None:
            mask = mask & key_padding[:, None, None, :]
        att = F.softmax(att.masked_fill(~mask, float("-inf")), dim=-1).nan_to_num(0.0)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        out: Tensor = self.c_proj(y)
        return out, att


class EncoderSelfAttention(nn.Module):
    """A bidirectional encoder's attention: separate q/k/v projections, never causal,
    key padding True = padded (torch.nn's polarity), weights returned per head."""

    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (
            nn.Linear(d_model, d_model) for _ in range(4)
        )
        self.h = n_heads

    def forward(self, x: Tensor, padded: Tensor | None = None) -> tuple[Tensor, Tensor]:
        b, n, d = x.shape
        q, k, v = (
            p(x).view(b, n, self.h, d // self.h).transpose(1, 2)
            for p in (self.q_proj, self.k_proj, self.v_proj)
        )
        scores = q @ k.transpose(-2, -1) / math.sqrt(d // self.h)
        if padded is not None:
            scores = scores.masked_fill(padded[:, None, None, :], float("-inf"))
        w = scores.softmax(-1).nan_to_num(0.0)
        out: Tensor = self.out_proj((w @ v).transpose(1, 2).reshape(b, n, d))
        return out, w


def nanogpt_target() -> Target:
    return self_attention_target("nanogpt-attention", CausalSelfAttention, causal="always")


def nanogpt_manual_target() -> Target:
    return self_attention_target(
        "nanogpt-attention-manual",
        ManualCausalSelfAttention,
        causal="always",
        padding="key_padding",
        conventions=Conventions(),  # the reference's: weights per head, True = may attend
    )


def encoder_target() -> Target:
    return self_attention_target(
        "encoder-attention",
        EncoderSelfAttention,
        causal="never",
        qkv=("q_proj", "k_proj", "v_proj"),
        out="out_proj",
        padding="padded",
        conventions=Conventions(
            mask_polarity="true_blocks", explanations={"mask_polarity": "True = padded"}
        ),
    )
