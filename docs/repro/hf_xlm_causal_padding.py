"""transformers 5.23.0: XLM built as a causal LM (`causal=True`) ignores its padding mask in
attention: `get_masks` returns the causal triangle alone as the attention mask, so the real
tokens of a left-padded sequence attend to the <PAD> positions before them, and their logits
change with the amount of padding (right padding hides nothing a causal mask does not).

    python docs/repro/hf_xlm_causal_padding.py
"""

import torch
from transformers import XLMConfig, XLMWithLMHeadModel

config = XLMConfig(vocab_size=32, emb_dim=16, n_layers=1, n_heads=2, causal=True, pad_index=0)
torch.manual_seed(0)
model = XLMWithLMHeadModel(config).eval()
model.transformer.position_embeddings.weight.data.zero_()  # no positions: a shift changes nothing
real, padded = torch.tensor([[5, 6, 7]]), torch.tensor([[0, 0, 5, 6, 7]])
with torch.no_grad():
    alone = model(real, attention_mask=torch.ones_like(real)).logits
    left = model(padded, attention_mask=(padded != 0).long()).logits[:, 2:]
moved = float((alone - left).abs().max())
print(f"left padding moves the real tokens' logits by {moved:.3g} (0 expected)")
