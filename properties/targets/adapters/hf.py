"""Any Hugging Face transformers language model by class name (the optional `hf` extra):
`hf:CLASSNAME` on the command line, `hf_target("CLASSNAME")` in code. Each model is built
from a tiny random config derived from the ModelSpec: nothing is downloaded, so the checker
works with no network.

The kind comes from transformers' own task tables: a sequence-to-sequence LM
(`...ForConditionalGeneration`, T5, BART) is encoder_decoder, unless its forward takes no
`decoder_input_ids` (an audio or vision LM listed there: decoder_only); a causal LM
(`...ForCausalLM`, `GPT2LMHeadModel`) decoder_only, a masked LM (`...ForMaskedLM`)
encoder_only. The tiny config comes from the config's own parameter names (`hf_config.py`);
a config that names no width is a one-line error when the target is loaded, and a model that
cannot be built or run at a drawn size is refused for that example (`Unsupported`, with the
library's complaint), never failed and never silently resized.

HF's `attention_mask` is 1 where a token is real; the adapters derive it from <PAD> (id 0),
as a user does. Special ids follow the harness: <PAD> 0, <START> 1 (bos and decoder start),
<END> 2. Dropout is off. A model built "without positional encoding" has its position
information removed wherever it keeps it (`_remove_positions`), and is refused where it
still sees positions (`_check_positions_gone`) or has none to remove.
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

import copy
import functools
import importlib
import inspect
import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Literal

import torch
from torch import Tensor, nn
from transformer_spec.properties.targets.adapters import hf_config
from transformer_spec.properties.targets.adapters.language_model import generate_tokens
from transformer_spec.properties.targets.protocols import (
    Conventions,
    ModelKind,
    ModelSpec,
    Target,
    Unsupported,
    built_beyond,
    seed_torch,
)

from transformer_spec._options import HF_EXTRA_HINT

PAD, START, END = 0, 1, 2
EXTRA_HINT = HF_EXTRA_HINT
AttnImplementation = Literal["eager", "sdpa"] | None
LossSource = Literal["library", "logits"]

# Position tables (nn.Embedding) by attribute name, and T5's relative attention bias.
_POSITION_TABLES = ("wpe", "embed_positions", "position_embeddings", "relative_attention_bias")
# What a module holding positions is called: a table (learned or sinusoidal, parameter or
# buffer) is zeroed wherever it sits.
_POSITIONAL_NAME = re.compile(r"wpe|.*pos(ition)?.*|relative_attention_bias")
# A tiny model has thousands of parameters; one with more than this kept a default size.
_MOST_PARAMETERS = 20_000_000
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


@functools.cache
def _task_classes() -> dict[str, ModelKind]:
    """Every language-model class name transformers lists, with its kind: the table's,
    except that a sequence-to-sequence class whose forward takes no `decoder_input_ids` is
    decoder-only (an audio or vision LM listed there: its tower encodes media, and its text
    is one causal stream)."""
    tf = _transformers()
    tables = importlib.import_module("transformers.models.auto.modeling_auto")
    kinds: dict[str, ModelKind] = {}
    for table, kind in _TASKS:
        for names in getattr(tables, table).values():
            for name in (names,) if isinstance(names, str) else names:
                if kind == "encoder_decoder" and not _takes(tf, name, "decoder_input_ids"):
                    kinds.setdefault(name, "decoder_only")
                kinds.setdefault(name, kind)
    return kinds


def _takes(tf: Any, class_name: str, argument: str) -> bool:
    forward = getattr(getattr(tf, class_name, None), "forward", None)
    if forward is None:
        return True  # a name the library lists but does not export: left to the table
    return argument in inspect.signature(forward).parameters


def architectures() -> list[tuple[str, str, ModelKind]]:
    """(model type, class, kind) for every model type of transformers' language-model
    tables, sorted by model type: its first class, in the order `_TASKS` looks classes up.
    A class listed under several model types (GPT2LMHeadModel for gpt2 and gpt-sw3) is one
    architecture, named by its config's own model type."""
    tf = _transformers()
    tables = importlib.import_module("transformers.models.auto.modeling_auto")
    first: dict[str, str] = {}
    for table, _ in _TASKS:
        for model_type, names in getattr(tables, table).items():
            first.setdefault(model_type, names if isinstance(names, str) else names[0])
    types: dict[str, list[str]] = {}
    for model_type, name in first.items():
        types.setdefault(name, []).append(model_type)
    kinds = _task_classes()
    out = []
    for name, candidates in types.items():
        own = getattr(getattr(getattr(tf, name, None), "config_class", None), "model_type", "")
        out.append((own if own in candidates else candidates[0], name, kinds[name]))
    return sorted(out)


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


def _check_relative(net: Any, class_name: str) -> None:
    """Unsupported unless the model's positions are relative only: rotary frequencies (an
    `inv_freq` buffer) or ALiBi (an `alibi` switch or module), and no absolute table."""
    tables = [
        name
        for name, module in net.named_modules()
        if _POSITIONAL_NAME.fullmatch(name.rpartition(".")[2])
        and any(p.dim() == 2 for p in module.parameters(recurse=False))
    ]
    if tables:
        raise Unsupported(f"{class_name}: absolute position table {tables[0]}", always=True)
    rotary = any("inv_freq" in name for name, _ in net.named_buffers())
    alibi = (
        getattr(net.config, "alibi", False) is True
        or any("alibi" in name for name, _ in net.named_modules())
        or net.config.model_type in ("bloom", "mpt")
    )
    width = _rotary_width(net.config)
    if rotary and width is not None and (not width.is_integer() or int(width) % 2):
        raise Unsupported(
            f"{class_name}: at this size its rotary width is {width:g} channel(s), not even: "
            "the last channel has no partner, so it cannot turn by relative positions only"
        )
    try:
        beyond = rotary and _positions_beyond_rotary(net)
        unused = rotary and not alibi and _rotary_unused(net)
    except Exception as err:
        if next(net.parameters()).dtype != torch.float32:
            return  # as _probe does: a dtype the library cannot run is the properties' to fail
        raise Unsupported(
            f"{class_name}: cannot be called with position ids alone ({hf_config.first_line(err)})",
            always=True,
        ) from None
    if beyond:
        raise Unsupported(
            f"{class_name}: with its rotary frequencies zeroed, shifting the position ids "
            "still changes its logits: it reads positions for more than rotary angles (a "
            "recurrence that restarts at position 0, say)",
            always=True,
        )
    if unused:
        raise Unsupported(
            f"{class_name}: its layers as built at this size apply no rotary positions (its "
            "logits do not move when every rotary frequency is zeroed): a full-attention "
            "layer without positions, as in Cohere 2 and EXAONE 4, sees no order to check",
            always=False,
        )
    if not (rotary or alibi):
        raise Unsupported(
            f"{class_name}: neither rotary frequencies nor ALiBi found (its positions are "
            "not known to be relative only)",
            always=True,
        )


@torch.no_grad()
def _positions_beyond_rotary(net: Any) -> bool:
    """Whether the logits move under shifted position ids once every rotary frequency is
    zero (RecurrentGemma resets its recurrence where the position id is 0)."""
    if "position_ids" not in inspect.signature(net.forward).parameters:
        return False
    frequencies = [b for name, b in net.named_buffers() if "inv_freq" in name]
    kept = [b.clone() for b in frequencies]
    try:
        for b in frequencies:
            b.zero_()
        tokens = torch.tensor([[START, 5, 6, 7]], device=next(net.parameters()).device)
        a = net(input_ids=tokens, position_ids=torch.arange(4, device=tokens.device)[None])
        b = net(input_ids=tokens, position_ids=torch.arange(3, 7, device=tokens.device)[None])
        return not torch.allclose(a.logits, b.logits, rtol=1e-4, atol=1e-6)
    finally:
        for buffer, value in zip(frequencies, kept, strict=True):
            buffer.copy_(value)


@torch.no_grad()
def _rotary_unused(net: Any) -> bool:
    """Whether the logits stay bit for bit the same with every rotary frequency zeroed: the
    frequencies are there, but the layers built apply none (hybrids whose full-attention
    layers take no positions). Decided on a float32 copy when the model is 16-bit, where a
    small rotary effect at Hugging Face's initialisation may round away."""
    if next(net.parameters()).dtype in (torch.float16, torch.bfloat16):
        net = copy.deepcopy(net).float()
    frequencies = [b for name, b in net.named_buffers() if "inv_freq" in name]
    kept = [b.clone() for b in frequencies]
    tokens = torch.tensor([[START, 5, 6, 7, 8, 9]], device=next(net.parameters()).device)
    try:
        a = net(input_ids=tokens).logits
        for b in frequencies:
            b.zero_()
        return bool(torch.equal(a, net(input_ids=tokens).logits))
    finally:
        for buffer, value in zip(frequencies, kept, strict=True):
            buffer.copy_(value)


def _rotary_width(config: Any) -> float | None:
    """head_dim x partial_rotary_factor, where the config says both (StableLM: 0.25)."""
    params = getattr(config, "rope_parameters", None) or {}
    factor = params.get("partial_rotary_factor") if isinstance(params, dict) else None
    factor = getattr(config, "partial_rotary_factor", None) if factor is None else factor
    if not isinstance(factor, float | int) or factor == 1:
        return None
    heads = getattr(config, "num_attention_heads", None)
    head_dim = getattr(config, "head_dim", None) or (
        config.hidden_size // heads if isinstance(heads, int) and heads else None
    )
    if not isinstance(head_dim, int):
        return None
    return float(head_dim * factor)


def _check_positions_gone(net: Any, kind: ModelKind, device: torch.device) -> None:
    """Unsupported when the model still sees positions after _remove_positions.

    An encoder must give identical tokens identical logits at every position, and must not
    mix neighbouring tokens with a convolution over the sequence: ConvBERT's span
    convolution, Nystromformer's convolution of the values and FNet's Fourier transform
    know the order of the tokens with no table to remove. A decoder's logits must not
    change when every position id is shifted alike, as left padding shifts them: absolute
    positions are what left padding would show. (Relative ones, rotary frequencies kept
    somewhere else, are blind to a common shift; and no reordering test can tell them from a
    decoder without positions: from its second layer on, a causal decoder without any
    position already sees the order of its tokens, through what each one saw before it.)"""
    name = type(net).__name__
    if kind == "encoder_only":
        _no_sequence_convolution(net)
        same = torch.full((1, 6), 5, device=device)
        with torch.no_grad():
            out = net(input_ids=same).logits
        if not torch.allclose(out, out[:, :1].expand_as(out), rtol=1e-3, atol=_atol(out)):
            raise Unsupported(
                f"{name}: with its position tables and rotary frequencies zeroed, identical "
                "tokens still get different logits at different positions (its token mixing "
                "knows their order), so it cannot be built without positional encoding",
                always=True,
            )
    if kind == "decoder_only" and "position_ids" in inspect.signature(net.forward).parameters:
        tokens = torch.tensor([[5, 7, 6, 9]], device=device)
        with torch.no_grad():
            a = net(input_ids=tokens).logits
            b = net(input_ids=tokens, position_ids=torch.arange(3, 7, device=device)[None])
        if not torch.allclose(a, b.logits, rtol=1e-3, atol=_atol(a)):
            raise Unsupported(
                f"{name}: positions remain after its position tables and rotary frequencies "
                "were zeroed (shifting every position id by 3, as left padding does, changes "
                "its logits), so it cannot be built without positional encoding",
                always=True,
            )


def _atol(t: Tensor) -> float:
    return 1e-5 * float(t.abs().max().clamp(min=1))


def _no_sequence_convolution(net: nn.Module) -> None:
    for name, module in net.named_modules():
        if isinstance(module, nn.Conv1d | nn.Conv2d) and module.kernel_size[0] > 1:
            raise Unsupported(
                f"{type(net).__name__}: {name} convolves neighbouring tokens (kernel "
                f"{module.kernel_size[0]}): the order of the tokens is in its kernel, so it "
                "cannot be built without positional encoding",
                always=True,
            )


def build(
    class_name: str,
    spec: ModelSpec,
    *,
    attn: AttnImplementation = None,
    loss: LossSource = "logits",
    generation: bool = True,
) -> HFModel:
    """One model of `class_name` with the spec's sizes; Unsupported when it cannot have them:
    its config refuses them, it cannot be built with them, or it cannot run a 2-token input
    at them (each with the library's own complaint)."""
    cls = getattr(_transformers(), class_name)
    positions = spec.max_len
    net = _net(cls, class_name, spec, positions, attn)
    offset = _position_offset(net)
    if offset:  # RoBERTa numbers positions from <PAD> + 1: its table needs more rows
        net = _net(cls, class_name, spec, positions + offset, attn)
    count = sum(p.numel() for p in net.parameters())
    if count > _MOST_PARAMETERS:
        raise Unsupported(
            f"{class_name}: built at d_model={spec.d_model} it still has {count:,} parameters "
            "(a size its config names in a way the tiny config does not know), too many to "
            "check here",
            always=True,
        )
    table = net.get_input_embeddings()
    if not isinstance(table, nn.Embedding):
        raise Unsupported(
            f"{class_name}: its input embedding is a {type(table).__name__}, not an "
            "nn.Embedding (one table of token rows, which the properties read and train)",
            always=True,
        )
    embedding = tuple(table.weight.shape)
    if embedding != (spec.vocab_size, spec.d_model):
        raise Unsupported(
            f"{class_name}: token embedding of shape {embedding}, asked for "
            f"({spec.vocab_size}, {spec.d_model})"
        )
    model = GeneratingHFModel if generation and spec.kind != "encoder_only" else HFModel
    built = model(net, spec, loss=loss)
    _probe(built, class_name, spec, attn)
    if spec.relative_positions:  # after the probe: a model that cannot run is refused first
        _check_relative(built.net, class_name)
    built_beyond(built, spec)  # the config had them (hf_config refuses a spec it cannot meet)
    return built


def _net(
    cls: Any, class_name: str, spec: ModelSpec, positions: int, attn: AttnImplementation
) -> Any:
    config = hf_config.tiny_config(
        class_name,
        cls.config_class,
        spec,
        positions=positions,
        decoder=spec.kind == "decoder_only",
    )
    seed_torch(spec.seed)
    kwargs = {} if attn is None else {"attn_implementation": attn}
    try:
        return cls._from_config(config, **kwargs)
    except Exception as err:
        raise Unsupported(
            f"{class_name}: cannot be built at d_model={spec.d_model}, n_heads={spec.n_heads}, "
            f"d_ff={spec.d_ff}, n_layers={spec.n_layers} ({hf_config.first_line(err)})"
        ) from None


def _probe(model: "HFModel", class_name: str, spec: ModelSpec, attn: AttnImplementation) -> None:
    """One forward pass on a 2-token input: a model that cannot run at these sizes is
    refused here, with its complaint, instead of failing every property. Only the sizes
    are refused: a build in another dtype that fails where the float32 build of the same
    sizes runs (an MoE path with no float64 kernel) is handed to the properties, which
    fail on it."""
    error = _forward_error(model, spec)
    if error and spec.dtype != torch.float32:
        twin = replace(spec, dtype=torch.float32, positional=True)
        net = _net(getattr(_transformers(), class_name), class_name, twin, spec.max_len, attn)
        if not _forward_error(HFModel(net, twin), twin):
            error = ""
    if error:
        raise Unsupported(
            f"{class_name}: at d_model={spec.d_model}, n_heads={spec.n_heads}, d_ff={spec.d_ff}, "
            f"n_layers={spec.n_layers}, a forward pass on 2 tokens raised {error}"
        )
    if not spec.positional:
        _check_positions_gone(model.net, spec.kind, spec.device)


def _forward_error(model: "HFModel", spec: ModelSpec) -> str:
    tokens = torch.tensor([[START, 5]], device=spec.device)
    try:
        model.logits(tokens, tokens if spec.kind == "encoder_decoder" else None)
    except Exception as err:
        return hf_config.first_line(err)
    return ""


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
    *names: str,
    attn: AttnImplementation = None,
    name: str = "",
    description: str = "",
    loss: LossSource = "logits",
    generation: bool = True,
) -> Target:
    """A model-level target for a transformers class: `hf_target(name, "LlamaForCausalLM")`,
    as every constructor takes (name, what to check), or `hf_target("LlamaForCausalLM")`,
    named "hf:LlamaForCausalLM".

    attn: the attention implementation ("eager", "sdpa"), or None for transformers' default;
    loss: "logits" (cross-entropy of the model's logits) or "library" (HF's `labels=` loss);
    generation: with the harness's generation loop (decoders only)."""
    if len(names) not in (1, 2) or not all(isinstance(n, str) and n for n in names):
        raise TypeError(
            f"hf_target{names!r}: expected (name, class_name) or (class_name,) (non-empty str)"
        )
    if len(names) == 2 and name:
        raise TypeError(f"hf_target{names!r}: the name is given twice (name={name!r})")
    class_name = names[-1]
    name = names[0] if len(names) == 2 else name
    tf = _transformers()
    kind = model_kind(class_name)
    cls = getattr(tf, class_name, None)
    if cls is None:
        raise ValueError(f"{class_name!r}: transformers {tf.__version__} has no such class")
    if attn not in ("eager", "sdpa", None):
        raise ValueError(f"attn: {attn!r}, expected 'eager', 'sdpa' or None (the default)")
    if loss not in ("logits", "library"):
        raise ValueError(f"loss: {loss!r}, expected 'logits' or 'library'")
    _sizable(class_name, cls.config_class)
    how = "" if attn is None else f" ({attn})"
    return Target(
        name=name or f"hf:{class_name}" + (f":{attn}" if attn else ""),
        description=description
        or f"Hugging Face transformers {class_name}{how}, tiny random config, no download",
        conventions=_conventions(cls.config_class),
        model=lambda spec: build(class_name, spec, attn=attn, loss=loss, generation=generation),
        model_kinds=(kind,),
    )


def _sizable(class_name: str, config_class: Any) -> None:
    """ValueError when no parameter of the config (or of a sub-config) holds the model's
    width: nothing the notes size could be set."""
    try:
        default = config_class()
    except Exception:
        return  # refused per model built, with the config's complaint
    if not hf_config.has_width(default):
        raise ValueError(
            f"{class_name}: its config ({config_class.__name__}) has no parameter for d_model "
            "(hidden_size, n_embd, d_model, dim, embedding_size, ...), in itself or a "
            "sub-config"
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
