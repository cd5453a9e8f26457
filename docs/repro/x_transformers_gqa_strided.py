"""x-transformers 2.31.10: Attention(heads=h, kv_heads=g) shares key/value head i mod g with
query head i (a tiled repeat, 'b kvh n d -> b (r kvh) n d'), where the GQA paper and Llama's
repeat_kv give query heads j*h/g .. (j+1)*h/g - 1 to head j. A grouped-query checkpoint
(Llama, Mistral, Qwen2) loaded as it is therefore computes something else; its key/value
heads would have to be permuted first. Below: the module against both groupings, in float64.

    python docs/repro/x_transformers_gqa_strided.py
"""

import torch
from x_transformers.x_transformers import Attention  # type: ignore[import-untyped]

torch.manual_seed(0)
h, g, d_k = 4, 2, 4
attention = Attention(h * d_k, heads=h, kv_heads=g, dim_head=d_k).double().eval()
x = torch.randn(1, 5, h * d_k, dtype=torch.float64)


def grouped(source: list[int]) -> torch.Tensor:
    """Multi-head attention where query head i reads key/value head source[i]."""
    q = (x @ attention.to_q.weight.T).view(1, 5, h, d_k).transpose(1, 2)
    k = (x @ attention.to_k.weight.T).view(1, 5, g, d_k).transpose(1, 2)[:, source]
    v = (x @ attention.to_v.weight.T).view(1, 5, g, d_k).transpose(1, 2)[:, source]
    w = torch.softmax(q @ k.transpose(-2, -1) / d_k**0.5, dim=-1)
    return (w @ v).transpose(1, 2).reshape(1, 5, h * d_k) @ attention.to_out.weight.T


with torch.no_grad():
    out = attention(x)
consecutive = [i * g // h for i in range(h)]  # [0, 0, 1, 1]: the GQA paper, repeat_kv
strided = [i % g for i in range(h)]  # [0, 1, 0, 1]
print(f"vs consecutive groups {consecutive}: {(out - grouped(consecutive)).abs().max():.3g}")
print(f"vs strided groups {strided}: {(out - grouped(strided)).abs().max():.3g}")
