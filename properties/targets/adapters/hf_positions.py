"""The positions of a Hugging Face model as built: how far past its rows a position table is
indexed (`_position_offset`), and whether a model built for a spec has the positions it
asks for: none left after `_remove_positions` (`_check_positions_gone`), or relative ones
only (`_check_relative`). A model that has not is refused (`Unsupported`)."""

import copy
import inspect
from typing import Any

import torch
from torch import Tensor, nn
from transformer_spec.properties.targets.adapters import hf_config
from transformer_spec.properties.targets.adapters.hf_model import _POSITIONAL_NAME, START
from transformer_spec.properties.targets.levels import ModelKind, Unsupported

# Position tables (nn.Embedding) by attribute name, and T5's relative attention bias.
_POSITION_TABLES = ("wpe", "embed_positions", "position_embeddings", "relative_attention_bias")


def _position_offset(net: nn.Module) -> int:
    """How far past its row count a position table is indexed: RoBERTa-style tables (with a
    padding_idx) number the positions padding_idx + 1, padding_idx + 2, ..."""
    for name, module in net.named_modules():
        table = name.rpartition(".")[2] in _POSITION_TABLES and isinstance(module, nn.Embedding)
        if table and module.padding_idx is not None:
            return int(module.padding_idx) + 1
    return 0


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
