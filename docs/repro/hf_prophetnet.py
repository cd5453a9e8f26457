"""transformers 5.23.0: two bugs of ProphetNet. Its logits at a target position change with
how many target tokens come after it: the last logits of a prefix differ from the full
pass's logits at the same position, by 2e-5 in float64 as in float32 (so not rounding). And
it returns NaN logits in float64 as soon as it is given an attention mask, even one that
masks nothing (all ones); without the mask, or in float32, its logits are finite.

    python docs/repro/hf_prophetnet.py
"""

import torch
from transformers import ProphetNetConfig, ProphetNetForConditionalGeneration

sizes = dict(vocab_size=32, hidden_size=16, encoder_ffn_dim=32, decoder_ffn_dim=32)
layers = dict(num_encoder_layers=1, num_decoder_layers=1, num_encoder_attention_heads=2)
config = ProphetNetConfig(
    num_decoder_attention_heads=2, max_position_embeddings=32, **sizes, **layers
)
torch.manual_seed(0)
model = ProphetNetForConditionalGeneration(config).eval()
src, target = torch.tensor([[5, 6, 7]]), torch.tensor([[1, 8, 9]])
with torch.no_grad():
    model.double()
    full = model(src, decoder_input_ids=target).logits
    prefix = model(src, decoder_input_ids=target[:, :2]).logits[:, -1]
    gap = float((prefix - full[:, 1]).abs().max())
    print(f"float64: prefix vs full pass at position 1: {gap:.3g} (0 expected)")
    for dtype in (torch.float32, torch.float64):
        model.to(dtype)
        for mask in (None, torch.ones_like(src)):
            logits = model(src, attention_mask=mask, decoder_input_ids=target).logits
            nan = int(torch.isnan(logits).sum())
            given = "all ones" if mask is not None else "none"
            print(f"{dtype}, mask {given}: {nan} NaN of {logits.numel()}")
