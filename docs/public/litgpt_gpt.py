"""Lightning AI's litgpt `GPT` (litgpt.model, the model behind its Llama, Pythia, Phi, ...
configs) as a decoder-only model target: rotary positions, a sequential residual, its KV
cache (`set_kv_cache`, `input_pos`). It takes no padding mask: <PAD> is an ordinary token,
which a causal model with right padding does not need. From the repository root:

    transformer-spec check docs.public.litgpt_gpt:target

Install: pip install -c constraints.txt --no-deps litgpt   (0.5.13 tried), then what its
package import needs: pip install -c constraints.txt lightning jsonargparse psutil
"""

import torch
import torch.nn.functional as F
from litgpt.config import Config  # type: ignore[import-untyped]
from litgpt.model import GPT  # type: ignore[import-untyped]
from torch import Tensor
from transformer_spec.properties import Conventions, ModelSpec, Target

PAD, START, END = 0, 1, 2


class LitGPT:
    pad_id, start_id, end_id = PAD, START, END

    def __init__(self, spec: ModelSpec) -> None:
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
        torch.manual_seed(spec.seed)
        self.net = GPT(config).to(device=spec.device, dtype=spec.dtype).eval()

    @torch.no_grad()
    def logits(self, tokens: Tensor, src: Tensor | None = None) -> Tensor:
        out: Tensor = self.net(tokens)
        return out

    @torch.no_grad()
    def incremental_logits(self, tokens: Tensor, src: Tensor | None = None) -> Tensor:
        self.net.set_kv_cache(batch_size=tokens.shape[0], device=tokens.device)
        try:
            steps = [
                self.net(tokens[:, t : t + 1], input_pos=torch.tensor([t], device=tokens.device))
                for t in range(tokens.shape[1])
            ]
        finally:
            self.net.clear_kv_cache()
        return torch.cat(steps, dim=1)

    def loss(self, tokens: Tensor, src: Tensor | None = None) -> Tensor:
        logits = self.net(tokens[:, :-1])
        return F.cross_entropy(logits.transpose(1, 2), tokens[:, 1:], ignore_index=PAD)

    def parameters(self) -> dict[str, Tensor]:
        return dict(self.net.named_parameters())

    def embedding_parameter(self) -> Tensor:
        weight: Tensor = self.net.transformer.wte.weight
        return weight

    def load_pretrained_embedding(self, matrix: Tensor, *, freeze: bool) -> None:
        with torch.no_grad():
            self.embedding_parameter().copy_(matrix)
        self.embedding_parameter().requires_grad_(not freeze)


def target() -> Target:
    return Target(
        name="litgpt-gpt",
        description="litgpt.model.GPT: rotary positions, sequential residual, KV cache",
        conventions=Conventions(),
        model=LitGPT,
        model_kinds=("decoder_only",),
    )
