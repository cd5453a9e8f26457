"""Hugging Face transformers models (the optional `hf` extra), each built from a tiny random
config: nothing is downloaded, so the checker works with no network.

- `hf-gpt2`: GPT2LMHeadModel, decoder-only, with its KV cache for incremental decoding;
- `hf-bert`: BertForMaskedLM, encoder-only;
- `hf-bart`: BartForConditionalGeneration, encoder-decoder, with its KV cache.

HF's `attention_mask` is 1 where a token is real; the adapters derive it from <PAD> (id 0),
as a user does. Special ids follow the harness: <PAD> 0, <START> 1, <END> 2. A model built
"without positional encoding" has its learned position table zeroed. Each model also has
`loss` (HF's own label shift and ignore index -100) and the embedding hooks; there is no
`generate`, because HF's sampling draws from the global RNG, not a passed generator.
"""

import importlib
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from ..targets import Conventions, ModelKind, ModelSpec, Target

PAD, START, END = 0, 1, 2
EXTRA_HINT = "pip install 'transformer-spec[hf]' (or: pip install transformers)"


class MissingExtra(ImportError):
    """The Hugging Face targets need the `hf` extra."""


def _transformers() -> Any:
    try:
        return importlib.import_module("transformers")
    except ImportError as err:
        raise MissingExtra(
            f"the Hugging Face targets need the 'hf' extra, which is not installed "
            f"({err}); install it with: {EXTRA_HINT}"
        ) from err


class HFModel:
    """Shared calls of the three models; `net` is the transformers module."""

    pad_id, start_id, end_id = PAD, START, END

    def __init__(self, net: Any, spec: ModelSpec, position_tables: list[Any]) -> None:
        if not spec.positional:
            with torch.no_grad():
                for table in position_tables:
                    table.weight.zero_()
        self.net = net.to(device=spec.device, dtype=spec.dtype).eval()
        self.kind: ModelKind = spec.kind

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
    def incremental_logits(self, tokens: Tensor, src: Tensor | None = None) -> Tensor | None:
        """One token at a time through HF's past_key_values (use_cache=True)."""
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
                    decoder_input_ids=tokens[:, t : t + 1],
                    **kw,
                )
            else:
                mask = (tokens[:, : t + 1] != PAD).long()
                out = self.net(input_ids=tokens[:, t : t + 1], attention_mask=mask, **kw)
            past = out.past_key_values
            steps.append(out.logits)
        return torch.cat(steps, dim=1)

    def loss(self, tokens: Tensor, src: Tensor | None = None) -> Tensor:
        """HF's loss: labels equal to -100 are left out; decoder-only models shift the labels
        themselves, the encoder-decoder one is fed tokens[:, :-1] against tokens[:, 1:]."""
        if self.kind == "encoder_decoder":
            assert src is not None
            inputs, labels = tokens[:, :-1], tokens[:, 1:]
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
        weight: Tensor = self.net.get_input_embeddings().weight
        return weight

    def load_pretrained_embedding(self, matrix: Tensor, *, freeze: bool) -> None:
        weight = self.embedding_parameter()
        with torch.no_grad():
            weight.copy_(matrix)
        weight.requires_grad_(not freeze)


def _common(spec: ModelSpec) -> dict[str, Any]:
    return {
        "vocab_size": spec.vocab_size,
        "pad_token_id": PAD,
        "bos_token_id": START,
        "eos_token_id": END,
    }


def gpt2(spec: ModelSpec, attn: str) -> HFModel:
    tf = _transformers()
    config = tf.GPT2Config(
        n_positions=spec.max_len,
        n_embd=spec.d_model,
        n_layer=spec.n_layers,
        n_head=spec.n_heads,
        n_inner=spec.d_ff,
        resid_pdrop=0.1,  # inert in eval mode
        embd_pdrop=0.1,
        attn_pdrop=0.1,
        **_common(spec),
    )
    torch.manual_seed(spec.seed)
    net = tf.GPT2LMHeadModel._from_config(config, attn_implementation=attn)
    return HFModel(net, spec, [net.transformer.wpe])


def bert(spec: ModelSpec) -> HFModel:
    tf = _transformers()
    config = tf.BertConfig(
        hidden_size=spec.d_model,
        num_hidden_layers=spec.n_layers,
        num_attention_heads=spec.n_heads,
        intermediate_size=spec.d_ff,
        max_position_embeddings=spec.max_len,
        type_vocab_size=1,
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
        **_common(spec),
    )
    torch.manual_seed(spec.seed)
    net = tf.BertForMaskedLM(config)
    return HFModel(net, spec, [net.bert.embeddings.position_embeddings])


def bart(spec: ModelSpec) -> HFModel:
    tf = _transformers()
    config = tf.BartConfig(
        d_model=spec.d_model,
        encoder_layers=spec.n_layers,
        decoder_layers=spec.n_layers,
        encoder_attention_heads=spec.n_heads,
        decoder_attention_heads=spec.n_heads,
        encoder_ffn_dim=spec.d_ff,
        decoder_ffn_dim=spec.d_ff,
        max_position_embeddings=spec.max_len,
        dropout=0.1,
        decoder_start_token_id=START,
        forced_eos_token_id=None,
        **_common(spec),
    )
    torch.manual_seed(spec.seed)
    net = tf.BartForConditionalGeneration(config)
    tables = [net.model.encoder.embed_positions, net.model.decoder.embed_positions]
    return HFModel(net, spec, tables)


def _target(name: str, what: str, kind: ModelKind, build: Callable[[ModelSpec], HFModel]) -> Target:
    _transformers()  # fail at load time, with the install hint, when the extra is missing
    return Target(
        name=name,
        description=f"Hugging Face transformers {what}, tiny random config, no download",
        conventions=Conventions(),
        model=build,
        model_kinds=(kind,),
    )


TARGETS: dict[str, Callable[[], Target]] = {
    "hf-gpt2": lambda: _target(
        "hf-gpt2", "GPT2LMHeadModel (sdpa)", "decoder_only", lambda s: gpt2(s, "sdpa")
    ),
    "hf-gpt2-eager": lambda: _target(
        "hf-gpt2-eager", "GPT2LMHeadModel (eager)", "decoder_only", lambda s: gpt2(s, "eager")
    ),
    "hf-bert": lambda: _target("hf-bert", "BertForMaskedLM", "encoder_only", bert),
    "hf-bart": lambda: _target("hf-bart", "BartForConditionalGeneration", "encoder_decoder", bart),
}
