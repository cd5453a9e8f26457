"""performer-pytorch 1.1.4: a key padding mask (`context_mask=` / `mask=`) zeroes the padded
values but leaves the padded keys in FAVOR+'s normaliser, so what a padded key holds changes
the output of every real query.

    python docs/repro/performer_padding_leak.py
"""

import torch
from performer_pytorch import CrossAttention  # type: ignore[import-untyped]

torch.manual_seed(0)
attention = CrossAttention(dim=16, heads=4, dim_head=4, nb_features=64).eval()
x, context = torch.randn(1, 3, 16), torch.randn(1, 5, 16)
keep = torch.tensor([[True, True, True, False, False]])  # the last two keys are padding
changed = context.clone()
changed[:, 3:] *= 5  # change only what the padded keys hold
with torch.no_grad():
    out = attention(x, context=context, context_mask=keep)
    out_changed = attention(x, context=changed, context_mask=keep)
print(
    "max |change| of real outputs when only padded keys change:",
    f"{(out - out_changed).abs().max():.3g}",
)
