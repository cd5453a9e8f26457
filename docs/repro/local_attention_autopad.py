"""local-attention 1.11.2: LocalAttention(autopad=True), not causal, with no mask attends to
the zero keys and values it pads the sequence with, so the output is pulled towards zero.
Passing an all-True mask (or causal=True) hides the padding and gives softmax(QK^T/sqrt(d))V.

    python docs/repro/local_attention_autopad.py
"""

import torch
import torch.nn.functional as F
from local_attention.local_attention import LocalAttention  # type: ignore[import-untyped]

torch.manual_seed(0)
q, k, v = (torch.randn(1, 3, 8) for _ in range(3))  # 3 positions, padded to a window of 4
attention = LocalAttention(window_size=4, autopad=True, use_rotary_pos_emb=False)
expected = F.scaled_dot_product_attention(q, k, v)
no_mask = attention(q, k, v)
all_true = attention(q, k, v, mask=torch.ones(1, 3, dtype=torch.bool))
print(f"no mask:       max |out - softmax(QK^T/sqrt(d))V| = {(no_mask - expected).abs().max():.3g}")
print(
    f"all-True mask: max |out - softmax(QK^T/sqrt(d))V| = {(all_true - expected).abs().max():.3g}"
)
