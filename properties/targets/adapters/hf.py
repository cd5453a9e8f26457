"""Any Hugging Face transformers language model by class name (the optional `hf` extra):
`hf:CLASSNAME` on the command line, `hf_target("CLASSNAME")` in code. Each model is built
from a tiny random config derived from the ModelSpec: nothing is downloaded, so the checker
works with no network.

The kind comes from transformers' own task tables: a sequence-to-sequence LM
(`...ForConditionalGeneration`, T5, BART) is encoder_decoder, a causal LM (`...ForCausalLM`,
`GPT2LMHeadModel`) decoder_only, a masked LM (`...ForMaskedLM`) encoder_only. The config's
own parameter names are mapped from the notes' (d_model is `hidden_size`, `n_embd` or
`d_model`; d_ff is `intermediate_size`, `n_inner`, `ffn_dim` or `d_ff`; ...); a quantity the
config has no name for is a one-line error when the target is loaded, and a built model that
does not have the asked-for sizes is refused (`Unsupported`), never silently changed.

HF's `attention_mask` is 1 where a token is real; the adapters derive it from <PAD> (id 0),
as a user does. Special ids follow the harness: <PAD> 0, <START> 1 (bos and decoder start),
<END> 2. Dropout is off. A model built "without positional encoding" has its position
information removed: a learned table zeroed, rotary frequencies zeroed (every rotation the
identity), T5's relative attention bias zeroed; a model with none of those is refused.
Incremental decoding goes through HF's `past_key_values`. `hf_target` models generate with
the harness's own loop (greedy, or sampling with the harness's generator: HF's sampler draws
from the global RNG) and compute their training loss as the cross-entropy of their own
logits (HF's causal-LM loss casts float64 logits to float32; the built-in `hf-gpt2` target
keeps HF's loss and that known failure).

T5 does not scale q.k by 1/sqrt(d_k) and uses RMSNorm; Llama uses RMSNorm and rotary
positions. Only whole-model properties run on these targets, and none of them checks the
score scale or the normalisation formula (those are attention, multi-head, layer and
component properties), so nothing depends on them here; T5's scale is declared all the
same, so that the report says so. The generation loop makes a full pass per token (the
cache is checked by `incremental_logits`).

The built-in `hf-gpt2`, `hf-gpt2-eager`, `hf-bert` and `hf-bart` targets are instances.
"""

import importlib
import inspect
from collections.abc import Callable
from typing import Any, Literal

import torch
from torch import Tensor, nn
from transformer_spec.properties.targets.adapters.language_model import generate_tokens
from transformer_spec.properties.targets.protocols import (
    Conventions,
    ModelKind,
    ModelSpec,
    Target,
    Unsupported,
    seed_torch,
)

PAD, START, END = 0, 1, 2
EXTRA_HINT = "pip install 'transformer-spec[hf]' (or: pip install transformers)"
AttnImplementation = Literal["eager", "sdpa"] | None
LossSource = Literal["library", "logits"]

# The notes' sizes and the names configs give them. Every name the config's __init__ takes
# is set (BART has encoder_* and decoder_* heads); the first group must match one name.
_SIZES: dict[str, tuple[str, ...]] = {
    "d_model": ("hidden_size", "n_embd", "d_model", "word_embed_proj_dim", "embedding_size", "dim"),
    "n_heads": (
        "num_attention_heads",
        "n_head",
        "num_heads",
        "n_heads",
        "encoder_attention_heads",
        "decoder_attention_heads",
        "num_key_value_heads",  # no grouped-query sharing: every head its own k, v
    ),
    "d_ff": (
        "intermediate_size",
        "n_inner",
        "ffn_dim",
        "d_ff",
        "encoder_ffn_dim",
        "decoder_ffn_dim",
        "ffn_hidden_size",  # Falcon
        "hidden_dim",  # DistilBERT
    ),
    "n_layers": (
        "num_hidden_layers",
        "n_layer",
        "num_layers",
        "n_layers",
        "num_decoder_layers",
        "encoder_layers",
        "decoder_layers",
    ),
    "d_k": ("head_dim", "d_kv", "rotary_dim"),  # GPT-J's rotary dims: the whole head
    "max_len": ("max_position_embeddings", "n_positions"),
}
_REQUIRED = ("d_model", "n_heads", "d_ff", "n_layers")
# Position tables (nn.Embedding) by attribute name, and T5's relative attention bias.
_POSITION_TABLES = ("wpe", "embed_positions", "position_embeddings", "relative_attention_bias")
# transformers' task tables, in the order a class is looked up (BART is in the masked-LM
# table too, as a denoising model; it is an encoder-decoder first).
_TASKS: tuple[tuple[str, ModelKind], ...] = (
    ("MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES", "encoder_decoder"),
    ("MODEL_FOR_CAUSAL_LM_MAPPING_NAMES", "decoder_only"),
    ("MODEL_FOR_MASKED_LM_MAPPING_NAMES", "encoder_only"),
)
_NO_SCALE = ("t5", "mt5", "umt5", "longt5")


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


def _task_classes() -> dict[str, ModelKind]:
    """Every language-model class name transformers lists, with its kind."""
    tables = importlib.import_module("transformers.models.auto.modeling_auto")
    kinds: dict[str, ModelKind] = {}
    for table, kind in _TASKS:
        for names in getattr(tables, table).values():
            for name in (names,) if isinstance(names, str) else names:
                kinds.setdefault(name, kind)
    return kinds


def model_kind(class_name: str) -> ModelKind:
    """The kind of a transformers LM class; ValueError naming what is supported."""
    kinds = _task_classes()
    if class_name in kinds:
        return kinds[class_name]
    stem = class_name.lower()[:4]
    close = sorted(n for n in kinds if stem and n.lower().startswith(stem))[:6]
    hint = f" (similar: {', '.join(close)})" if close else ""
    raise ValueError(
        f"{class_name!r} is not a transformers language-model class; supported: causal LMs "
        "(e.g. LlamaForCausalLM, GPT2LMHeadModel), masked LMs (e.g. BertForMaskedLM) and "
        f"sequence-to-sequence LMs (e.g. T5ForConditionalGeneration){hint}"
    )


class HFModel:
    """One transformers model behind the harness's Model protocol; `net` is the module."""

    pad_id, start_id, end_id = PAD, START, END

    def __init__(self, net: Any, spec: ModelSpec, *, loss: LossSource = "library") -> None:
        if not spec.positional:
            _remove_positions(net)
        self.net = net.to(device=spec.device, dtype=spec.dtype).eval()
        self.kind: ModelKind = spec.kind
        self.loss_source = loss

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
                    decoder_input_ids=tokens[:, t : t + 1],
                    **kw,
                )
            else:
                mask = (tokens[:, : t + 1] != PAD).long()
                out = self.net(input_ids=tokens[:, t : t + 1], attention_mask=mask, **kw)
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
            inputs, labels = tokens[:, :-1], tokens[:, 1:]
            with torch.enable_grad():
                logits = self._forward(inputs, src).logits
                return nn.functional.cross_entropy(
                    logits.flatten(0, 1), labels.flatten(), ignore_index=PAD
                )
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
    """Zero every position table, rotary frequency and relative bias; Unsupported if none."""
    found = []
    with torch.no_grad():
        for name, module in net.named_modules():
            last = name.rpartition(".")[2]
            if isinstance(module, nn.Embedding) and last in _POSITION_TABLES:
                module.weight.zero_()
                found.append(name)
            inv_freq = getattr(module, "inv_freq", None)
            if isinstance(inv_freq, Tensor):
                inv_freq.zero_()  # angle 0 at every position: each rotation is the identity
                original = getattr(module, "original_inv_freq", None)
                if isinstance(original, Tensor):
                    original.zero_()
                found.append(name)
    if not found:
        raise Unsupported(
            f"{type(net).__name__}: no position table, rotary frequencies or relative bias "
            "found to remove, so it cannot be built without positional encoding"
        )


def _config_names(config_class: Any) -> set[str]:
    return set(inspect.signature(config_class.__init__).parameters) - {"self", "kwargs"}


def _mapping(class_name: str, config_class: Any) -> dict[str, tuple[str, ...]]:
    """The notes' sizes -> the config parameters that take them; ValueError for a required
    one the config has no name for."""
    names = _config_names(config_class)
    mapping = {
        size: tuple(n for n in candidates if n in names) for size, candidates in _SIZES.items()
    }
    missing = [size for size in _REQUIRED if not mapping[size]]
    if missing:
        raise ValueError(
            f"{class_name}: its config ({config_class.__name__}) has no parameter for "
            f"{', '.join(missing)} (looked for {', '.join(n for m in missing for n in _SIZES[m])})"
        )
    return mapping


def tiny_config(
    class_name: str,
    spec: ModelSpec,
    mapping: dict[str, tuple[str, ...]],
    *,
    extra_positions: int = 0,
) -> Any:
    """The class's config with the spec's sizes, the harness's special ids and no dropout;
    `extra_positions` more rows in the position table than max_len."""
    tf = _transformers()
    config_class = getattr(tf, class_name).config_class
    names = _config_names(config_class)
    values = {
        "d_model": spec.d_model,
        "n_heads": spec.n_heads,
        "d_ff": spec.d_ff,
        "n_layers": spec.n_layers,
        "d_k": spec.d_model // spec.n_heads,
        "max_len": spec.max_len + extra_positions,
    }
    kwargs: dict[str, Any] = {n: values[size] for size, ns in mapping.items() for n in ns}
    specials = {
        "vocab_size": spec.vocab_size,
        "pad_token_id": PAD,
        "bos_token_id": START,
        "eos_token_id": END,
        "decoder_start_token_id": START,
        "forced_eos_token_id": None,
        "forced_bos_token_id": None,
        "type_vocab_size": 1,  # BERT's segment ids: one segment
        "use_cache": True,
    }
    kwargs.update({n: v for n, v in specials.items() if n in names})
    kwargs.update({n: 0.0 for n in names if "dropout" in n or "pdrop" in n or n == "layerdrop"})
    config = config_class(**kwargs)
    wrong = [
        f"{n}={getattr(config, n, None)!r} (asked {kwargs[n]!r})"
        for ns in mapping.values()
        for n in ns
        if getattr(config, n, None) != kwargs[n]
    ]
    if wrong:
        raise Unsupported(f"{class_name}: the config does not keep the sizes: {', '.join(wrong)}")
    return config


def build(
    class_name: str,
    spec: ModelSpec,
    *,
    attn: AttnImplementation = None,
    loss: LossSource = "logits",
    generation: bool = True,
) -> HFModel:
    """One model of `class_name` with the spec's sizes; Unsupported when it cannot have them."""
    tf = _transformers()
    cls = getattr(tf, class_name)
    mapping = _mapping(class_name, cls.config_class)
    net = _net(cls, tiny_config(class_name, spec, mapping), attn, spec.seed)
    offset = _position_offset(net)
    if offset:  # RoBERTa numbers positions from <PAD> + 1: its table needs more rows
        config = tiny_config(class_name, spec, mapping, extra_positions=offset)
        net = _net(cls, config, attn, spec.seed)
    embedding = tuple(net.get_input_embeddings().weight.shape)
    if embedding != (spec.vocab_size, spec.d_model):
        raise Unsupported(
            f"{class_name}: token embedding of shape {embedding}, asked for "
            f"({spec.vocab_size}, {spec.d_model})"
        )
    model = GeneratingHFModel if generation and spec.kind != "encoder_only" else HFModel
    return model(net, spec, loss=loss)


def _net(cls: Any, config: Any, attn: AttnImplementation, seed: int) -> Any:
    seed_torch(seed)
    if attn is None:
        return cls._from_config(config)
    return cls._from_config(config, attn_implementation=attn)


def _position_offset(net: nn.Module) -> int:
    """How far past its row count a position table is indexed: RoBERTa-style tables (with a
    padding_idx) number the positions padding_idx + 1, padding_idx + 2, ..."""
    for name, module in net.named_modules():
        table = name.rpartition(".")[2] in _POSITION_TABLES and isinstance(module, nn.Embedding)
        if table and module.padding_idx is not None:
            return int(module.padding_idx) + 1
    return 0


def _conventions(config_class: Any) -> Conventions:
    if getattr(config_class, "model_type", "") in _NO_SCALE:
        return Conventions(
            score_scale="none",
            explanations={
                "score_scale": "T5 does not scale q.k by 1/sqrt(d_k): the scale is folded "
                "into the initialisation of W_Q"
            },
        )
    return Conventions()


def hf_target(
    class_name: str,
    *,
    attn: AttnImplementation = None,
    name: str = "",
    description: str = "",
    loss: LossSource = "logits",
    generation: bool = True,
) -> Target:
    """A model-level target for the transformers class `class_name` (e.g. "LlamaForCausalLM").

    attn: the attention implementation ("eager", "sdpa"), or None for transformers' default;
    loss: "logits" (cross-entropy of the model's logits) or "library" (HF's `labels=` loss);
    generation: with the harness's generation loop (decoders only)."""
    tf = _transformers()
    kind = model_kind(class_name)
    cls = getattr(tf, class_name, None)
    if cls is None:
        raise ValueError(f"{class_name!r}: transformers {tf.__version__} has no such class")
    if attn not in ("eager", "sdpa", None):
        raise ValueError(f"attn: {attn!r}, expected 'eager', 'sdpa' or None (the default)")
    if loss not in ("logits", "library"):
        raise ValueError(f"loss: {loss!r}, expected 'logits' or 'library'")
    _mapping(class_name, cls.config_class)  # a config we cannot size is an error now
    how = "" if attn is None else f" ({attn})"
    return Target(
        name=name or f"hf:{class_name}" + (f":{attn}" if attn else ""),
        description=description
        or f"Hugging Face transformers {class_name}{how}, tiny random config, no download",
        conventions=_conventions(cls.config_class),
        model=lambda spec: build(class_name, spec, attn=attn, loss=loss, generation=generation),
        model_kinds=(kind,),
    )


def _builtin(name: str, class_name: str, attn: AttnImplementation = None) -> Target:
    """The original built-in targets: HF's own loss (and its known failure), no generation."""
    how = "" if class_name != "GPT2LMHeadModel" else f" ({attn})"
    return hf_target(
        class_name,
        attn=attn,
        name=name,
        description=f"Hugging Face transformers {class_name}{how}, tiny random config, no download",
        loss="library",
        generation=False,
    )


def parse(spec: str) -> Target:
    """`hf:CLASSNAME` or `hf:CLASSNAME:eager|sdpa`; ValueError with a one-line reason."""
    class_name, _, attn = spec.removeprefix("hf:").partition(":")
    if attn not in ("", "eager", "sdpa"):
        raise ValueError(f"attention implementation {attn!r}; expected eager or sdpa")
    return hf_target(class_name, attn=attn or None)  # type: ignore[arg-type]


TARGETS: dict[str, Callable[[], Target]] = {
    "hf-gpt2": lambda: _builtin("hf-gpt2", "GPT2LMHeadModel", "sdpa"),
    "hf-gpt2-eager": lambda: _builtin("hf-gpt2-eager", "GPT2LMHeadModel", "eager"),
    "hf-bert": lambda: _builtin("hf-bert", "BertForMaskedLM"),
    "hf-bart": lambda: _builtin("hf-bart", "BartForConditionalGeneration"),
}
