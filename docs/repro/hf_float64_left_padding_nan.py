"""transformers 5.23.0: in float64, Gemma 2 and BLOOM give NaN logits at the real tokens of a
left-padded sequence (float32 is fine): the <PAD> queries see no key and come out NaN, and the
next layer carries that NaN into the real tokens through their zero attention weights
(0 x NaN = NaN). Both positional schemes (rotary, ALiBi) are relative, so without the NaN
the padded logits would equal the unpadded ones, as they do in float32.

    python docs/repro/hf_float64_left_padding_nan.py
"""

import torch
import transformers as tf

sizes = dict(vocab_size=32, hidden_size=16, intermediate_size=32, num_attention_heads=2)
for name, own in (
    ("Gemma2ForCausalLM", dict(num_hidden_layers=2, num_key_value_heads=2, head_dim=8)),
    ("BloomForCausalLM", dict(n_layer=2, n_head=2)),
):
    cls = getattr(tf, name)
    for dtype in (torch.float32, torch.float64):
        torch.manual_seed(0)
        model = cls(cls.config_class(**sizes, **own)).to(dtype).eval()
        ids, mask = torch.tensor([[0, 0, 5, 7, 6]]), torch.tensor([[0, 0, 1, 1, 1]])
        with torch.no_grad():
            padded = model(input_ids=ids, attention_mask=mask).logits[0, 2:]
            alone = model(input_ids=ids[:, 2:]).logits[0]
        nan, moved = int(padded.isnan().sum()), float((padded - alone).abs().max())
        print(f"{name} {dtype}: {nan} NaN at the real tokens, max |difference| {moved:.3g}")
