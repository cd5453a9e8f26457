"""diffusers 0.42.1: Attention(is_causal=True) stores the flag, but its default processor
(AttnProcessor2_0) never passes it on, so the module attends to later tokens: the output
at position 0 changes when only position 4 changes.

    python docs/repro/diffusers_is_causal_ignored.py
"""

import torch
from diffusers.models.attention_processor import Attention  # type: ignore[import-untyped]

torch.manual_seed(0)
attention = Attention(16, heads=4, dim_head=4, is_causal=True).eval()
x = torch.randn(1, 5, 16)
changed = x.clone()
changed[:, 4] *= 10  # change only the last position
with torch.no_grad():
    first, first_changed = attention(x)[:, 0], attention(changed)[:, 0]
print(f"is_causal={attention.is_causal}, processor {type(attention.processor).__name__}")
print(
    "max |change| at position 0 when only position 4 changes:",
    f"{(first - first_changed).abs().max():.3g}",
)
