"""Token embedding: a lookup table M of shape (vocab, d_model).

Looking up row t of M equals multiplying the one-hot vector of t by M (spec EMB-ONE-HOT).
"""

import math

import torch
from jaxtyping import Float, Int
from torch import Tensor, nn


def one_hot_embed(
    tokens: Int[Tensor, "*batch seq"], M: Float[Tensor, "vocab d_model"]
) -> Float[Tensor, "*batch seq d_model"]:
    """The embedding written as the notes state it: one_hot(tokens) @ M."""
    one_hot = torch.nn.functional.one_hot(tokens, num_classes=M.shape[0]).to(M.dtype)
    return one_hot @ M


class TokenEmbedding(nn.Module):
    """Lookup table, optionally scaled by sqrt(d_model) as in the paper (section 3.4)."""

    def __init__(
        self,
        vocab_size: int,
        d_model: int,
        *,
        scale: bool = False,
    ) -> None:
        super().__init__()
        self.M = nn.Parameter(torch.empty(vocab_size, d_model))
        self.scale = math.sqrt(d_model) if scale else 1.0
        nn.init.normal_(self.M, std=d_model**-0.5 if scale else 0.02)

    @torch.no_grad()
    def load_pretrained(
        self, matrix: Float[Tensor, "vocab d_model"], *, freeze: bool = False
    ) -> None:
        """Start from a given matrix (GloVe, word2vec, ...) and keep training it unless frozen
        (spec EMB-PRETRAINED-INIT)."""
        if not isinstance(matrix, Tensor):
            raise TypeError(f"matrix: expected a Tensor, got {type(matrix).__name__}")
        if tuple(matrix.shape) != tuple(self.M.shape):
            raise ValueError(
                f"matrix: expected shape (vocab, d_model) = {tuple(self.M.shape)}, "
                f"got {tuple(matrix.shape)}"
            )
        if not matrix.is_floating_point():
            raise TypeError(f"matrix: expected a floating-point tensor, got {matrix.dtype}")
        self.M.copy_(matrix)
        self.M.requires_grad_(not freeze)

    def forward(self, tokens: Int[Tensor, "batch seq"]) -> Float[Tensor, "batch seq d_model"]:
        x = self.M[tokens]
        return x * self.scale if self.scale != 1.0 else x
