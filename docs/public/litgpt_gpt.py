"""Lightning AI's litgpt `GPT` (litgpt.model, the model behind its Llama, Pythia, Phi, ...
configs) through `lm_target`: rotary positions, a sequential residual, its KV cache
(`set_kv_cache`, `input_pos`). It takes no padding mask: <PAD> is an ordinary token, which a
causal model with right padding does not need. The harness provides generation (greedy and
sampled with its own generator; litgpt's own samples from the global RNG), the loss and the
training hooks. From the repository root:

    transformer-spec check docs.public.litgpt_gpt:target

Install: pip install -c constraints.txt --no-deps litgpt   (0.5.13 tried), then what its
package import needs: pip install -c constraints.txt lightning jsonargparse psutil
"""

import torch
from litgpt.config import Config  # type: ignore[import-untyped]
from litgpt.model import GPT  # type: ignore[import-untyped]
from torch import Tensor, nn
from transformer_spec.properties import ModelSpec, Target, lm_target


def build(spec: ModelSpec) -> GPT:
    config = Config(
        block_size=spec.max_len,
        vocab_size=spec.vocab_size,
        padded_vocab_size=spec.vocab_size,
        n_layer=spec.n_layers,
        n_head=spec.n_heads,
        n_embd=spec.d_model,
        intermediate_size=spec.d_ff,
        rotary_percentage=1.0 if spec.positional else 0.0,
        parallel_residual=False,
        bias=True,
    )
    return GPT(config)


def incremental(module: nn.Module, tokens: Tensor, src: Tensor | None) -> Tensor:
    """One token at a time through litgpt's KV cache (set_kv_cache, input_pos)."""
    assert isinstance(module, GPT)
    module.set_kv_cache(batch_size=tokens.shape[0], device=tokens.device)
    try:
        steps = [
            module(tokens[:, t : t + 1], input_pos=torch.tensor([t], device=tokens.device))
            for t in range(tokens.shape[1])
        ]
    finally:
        module.clear_kv_cache()
    return torch.cat(steps, dim=1)


def target() -> Target:
    return lm_target(
        "litgpt-gpt",
        build,
        description="litgpt.model.GPT: rotary positions, sequential residual, KV cache",
        pad_id=0,
        embedding="transformer.wte.weight",  # lm_head is (vocab, d_model) too
        incremental=incremental,
        positional_off=True,
    )
