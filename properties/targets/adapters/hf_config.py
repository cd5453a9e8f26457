"""A tiny config for a transformers model class, from the config's own parameter names.

Every integer size of the class's default config (and of its sub-configs: a text config, a
vision or audio tower) whose name says what it is takes the notes' value for it: widths
`d_model`, heads `n_heads` (key-value heads too, unless the spec asks for n_kv_heads), FFN widths
`d_ff` (an MoE expert's and a shared expert's included), layers `n_layers`, head widths
`d_k` (half each for multi-head latent attention's rotary and non-rotary parts), context
lengths `max_len`, attention windows the spec's window or else `max_len` (a window as long as
the context changes nothing),
vocabularies `vocab_size`; experts 4 with 2 per token; FFN width ratios d_ff / d_model.
A size the config leaves unset (None: derived, or off) stays unset, so no window or
compression is switched on. Dropout is off, and the harness's special ids are set.

`tiny_config` raises `Unsupported` (one line, the config's own complaint) when the config
refuses the sizes: a model that cannot be built at a drawn size is refused, never failed.
"""

import re
from typing import Any

from transformer_spec.properties.targets.levels import ModelSpec, Unsupported

PAD, START, END = 0, 1, 2

# (name pattern, size), tried in order; a name matches the whole pattern.
_RULES: tuple[tuple[str, str], ...] = (
    (r"qk_(nope|rope)_head_dim", "half_d_k"),
    (r"(q|kv|o)_lora_rank", "d_model"),
    (r"(intermediate|expansion|mlp|ffn)_(multiple_size|ratio)", "ratio"),
    (r"hidden_size_per_layer_input|laurel_rank|attention_hidden_size", "keep"),
    (r"num_kv_shared_layers", "zero"),  # Gemma 3n: layers that reuse an earlier one's cache
    (r"num_filters", "few"),  # an audio tokenizer's convolution channels, doubled per stage
    (r"intra_bottleneck_size|(input|output)_embedding_size", "d_model"),
    (
        r"hidden_size|n_embd|n_embed|d_model|dim|embedding_size|emb_dim|embedding_dim"
        r"|word_embed_proj_dim|true_hidden_size|pooler_hidden_size",
        "d_model",
    ),
    (
        r"num_key_value_heads|num_kv_heads|n_kv_heads|\w+_num_key_value_heads",
        "kv_heads",
    ),
    (
        r"num_attention_heads|n_head|num_heads|n_heads|(num_)?(encoder|decoder)_attention_heads"
        r"|\w+_num_attention_heads"
        r"|index_n_heads|linear_num_(key_|value_)?heads|mamba_n_heads|mamba_num_heads"
        r"|num_(self|cross)_attention_heads",
        "n_heads",
    ),
    (
        r"\w*intermediate_size\w*|n_inner|d_ff|dff|dim_ff|d_inner|hidden_dim"
        r"|\w*ffn_dim|\w*ffn_hidden_size",
        "d_ff",
    ),
    (
        r"num_hidden_layers|n_layer|num_layers|n_layers|num_(decoder|encoder)_layers"
        r"|(encoder|decoder)_layers",
        "n_layers",
    ),
    (r"head_dim|d_kv|rotary_dim|d_head|dim_head|kv_channels|\w+_head_dim", "d_k"),
    (r"(mamba_)?d_state|state_size|ssm_state_size", "state"),
    (r"(mamba_)?chunk_size|block_size", "max_len"),  # a scan or block attention pads to these
    (r"num_global_tokens", "few"),
    (r"num_experts|n_routed_experts|num_local_experts|moe_num_experts", "experts"),
    (r"num_experts_per_tok|num_experts_per_token|moe_topk|moe_k", "experts_per_token"),
    (r"n_group|num_expert_group|topk_group|first_k_dense_replace|num_dense_layers", "one"),
    (r"(H|L)_cycles", "one"),  # HRM's recurrences: one cycle each, every step with its gradient
    (r"type_vocab_size|n_groups", "one"),  # one segment; mamba2's groups divide its heads
    (
        r"sliding_window|sliding_window_size|window_size|local_attention_window_len",
        "window",
    ),
    (  # windows of other shapes (symmetric, chunked, radius): off, as long as the context
        r"attention_window|local_attention|attention_chunk_size|local_radius|keep_window_size",
        "max_len",
    ),
    (
        r"max_position_embeddings|n_positions|n_ctx|max_seq_len|model_max_length"
        r"|max_(encoder|decoder)_position_embeddings|original_max_position_embeddings",
        "max_len",
    ),
    (
        r"vocab_size|decoder_vocab_size|(src|tgt)_vocab_size|unpadded_vocab_size"
        r"|vocab_size_per_layer_input|entity_vocab_size",
        "vocab",
    ),
)
# Set even where the default is None (derived, where the model derives it at all): an FFN's
# width, a head's width, key-value heads and the vocabulary are safe to give.
_EVEN_IF_UNSET = ("d_ff", "d_k", "vocab", "n_heads", "kv_heads")
_SPECIALS = {
    "pad_token_id": PAD,
    "bos_token_id": START,
    "eos_token_id": END,
    "decoder_start_token_id": START,
    "forced_eos_token_id": None,
    "forced_bos_token_id": None,
    "use_cache": True,
}


def size_of(name: str) -> str | None:
    """Which of the notes' sizes a config parameter called `name` holds, or None."""
    for pattern, size in _RULES:
        if re.fullmatch(pattern, name):
            return None if size == "keep" else size
    return None


def _values(spec: ModelSpec, positions: int) -> dict[str, int | float]:
    d_k = spec.d_model // spec.n_heads
    return {
        "d_model": spec.d_model,
        "n_heads": spec.n_heads,
        "d_ff": spec.d_ff,
        "n_layers": spec.n_layers,
        "d_k": d_k,
        "half_d_k": max(d_k // 2, 2),
        "experts": 4,
        "state": 16,
        "experts_per_token": 2,
        "one": 1,
        "zero": 0,
        "few": 4,
        "max_len": positions + positions % 2,  # windows must be even (Longformer)
        # Grouped key/value heads and a sliding window only where the spec asks for them;
        # otherwise one key/value head per query head, and a window as long as the context.
        "kv_heads": spec.n_heads if spec.n_kv_heads is None else spec.n_kv_heads,
        "window": positions + positions % 2 if spec.window is None else spec.window,
        "vocab": spec.vocab_size,
        "ratio": spec.d_ff / spec.d_model,
    }


def _fields(config: Any) -> dict[str, Any]:
    """The config's own parameters and their default values."""
    try:
        return dict(config.to_dict())
    except Exception:  # a config that cannot even describe itself: its attributes
        return dict(vars(config))


def overrides(config: Any, spec: ModelSpec, positions: int, *, decoder: bool) -> dict[str, Any]:
    """The keyword arguments that make `config` (a default instance) tiny, sub-configs
    included (as dicts of their own overrides)."""
    values, out = _values(spec, positions), dict[str, Any]()
    for name, default in _fields(config).items():
        sub = vars(config).get(name)  # not getattr: some configs refuse per-layer reads
        if _is_config(sub):  # a composite's own decoder is causal and reads the encoder
            own = overrides(sub, spec, positions, decoder=decoder or name == "decoder")
            if name == "decoder" and "add_cross_attention" in _init_names(sub):
                own["add_cross_attention"] = True
            out[name] = own
            continue
        if isinstance(default, dict) and name.startswith("rope"):
            out[name] = _rope(default, values)
            continue
        if name == "per_layer_config" and isinstance(default, dict):
            out[name] = {}  # no layer keeps a default size of its own (Gemma 4's 512-wide heads)
            continue
        size = size_of(name)
        if size is None or isinstance(default, bool):
            continue
        asked = size == "window" and spec.window is not None  # a window that is off by default
        if isinstance(default, int | float) or (
            default is None and (size in _EVEN_IF_UNSET or asked)
        ):
            value = values[size]
            out[name] = float(value) if isinstance(default, float) else int(value)
    fields = _fields(config)
    out.update(_layer_pattern(fields, spec.n_layers))
    out.update(_consistent(fields, out, spec))
    out.update(_beyond_notes(fields, out, spec))
    out.update({n: v for n, v in _SPECIALS.items() if n in fields})
    out.update({n: 0.0 for n, v in fields.items() if _is_dropout(n) and isinstance(v, float)})
    if decoder:
        out.update(causal_switches(config))
    return out


def causal_switches(config: Any) -> dict[str, Any]:
    """The switches that make a model of an encoder family causal, where it is used as a
    causal LM: BertLMHeadModel and its kin (`is_decoder`), XLM (`causal`), XLNet
    (`attn_type="uni"`). Left off, they build a bidirectional model under a causal-LM class."""
    fields = _fields(config)
    out: dict[str, Any] = {}
    if "is_decoder" in _init_names(config):
        out["is_decoder"] = True
    if isinstance(fields.get("causal"), bool):
        out["causal"] = True
    if fields.get("attn_type") == "bi":
        out["attn_type"] = "uni"
    return out


# Per-layer patterns of hybrid models (attention beside linear attention, Mamba or
# convolution layers), and where their attention layers sit.
_PATTERNS = ("layer_types", "layers_block_type", "block_types")
_ATTENTION_AT = ("attn_layer_indices", "full_attn_idxs", "hybrid_layer_ids")


def _is_attention(kind: object) -> bool:
    text = str(kind)
    return ("attention" in text or text == "hybrid") and "linear" not in text


def _layer_pattern(fields: dict[str, Any], n: int) -> dict[str, Any]:
    """A hybrid model's layer pattern cut to n layers, ending at its first full-attention
    layer, or its first attention layer of any kind (a hybrid's first layers are often all
    Mamba, linear or sliding attention, and a model with no attention layer cannot run):
    the same cut for every per-layer list, attention at the last layer where the pattern is
    given by indices or a period."""
    out: dict[str, Any] = {}
    primary = next((fields[k] for k in _PATTERNS if isinstance(fields.get(k), list)), None)
    if primary:
        full = [i for i, kind in enumerate(primary) if "full" in str(kind)]
        some = [i for i, kind in enumerate(primary) if _is_attention(kind)]
        first = (full or some or [n - 1])[0]
        start = max(0, min(first - n + 1, len(primary) - n))
        for name, value in fields.items():
            is_pattern = name in _PATTERNS or name.endswith("layer_types")
            if is_pattern and isinstance(value, list) and len(value) == len(primary):
                out[name] = value[start : start + n]
    for name in _ATTENTION_AT:
        if name in fields:
            out[name] = [n - 1]
    if isinstance(fields.get("attn_layer_period"), int):
        out["attn_layer_period"], out["attn_layer_offset"] = n, n - 1
    return out


def _consistent(fields: dict[str, Any], out: dict[str, Any], spec: ModelSpec) -> dict[str, Any]:
    """Sizes some configs tie to others, set to agree: multi-head latent attention's rotary
    width is its `head_dim`; a Mamba-2 head is expand * d_model / heads wide; GPT-Neo lists
    its attention kinds per layer."""
    tied: dict[str, Any] = {}
    if "qk_rope_head_dim" in out and "head_dim" in fields:
        tied["head_dim"] = out["qk_rope_head_dim"]
    if isinstance(fields.get("expand"), int) and "num_heads" in out and "head_dim" in out:
        tied["head_dim"] = fields["expand"] * spec.d_model // spec.n_heads
    if isinstance(fields.get("attention_types"), list):
        tied["attention_types"] = [[["global", "local"][: spec.n_layers], 1]]
    return tied


def _beyond_notes(fields: dict[str, Any], out: dict[str, Any], spec: ModelSpec) -> dict[str, Any]:
    """What a spec asking for grouped key/value heads or a sliding window needs: a config
    that has them (else Unsupported), and a window switched on in every attention layer
    (Qwen2's use_sliding_window and max_window_layers; the per-layer types of Gemma 2 and 3
    and Cohere 2, which alternate windowed and full layers)."""
    named = {size_of(name) for name in fields}
    if spec.n_kv_heads is not None and "kv_heads" not in named:
        raise Unsupported("its config has no key/value head count (no grouped-query attention)")
    if spec.window is None:
        return {}
    if "window" not in named:
        raise Unsupported("its config has no sliding window")
    switched: dict[str, Any] = {}
    if "use_sliding_window" in fields:
        switched["use_sliding_window"] = True
    if "max_window_layers" in fields:
        switched["max_window_layers"] = 0
    kinds = fields.get("layer_types")
    knows = "use_sliding_window" in fields or (
        isinstance(kinds, list) and "sliding_attention" in kinds
    )
    if isinstance(kinds, list) and not knows:  # MiniMax: full and linear layers only
        raise Unsupported("its layer kinds include no sliding attention")
    for name in ("layer_types", *[n for n in fields if n.endswith("layer_types")]):
        kinds = out.get(name, fields.get(name))
        if isinstance(kinds, list):
            switched[name] = [_windowed(k) for k in kinds[: spec.n_layers]]
    if isinstance(fields.get("attention_types"), list):  # GPT-Neo: [[kinds, repeats]]
        switched["attention_types"] = [[["local"], spec.n_layers]]
    return switched


# Layer kinds that mix no tokens: beside them, windowed attention is the only token mixer.
_POSITIONWISE = ("mlp", "moe", "dense", "sparse", "sliding_attention", "local")


def check_windowed(config: Any) -> None:
    """Unsupported unless every token-mixing layer of a built config attends within the
    window: a config may keep a full-attention layer (Gemma 3n and 4 keep the last one), or
    mix tokens by other means (convolutions, linear attention, recurrences), which reach
    past any window."""
    for name in _PATTERNS:
        kinds = getattr(config, name, None)
        if not isinstance(kinds, list):
            continue
        other = [k for k in kinds if not any(p in str(k) for p in _POSITIONWISE)]
        if other:
            raise Unsupported(
                f"its layers of kind {other[0]!r} ({name}) are not windowed attention, so "
                "tokens reach past any window"
            )


def _windowed(kind: object) -> object:
    return "sliding_attention" if kind == "full_attention" else kind


def _is_dropout(name: str) -> bool:
    return "dropout" in name or "pdrop" in name or name == "layerdrop"


def has_width(config: Any) -> bool:
    """Whether a parameter of `config`, or of a sub-config, holds the model's width."""
    for name, default in _fields(config).items():
        sub = vars(config).get(name)
        if _is_config(sub) and has_width(sub):
            return True
        if size_of(name) == "d_model" and isinstance(default, int):
            return True
    return False


def _rope(params: dict[str, Any], values: dict[str, int | float]) -> dict[str, Any]:
    """Rotary parameters with their original context length (scaling rules) tiny too;
    per-layer-type tables (a dict of dicts) alike."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, dict):
            out[key] = _rope(value, values)
        elif key == "original_max_position_embeddings" and isinstance(value, int):
            out[key] = int(values["max_len"])
        else:
            out[key] = value
    return out


def _is_config(value: object) -> bool:
    return hasattr(value, "to_dict") and hasattr(value, "model_type")


def _init_names(config: Any) -> set[str]:
    import inspect

    return set(inspect.signature(type(config).__init__).parameters) - {"self", "kwargs"}


def tiny_config(
    class_name: str, config_class: Any, spec: ModelSpec, *, positions: int, decoder: bool
) -> Any:
    """`config_class` with the spec's sizes; Unsupported when it refuses them."""
    try:
        default = config_class()
    except Exception as err:
        raise Unsupported(
            f"{class_name}: its default config cannot be made ({first_line(err)})",
            always=True,
        ) from None
    kwargs = overrides(default, spec, positions, decoder=decoder)
    try:
        config = config_class(**kwargs)
    except Exception as err:
        raise Unsupported(
            f"{class_name}: its config refuses d_model={spec.d_model}, n_heads={spec.n_heads}, "
            f"d_ff={spec.d_ff}, n_layers={spec.n_layers} ({first_line(err)})"
        ) from None
    if spec.window is not None:
        check_windowed(config)
    return config


def first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    text = " ".join(lines[:2]) if lines else ""
    return f"{type(err).__name__}: {text}"[:300]
