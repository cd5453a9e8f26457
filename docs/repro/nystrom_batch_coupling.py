"""nystrom-attention 0.0.14: the output for one batch item depends on the other items (the
Moore-Penrose iteration starts from a scale taken as a maximum over the whole batch), so a
sequence's result changes with what it is batched with. The landmarks are means of
contiguous segments, so permuting the sequence does not permute the output either (a design
choice, shown second).

    python docs/repro/nystrom_batch_coupling.py
"""

import torch
from nystrom_attention import NystromAttention  # type: ignore[import-untyped]

torch.manual_seed(0)
attention = NystromAttention(dim=16, dim_head=4, heads=4, num_landmarks=4, residual=False).eval()
x = torch.randn(2, 8, 16)
changed = x.clone()
changed[1] *= 3  # change only batch item 1
mask = torch.ones(2, 8, dtype=torch.bool)
with torch.no_grad():
    item0, item0_changed = attention(x, mask=mask)[0], attention(changed, mask=mask)[0]
    order = torch.tensor([0, 1, 2, 4, 3, 5, 6, 7])  # across two landmark segments
    permuted = attention(x[:, order], mask=mask)[:, order.argsort()]
print(f"max |change| of item 0 when only item 1 changes: {(item0 - item0_changed).abs().max():.3g}")
print(
    "max |out(permuted x) unpermuted - out(x)|:",
    f"{(permuted - attention(x, mask=mask)).abs().max():.3g}",
)
