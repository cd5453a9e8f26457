"""Hypothesis strategies, exported for users.

Cases are small frozen dataclasses of shapes plus a seed; tensors are generated from the seed
in float64 and rounded once to the dtype under test. Hypothesis then shrinks shapes and seed
to a readable counterexample (e.g. batch=1, heads=1, q_len=2, k_len=2, seed=0), and drawing
a seed instead of every float keeps the suite fast.
"""

from dataclasses import dataclass

import torch
from hypothesis import strategies as st
from torch import Tensor


@dataclass(frozen=True)
class AttentionCase:
    batch: int
    heads: int
    q_len: int
    k_len: int
    d_k: int
    d_v: int
    seed: int
    scale: float = 1.0  # std of q and k entries; larger values sharpen the softmax

    def qkv(self, dtype: torch.dtype, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
        g = torch.Generator().manual_seed(self.seed)
        b, h = self.batch, self.heads
        q = torch.randn(b, h, self.q_len, self.d_k, generator=g, dtype=torch.float64) * self.scale
        k = torch.randn(b, h, self.k_len, self.d_k, generator=g, dtype=torch.float64) * self.scale
        v = torch.randn(b, h, self.k_len, self.d_v, generator=g, dtype=torch.float64)
        return tuple(t.to(device=device, dtype=dtype) for t in (q, k, v))  # type: ignore[return-value]


def attention_cases(
    *,
    max_batch: int = 2,
    max_heads: int = 3,
    max_len: int = 9,
    max_width: int = 16,
    equal_lengths: bool = False,
    min_q_len: int = 1,
    min_k_len: int = 1,
    scales: tuple[float, ...] = (1.0, 3.0),
) -> st.SearchStrategy[AttentionCase]:
    """Shapes for attention inputs. `equal_lengths` ties k_len to q_len (self-attention)."""

    @st.composite
    def build(draw: st.DrawFn) -> AttentionCase:
        q_len = draw(st.integers(min_q_len, max_len))
        k_len = q_len if equal_lengths else draw(st.integers(min_k_len, max_len))
        return AttentionCase(
            batch=draw(st.integers(1, max_batch)),
            heads=draw(st.integers(1, max_heads)),
            q_len=q_len,
            k_len=k_len,
            d_k=draw(st.integers(1, max_width)),
            d_v=draw(st.integers(1, max_width)),
            seed=draw(st.integers(0, 2**16)),
            scale=draw(st.sampled_from(scales)),
        )

    return build()


def key_keep(
    batch: int, k_len: int, *, min_kept: int = 1
) -> st.SearchStrategy[tuple[tuple[bool, ...], ...]]:
    """Per batch item, which keys are real (True) and which are padding: any pattern with
    at least `min_kept` real keys per item."""
    row = st.lists(st.booleans(), min_size=k_len, max_size=k_len).filter(
        lambda r: sum(r) >= min_kept
    )
    return st.lists(row.map(tuple), min_size=batch, max_size=batch).map(tuple)


def keep_tensor(keep: tuple[tuple[bool, ...], ...], q_len: int, device: torch.device) -> Tensor:
    """(batch, k_len) key-keep flags as a (batch, 1, q_len, k_len) 'may attend' mask."""
    t = torch.tensor(keep, dtype=torch.bool, device=device)
    return t[:, None, None, :].expand(-1, 1, q_len, -1)


def causal_attends(q_len: int, k_len: int, alignment: str, device: torch.device) -> Tensor:
    """(q_len, k_len) 'may attend' under the given causal alignment. Written again rather
    than imported from the reference, so that a bug there cannot pass against itself."""
    shift = k_len - q_len if alignment == "bottom_right" else 0
    i = torch.arange(q_len, device=device)[:, None]
    j = torch.arange(k_len, device=device)[None, :]
    return j <= i + shift


@dataclass(frozen=True)
class TokenCase:
    batch: int
    length: int
    seed: int

    def tokens(self, vocab_size: int, first: int, device: torch.device) -> Tensor:
        """Token ids in [first, vocab_size): real tokens, no special ids."""
        g = torch.Generator().manual_seed(self.seed)
        return torch.randint(first, vocab_size, (self.batch, self.length), generator=g).to(device)


def token_cases(
    *, max_batch: int = 3, min_len: int = 2, max_len: int = 8
) -> st.SearchStrategy[TokenCase]:
    return st.builds(
        TokenCase,
        batch=st.integers(1, max_batch),
        length=st.integers(min_len, max_len),
        seed=st.integers(0, 2**16),
    )
