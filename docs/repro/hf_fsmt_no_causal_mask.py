"""transformers 5.23.0: FSMT's decoder attends to future target tokens in a plain forward
pass. `FSMTModel.forward` builds the causal mask only `if not use_cache`, and `use_cache`
defaults to True (the config's default), so teacher-forced logits at position 0 change when
later target tokens change; with use_cache=False they do not. And with use_cache=False a
float64 model cannot run: `fill_with_neg_inf` puts float64's smallest value into a float32
tensor.

    python docs/repro/hf_fsmt_no_causal_mask.py
"""

import torch
from transformers import FSMTConfig, FSMTForConditionalGeneration

sizes = dict(d_model=16, encoder_layers=1, decoder_layers=1, encoder_ffn_dim=32, decoder_ffn_dim=32)
heads = dict(encoder_attention_heads=2, decoder_attention_heads=2)
config = FSMTConfig(src_vocab_size=32, tgt_vocab_size=32, langs=["en", "de"], **sizes, **heads)
torch.manual_seed(0)
model = FSMTForConditionalGeneration(config).eval()
src = torch.tensor([[5, 6, 7, 2]])
target, changed = torch.tensor([[2, 8, 9, 10]]), torch.tensor([[2, 8, 12, 13]])
for use_cache in (True, False):
    with torch.no_grad():
        a = model(src, decoder_input_ids=target, use_cache=use_cache).logits[0, :2]
        b = model(src, decoder_input_ids=changed, use_cache=use_cache).logits[0, :2]
    moved = float((a - b).abs().max())
    print(f"use_cache={use_cache}: positions 0-1 move by {moved:.3g} when tokens 2-3 change")
try:
    model.double()(src, decoder_input_ids=target, use_cache=False)
except RuntimeError as err:
    print(f"float64, use_cache=False: RuntimeError: {err}")
