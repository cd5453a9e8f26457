"""transformers 5.23.0: XLNet built unidirectional (`attn_type="uni"`, its causal-LM mode)
cannot take an attention mask: for a batch of two the mask it builds does not broadcast
(RuntimeError), where the bidirectional default and the unmasked call run.

    python docs/repro/hf_xlnet_uni_mask.py
"""

import torch
from transformers import XLNetConfig, XLNetLMHeadModel

config = XLNetConfig(vocab_size=32, d_model=16, n_layer=1, n_head=2, d_inner=32, attn_type="uni")
torch.manual_seed(0)
model = XLNetLMHeadModel(config).eval()
tokens = torch.tensor([[5, 6, 7], [8, 9, 10]])
with torch.no_grad():
    print("without a mask:", tuple(model(tokens).logits.shape))
    try:
        model(tokens, attention_mask=torch.ones_like(tokens))
    except RuntimeError as err:
        print(f"with attention_mask: RuntimeError: {err}")
