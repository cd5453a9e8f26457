"""One Hugging Face transformers model behind the harness's Model protocol (`HFModel`, and
`GeneratingHFModel`, which generates with the harness's loop), built with or without its
positions (`_remove_positions`). Special ids follow the harness: <PAD> 0, <START> 1, <END> 2."""

import inspect
import re
from typing import Any, Literal

import torch
from torch import Tensor, nn
from transformer_spec.properties.targets.adapters.lm_model import generate_tokens
from transformer_spec.properties.targets.levels import ModelKind, ModelSpec, Unsupported

PAD, START, END = 0, 1, 2
LossSource = Literal["library", "logits"]

# What a module holding positions is called: a table (learned or sinusoidal, parameter or
# buffer) is zeroed wherever it sits.
_POSITIONAL_NAME = re.compile(r"wpe|.*pos(ition)?.*|relative_attention_bias")


class HFModel:
    """One transformers model behind the harness's Model protocol; `net` is the module."""

    pad_id, start_id, end_id = PAD, START, END

    def __init__(self, net: Any, spec: ModelSpec, *, loss: LossSource = "library") -> None:
        if not spec.positional:
            _remove_positions(net)
        self.net = net.to(device=spec.device, dtype=spec.dtype).eval()
        self.kind: ModelKind = spec.kind
        self.loss_source = loss
        # A model whose forward takes no attention mask (FNet) cannot hide <PAD>.
        self.masks_padding = "attention_mask" in inspect.signature(net.forward).parameters

    def _forward(self, tokens: Tensor, src: Tensor | None, **kw: Any) -> Any:
        mask = (tokens != PAD).long()
        if self.kind == "encoder_decoder":
            assert src is not None, "an encoder-decoder model needs src"
            return self.net(
                input_ids=src,
                attention_mask=(src != PAD).long(),
                decoder_input_ids=tokens,
                decoder_attention_mask=mask,
                **kw,
            )
        return self.net(input_ids=tokens, attention_mask=mask, **kw)

    @torch.no_grad()
    def logits(self, tokens: Tensor, src: Tensor | None = None) -> Tensor:
        out: Tensor = self._forward(tokens, src).logits
        return out

    @torch.no_grad()
    def logits_at(self, tokens: Tensor, start: int) -> Tensor | None:
        """A decoder's logits with position ids start .. start + t - 1; None for other kinds
        or a forward that takes no position ids."""
        if self.kind != "decoder_only" or "position_ids" not in self._parameters:
            return None
        t = tokens.shape[1]
        ids = torch.arange(start, start + t, device=tokens.device)[None].expand(len(tokens), t)
        out: Tensor = self._forward(tokens, None, position_ids=ids).logits
        return out

    @property
    def _parameters(self) -> set[str]:
        return set(inspect.signature(self.net.forward).parameters)

    @torch.no_grad()
    def incremental_logits(self, tokens: Tensor, src: Tensor | None = None) -> Tensor | None:
        """One token at a time through HF's past_key_values (use_cache=True); None for an
        encoder or a class that returns no cache."""
        if self.kind == "encoder_only":
            return None
        past, steps = None, []
        for t in range(tokens.shape[1]):
            kw: dict[str, Any] = {"past_key_values": past, "use_cache": True}
            if self.kind == "encoder_decoder":
                assert src is not None
                out = self.net(
                    input_ids=src,
                    attention_mask=(src != PAD).long(),
                    decoder_input_ids=tokens[:, t : t + 1].contiguous(),
                    **kw,
                )
            else:
                mask = (tokens[:, : t + 1] != PAD).long()
                out = self.net(
                    input_ids=tokens[:, t : t + 1].contiguous(), attention_mask=mask, **kw
                )
            past = getattr(out, "past_key_values", None)
            if past is None:
                return None
            steps.append(out.logits)
        return torch.cat(steps, dim=1)

    def loss(self, tokens: Tensor, src: Tensor | None = None) -> Tensor:
        """The mean cross-entropy of predicting tokens[:, 1:] from tokens[:, :-1], labels
        equal to <PAD> left out: HF's own (`labels=`, ignore index -100) with loss="library",
        else computed from the model's logits in their dtype."""
        if self.loss_source == "logits":
            inputs, labels = tokens[:, :-1].contiguous(), tokens[:, 1:].contiguous()
            with torch.enable_grad():  # no cache, as in training (RWKV updates its in place)
                logits = self._forward(inputs, src, use_cache=False).logits
                return nn.functional.cross_entropy(
                    logits.flatten(0, 1), labels.flatten(), ignore_index=PAD
                )
        if self.kind == "encoder_decoder":
            assert src is not None
            inputs, labels = tokens[:, :-1].contiguous(), tokens[:, 1:].contiguous()
            out = self.net(
                input_ids=src,
                attention_mask=(src != PAD).long(),
                decoder_input_ids=inputs,
                decoder_attention_mask=(inputs != PAD).long(),
                labels=labels.masked_fill(labels == PAD, -100),
            )
        else:
            labels = tokens.masked_fill(tokens == PAD, -100)
            out = self.net(input_ids=tokens, attention_mask=(tokens != PAD).long(), labels=labels)
        loss: Tensor = out.loss
        return loss

    def parameters(self) -> dict[str, Tensor]:
        return dict(self.net.named_parameters())

    def embedding_parameter(self) -> Tensor:
        """The embedding of the target tokens: an encoder-decoder model's decoder may have
        its own (T5Gemma, FSMT), and the training properties feed it the target."""
        weight: Tensor = self.net.get_input_embeddings().weight
        if self.kind == "encoder_decoder" and hasattr(self.net, "get_decoder"):
            decoder = self.net.get_decoder()
            embed = getattr(decoder, "embed_tokens", None)
            if embed is None and hasattr(decoder, "get_input_embeddings"):
                embed = decoder.get_input_embeddings()
            if isinstance(embed, nn.Embedding) and embed.weight.shape == weight.shape:
                return embed.weight
        return weight

    def load_pretrained_embedding(self, matrix: Tensor, *, freeze: bool) -> None:
        weight = self.embedding_parameter()
        with torch.no_grad():
            weight.copy_(matrix)
        weight.requires_grad_(not freeze)


class GeneratingHFModel(HFModel):
    """An HFModel that generates with the harness's loop (HF's sampler would draw from the
    global RNG, not the harness's generator)."""

    @torch.no_grad()
    def generate(
        self,
        prompt: Tensor | None,
        src: Tensor | None,
        max_new_tokens: int,
        *,
        sample: bool,
        generator: torch.Generator | None,
    ) -> Tensor:
        """Full passes over the growing sequence; after a sequence's <END>, <PAD>."""
        return generate_tokens(
            self.logits,
            prompt,
            src,
            max_new_tokens,
            sample=sample,
            generator=generator,
            ids=(START, END, PAD),
            device=self.net.device if src is None else src.device,
        )


def _remove_positions(net: nn.Module) -> None:
    """Zero every position table, rotary frequency and relative bias; Unsupported if none.

    Found by what holds them, not by one name: any buffer whose name holds `inv_freq` (per
    layer type too: `local_inv_freq`), and every floating table of a module named for
    positions (`wpe`, `embed_positions`, `position_embeddings`, `pos_emb`, ...) or T5's
    relative bias, parameter or buffer, learned or sinusoidal."""
    found = []
    with torch.no_grad():
        for name, module in net.named_modules():
            last = name.rpartition(".")[2]
            tables = _POSITIONAL_NAME.fullmatch(last) is not None
            own = [*module.named_parameters(recurse=False), *module.named_buffers(recurse=False)]
            for key, t in own:
                if not t.is_floating_point():
                    continue
                if "inv_freq" in key or (tables and t.dim() >= 1):
                    t.zero_()  # a zero angle makes each rotation the identity
                    found.append(f"{name}.{key}")
    if not found:
        raise Unsupported(
            f"{type(net).__name__}: no position table, rotary frequencies or relative bias "
            "found to remove, so it cannot be built without positional encoding",
            always=True,
        )
