"""transformers 5.23.0: SwitchTransformersForConditionalGeneration cannot decode with its cache.
Called with use_cache=True (as generation and any incremental decoding do), it forwards the
flag to its encoder stack, which rejects it with a ValueError.

    python docs/repro/hf_switch_use_cache.py
"""

import torch
from transformers import SwitchTransformersConfig, SwitchTransformersForConditionalGeneration

sizes = dict(vocab_size=32, d_model=16, d_kv=8, d_ff=32, num_layers=1, num_decoder_layers=1)
config = SwitchTransformersConfig(num_heads=2, num_experts=4, **sizes)
torch.manual_seed(0)
model = SwitchTransformersForConditionalGeneration(config).eval()
src, target = torch.tensor([[5, 6, 7]]), torch.tensor([[0]])
with torch.no_grad():
    print(
        "use_cache=False:",
        tuple(model(src, decoder_input_ids=target, use_cache=False).logits.shape),
    )
    try:
        model(src, decoder_input_ids=target, use_cache=True)
    except ValueError as err:
        print(f"use_cache=True: ValueError: {str(err).splitlines()[0][:120]}")
