"""transformers 5.23.0: RWKV returns logits of the wrong shape for a batch of one-token
sequences: two sequences of length 1 give logits of shape (2, 2, vocab), where (2, 1, vocab)
is the shape for any other length (two sequences of length 3 give (2, 3, vocab)).

    python docs/repro/hf_rwkv_single_token_batch.py
"""

import torch
from transformers import RwkvConfig, RwkvForCausalLM

sizes = dict(vocab_size=32, hidden_size=16, num_hidden_layers=2, intermediate_size=32)
config = RwkvConfig(attention_hidden_size=16, context_length=16, **sizes)
torch.manual_seed(0)
model = RwkvForCausalLM(config).eval()
with torch.no_grad():
    for tokens in (torch.tensor([[5], [6]]), torch.tensor([[5, 6, 7], [8, 9, 10]])):
        print(f"input {tuple(tokens.shape)} -> logits {tuple(model(tokens).logits.shape)}")
