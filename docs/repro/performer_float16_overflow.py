"""performer-pytorch 1.1.4: FAVOR+'s positive features exp(w.x - |x|^2 / 2 - max) overflow
in float16 for inputs of ordinary size, so the module returns inf and NaN from finite inputs.

    python docs/repro/performer_float16_overflow.py
"""

import torch
from performer_pytorch import CrossAttention  # type: ignore[import-untyped]

torch.manual_seed(0)
attention = CrossAttention(dim=16, heads=4, dim_head=4, nb_features=64).eval().half()
x, context = torch.randn(1, 3, 16) * 4, torch.randn(1, 5, 16) * 4
with torch.no_grad():
    out = attention(x.half(), context=context.half())
print(f"float16: {int((~out.isfinite()).sum())} non-finite of {out.numel()} outputs")
