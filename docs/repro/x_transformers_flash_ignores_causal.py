"""x-transformers 2.31.10: Attend(flash=True) ignores the per-call `causal=True` argument
(Attend.forward does not pass `causal` on to flash_attn), so every query sees future keys;
the einsum path (flash=False) honours it. Attention(flash=True).forward(x, causal=True) too.

    python docs/repro/x_transformers_flash_ignores_causal.py
"""

import torch
import torch.nn.functional as F
from x_transformers.attend import Attend  # type: ignore[import-untyped]
from x_transformers.x_transformers import Attention  # type: ignore[import-untyped]

torch.manual_seed(0)
q, k, v = (torch.randn(1, 2, 5, 8) for _ in range(3))
expected = F.scaled_dot_product_attention(q, k, v, is_causal=True)
for flash in (False, True):
    out, _ = Attend(flash=flash)(q, k, v, causal=True)
    error = (out - expected).abs().max()
    print(f"Attend(flash={flash}), causal=True: max |out - causal| = {error:.3g}")

x = torch.randn(1, 5, 16)
for flash in (False, True):
    torch.manual_seed(0)
    module = Attention(16, dim_head=8, heads=2, flash=flash).eval()
    changed = x.clone()
    changed[:, 1:] += 10.0  # change every position after the first
    first = module(x, causal=True)[:, 0] - module(changed, causal=True)[:, 0]
    print(f"Attention(flash={flash})(x, causal=True): position 0 moved by {first.abs().max():.3g}")
