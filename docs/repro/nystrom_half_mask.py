"""nystrom-attention 0.0.14: with a mask, a bfloat16 or float16 module raises "expected
scalar type BFloat16 but found Float": part of its computation runs in float32.

    python docs/repro/nystrom_half_mask.py
"""

import torch
from nystrom_attention import NystromAttention  # type: ignore[import-untyped]

attention = NystromAttention(dim=16, dim_head=4, heads=4, num_landmarks=4, residual=False).eval()
attention = attention.to(torch.bfloat16)
x = torch.randn(1, 8, 16, dtype=torch.bfloat16)
try:
    attention(x, mask=torch.ones(1, 8, dtype=torch.bool))
except RuntimeError as err:
    print(f"bfloat16 with a mask: RuntimeError: {err}")
