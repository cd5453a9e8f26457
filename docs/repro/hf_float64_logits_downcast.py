"""transformers 5.23.0: Mamba, Mamba-2, Falcon-Mamba, Nemotron-H and Beam return float32
logits from a float64 model: their causal-LM head casts with `.float()` (Beam before its logit
soft-capping), a downcast for float64 that loses what the model computed, where it was meant
as an upcast for 16-bit models. Other causal LMs keep float64 logits.

    python docs/repro/hf_float64_logits_downcast.py
"""

import torch
import transformers as tf

small = dict(vocab_size=32, hidden_size=16, num_hidden_layers=1)
cases = {
    "MambaForCausalLM": dict(state_size=4, **small),
    "Mamba2ForCausalLM": dict(state_size=4, num_heads=4, head_dim=8, n_groups=1, **small),
    "FalconMambaForCausalLM": dict(state_size=4, **small),
    "NemotronHForCausalLM": dict(
        layers_block_type=["full_attention"],
        num_attention_heads=2,
        num_key_value_heads=2,
        head_dim=8,
        intermediate_size=32,
        vocab_size=32,
        hidden_size=16,
    ),
    "BeamForCausalLM": dict(
        intermediate_size=32, num_attention_heads=2, num_key_value_heads=2, head_dim=8, **small
    ),
}
tokens = torch.tensor([[1, 5, 7]])
for name, kwargs in cases.items():
    model_class = getattr(tf, name)
    torch.manual_seed(0)
    model = model_class(model_class.config_class(**kwargs)).double().eval()
    with torch.no_grad():
        logits = model(tokens).logits
    print(f"{name}: float64 model, logits of dtype {logits.dtype}")
