"""transformers 5.23.0: Bamba's cached decoding disagrees with its full forward pass. Fed one
token at a time through its cache, a float64 model's logits differ from the same model's
full pass over the sequence by about 1e-4, far beyond float64 rounding (about 1e-16 of
the logits' size).

    python docs/repro/hf_bamba_cache.py
"""

import torch
from transformers import BambaConfig, BambaForCausalLM

sizes = dict(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=2)
mamba = dict(mamba_n_heads=2, mamba_d_head=16, mamba_d_state=16, mamba_chunk_size=16)
config = BambaConfig(
    num_attention_heads=2, num_key_value_heads=2, attn_layer_indices=[1], **sizes, **mamba
)
torch.manual_seed(0)
model = BambaForCausalLM(config).double().eval()
tokens = torch.tensor([[1, 5, 7, 9, 11, 6]])
with torch.no_grad():
    full = model(tokens, use_cache=False).logits
    past, steps = None, []
    for t in range(tokens.shape[1]):
        out = model(tokens[:, t : t + 1], past_key_values=past, use_cache=True)
        past = out.past_key_values
        steps.append(out.logits)
gap = float((torch.cat(steps, 1) - full).abs().max())
print(f"cache vs full pass, float64: max |difference| {gap:.3g}")
