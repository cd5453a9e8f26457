"""transformers 5.23.0: five classes cannot be built from their own default config. Each line
builds the class from `ConfigClass()` on the meta device (no memory for the weights) and
prints the error; a class that builds prints "builds".

    python docs/repro/hf_default_configs.py
"""

import torch
import transformers as tf

for name in (
    "DbrxForCausalLM",
    "CohereCompassForCausalLM",
    "Lfm2MoeForCausalLM",
    "Gemma4AssistantForCausalLM",
    "Gemma4UnifiedAssistantForCausalLM",
):
    model_class = getattr(tf, name)
    try:
        config = model_class.config_class()
        with torch.device("meta"):
            model_class(config)
        print(f"{name}: builds")
    except Exception as err:  # each raises a different error
        print(f"{name}: {type(err).__name__}: {' '.join(str(err).split())[:150]}")
