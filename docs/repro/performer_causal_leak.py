"""performer-pytorch 1.1.4: SelfAttention(causal=True) lets later tokens change earlier
outputs: the output at position 0 moves when only position 4 changes (the kernel's
numerical stabiliser is a maximum over the whole sequence, future positions included).

    python docs/repro/performer_causal_leak.py
"""

import torch
from performer_pytorch import SelfAttention  # type: ignore[import-untyped]

torch.manual_seed(0)
attention = SelfAttention(dim=16, heads=4, dim_head=4, nb_features=64, causal=True).eval()
x = torch.randn(1, 5, 16, dtype=torch.float64)
attention.double()
changed = x.clone()
changed[:, 4] *= 10  # change only the last position
with torch.no_grad():
    first, first_changed = attention(x)[:, 0], attention(changed)[:, 0]
print(
    "max |change| at position 0 when only position 4 changes:",
    f"{(first - first_changed).abs().max():.3g}",
)
