"""transformers 5.23.0: three models cannot run in float64 at all, each for a tensor it makes
in float32 whatever the model's dtype: MRA (a float32 matrix multiplied with float64 ones),
XGLM (float64's smallest value put into a float32 mask, as FSMT does) and Inkling 2 (its
router casts the activations to float32 and multiplies them with its float64 weight). In
float32 each runs.

    python docs/repro/hf_float64_dtype_errors.py
"""

import torch
import transformers as tf

sizes = dict(vocab_size=32, num_attention_heads=2, intermediate_size=32, max_position_embeddings=32)
text = dict(hidden_size=16, num_hidden_layers=1, **sizes)
cases = {
    "MraForMaskedLM": text,
    "XGLMForCausalLM": dict(d_model=16, num_layers=1, attention_heads=2, ffn_dim=32, vocab_size=32),
    "Inkling2ForCausalLM": dict(head_dim=8, num_key_value_heads=2, **text),
}
tokens = torch.tensor([[5, 6, 7]])
for name, kwargs in cases.items():
    model_class = getattr(tf, name)
    torch.manual_seed(0)
    model = model_class(model_class.config_class(**kwargs)).eval()
    with torch.no_grad():
        print(f"{name} float32: logits {tuple(model(tokens).logits.shape)}")
        try:
            model.double()(tokens)
            print(f"{name} float64: ran (fixed)")
        except RuntimeError as err:
            print(f"{name} float64: RuntimeError: {err}")
