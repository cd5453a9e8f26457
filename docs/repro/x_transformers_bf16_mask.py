"""x-transformers 2.31.10: a bfloat16 Attention given a padding mask returns float32
(`einx.where(mask, out, 0.)` promotes), so a bfloat16 TransformerWrapper called with
mask= fails in the next layer: "mat1 and mat2 must have the same dtype".

    python docs/repro/x_transformers_bf16_mask.py
"""

import torch
from x_transformers import Decoder, TransformerWrapper  # type: ignore[import-untyped]
from x_transformers.x_transformers import Attention  # type: ignore[import-untyped]

x = torch.randn(1, 3, 16, dtype=torch.bfloat16)
mask = torch.tensor([[True, True, False]])
attention = Attention(16, dim_head=8, heads=2).to(torch.bfloat16)
print("Attention, no mask:  ", attention(x).dtype)
print("Attention, with mask:", attention(x, mask=mask).dtype)
net = TransformerWrapper(num_tokens=8, max_seq_len=8, attn_layers=Decoder(dim=16, depth=1, heads=2))
net = net.to(torch.bfloat16)
tokens = torch.tensor([[1, 5, 0]])
print("TransformerWrapper, no mask:", net(tokens).dtype)
try:
    net(tokens, mask=tokens != 0)
except RuntimeError as err:
    print("TransformerWrapper, with mask: RuntimeError:", err)
