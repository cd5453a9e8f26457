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
information removed wherever it keeps it (`hf_model._remove_positions`), and is refused
where it still sees positions (`hf_positions._check_positions_gone`) or has none to remove.
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

import functools
import importlib
import inspect
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Literal

import torch
from torch import nn
from transformer_spec.properties.targets.adapters import hf_config
from transformer_spec.properties.targets.adapters.hf_model import (
    START,
    GeneratingHFModel,
    HFModel,
    LossSource,
)
from transformer_spec.properties.targets.adapters.hf_positions import (
    _check_positions_gone,
    _check_relative,
    _position_offset,
)
from transformer_spec.properties.targets.conventions import Conventions
from transformer_spec.properties.targets.declarations import built_beyond
from transformer_spec.properties.targets.levels import ModelKind, ModelSpec, Unsupported, seed_torch
from transformer_spec.properties.targets.protocols import Target

from transformer_spec._extras import HF_EXTRA_HINT

EXTRA_HINT = HF_EXTRA_HINT
AttnImplementation = Literal["eager", "sdpa"] | None

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
