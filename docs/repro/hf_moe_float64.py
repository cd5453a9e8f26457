"""transformers 5.23.0: the default experts path of a mixture-of-experts model has no float64
kernel. `integrations/moe.py:_can_use_grouped_mm` sends float64 weights to torch's
`grouped_mm`, which takes float32, bfloat16 and float16 only, though transformers' own
fallback (`_grouped_mm_fallback`) computes float64. Every MoE architecture on the default
experts implementation fails in float64 this way (Mixtral, Qwen2-MoE, OLMoE, GPT-OSS, ...).

    python docs/repro/hf_moe_float64.py
"""

import torch
from transformers import MixtralConfig, MixtralForCausalLM

sizes = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2)
config = MixtralConfig(vocab_size=32, num_key_value_heads=2, num_local_experts=4, **sizes)
torch.manual_seed(0)
model = MixtralForCausalLM(config).eval()
tokens = torch.tensor([[1, 5, 7]])
print("float32 logits:", tuple(model(tokens).logits.shape))
try:
    model.double()(tokens)
    print("float64 logits: computed (fixed)")
except RuntimeError as err:
    print(f"float64: RuntimeError: {err}")
