"""x-transformers 2.31.10: a query row that sees no key gets zeros when the padding mask alone
hides every key, but not when padding and causal masking together do. Then the output is
the mean of all values, future ones included, in float32, and NaN in float64 (the fill value
-finfo(float64).max overflows to -inf in the float32 softmax). The weights of a row with no
visible key are NaN in float64 in both cases.

    python docs/repro/x_transformers_masked_row.py
"""

import torch
from x_transformers.attend import Attend  # type: ignore[import-untyped]

torch.manual_seed(0)
for dtype in (torch.float32, torch.float64):
    q, k, v = (torch.randn(1, 1, 3, 4, dtype=dtype) for _ in range(3))
    none = torch.tensor([[False, False, False]])  # padding hides every key
    first = torch.tensor([[False, True, True]])  # key 0 padded; causal hides 1, 2 from query 0
    out, inter = Attend()(q, k, v, mask=none)
    print(f"{dtype}: padding only, query 0 -> {out[0, 0, 0].tolist()} (zeros)")
    print(f"{dtype}: padding only, its weights -> {inter.post_softmax_attn[0, 0, 0].tolist()}")
    out, _ = Attend()(q, k, v, mask=first, causal=True)
    print(f"{dtype}: padding + causal, query 0 -> {out[0, 0, 0].tolist()}")
    print(f"{dtype}: mean of all values       -> {v[0, 0].mean(0).tolist()}")
