"""bert-pytorch 0.0.1a4: MultiHeadedAttention fills masked scores with -1e9, which float16
cannot hold, so any masked call in float16 raises.

    python docs/repro/bert_float16_mask_fill.py
"""

import torch
from bert_pytorch.model.attention import MultiHeadedAttention  # type: ignore[import-untyped]

attention = MultiHeadedAttention(h=4, d_model=16).eval().half()
x = torch.randn(1, 3, 16, dtype=torch.float16)
keep = torch.tensor([[[[True, True, False]]]])  # (b, 1, 1, k): the last key is padding
try:
    attention(x, x, x, mask=keep)
except RuntimeError as err:
    print(f"float16 with a mask: RuntimeError: {err}")
