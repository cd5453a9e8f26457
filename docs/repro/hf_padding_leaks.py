"""transformers 5.23.0: in three masked LMs the padding of a batch reaches its real tokens:
a sequence's logits change when <PAD> is appended to it, with the attention mask saying
so. ConvBERT's span convolution and Nystromformer's convolution of the values run over the
padded positions unmasked; YOSO's hashed attention lets padded keys into its normaliser.
In float64, so that no rounding can explain it.

    python docs/repro/hf_padding_leaks.py
"""

import torch
from transformers import (
    ConvBertConfig,
    ConvBertForMaskedLM,
    NystromformerConfig,
    NystromformerForMaskedLM,
    YosoConfig,
    YosoForMaskedLM,
)

sizes = dict(vocab_size=32, hidden_size=16, num_hidden_layers=1, num_attention_heads=2)
sizes.update(intermediate_size=32, max_position_embeddings=32)
real, padded = torch.tensor([[5, 6, 7, 8]]), torch.tensor([[5, 6, 7, 8, 0, 0]])
for config, model_class in (
    (ConvBertConfig(embedding_size=16, **sizes), ConvBertForMaskedLM),
    (
        NystromformerConfig(segment_means_seq_len=16, num_landmarks=16, **sizes),
        NystromformerForMaskedLM,
    ),
    (YosoConfig(**sizes), YosoForMaskedLM),
):
    torch.manual_seed(0)
    model = model_class(config).double().eval()
    with torch.no_grad():
        alone = model(real, attention_mask=torch.ones_like(real)).logits
        pad = model(padded, attention_mask=(padded != 0).long()).logits[:, :4]
    moved = float((alone - pad).abs().max())
    print(f"{model_class.__name__}: two pads move the real logits by {moved:.3g}")
