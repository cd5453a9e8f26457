"""torch.nn's attention modules and layers: nn.MultiheadAttention, nn.TransformerEncoderLayer,
nn.TransformerDecoderLayer, and nn.Transformer / nn.TransformerEncoder as whole models.

torch.nn's conventions (torch docs; ../shared/anchors/numerics.md): boolean masks are True
where a key must NOT be attended; nn.MultiheadAttention averages the weights over heads
unless `average_attn_weights=False`, and returns NaN for a batch item whose keys are all
padded. There is no causal flag of its own: the caller passes a causal `attn_mask` (here the
square mask of `nn.Transformer.generate_square_subsequent_mask`, or its boolean form).

Paths: "slow" runs with gradients enabled (the Python path); "fast" runs in eval mode under
no_grad, where nn.MultiheadAttention and nn.TransformerEncoderLayer take their fused native
path; "nested" also lets nn.TransformerEncoder pack padded batches into nested tensors.
"""

import contextlib
import math
import warnings
from collections.abc import Callable, Iterator

import torch
from torch import Tensor, nn
from transformer_spec.properties.targets.builtin import zero_linear
from transformer_spec.properties.targets.conventions import Conventions, MaskPolarity, WeightsKind
from transformer_spec.properties.targets.declarations import DeclarationTypeError
from transformer_spec.properties.targets.levels import (
    LayerSpec,
    MHASpec,
    ModelSpec,
    Projections,
    seed_torch,
)
from transformer_spec.properties.targets.protocols import Target

from transformer_spec import reference as R

_NN_POLARITY = "padding and masks use nn's polarity: True = must not attend"


def causal_blocks(q_len: int, k_len: int, device: torch.device) -> Tensor:
    """nn's boolean causal mask, True where a query must not attend. nn takes a caller-built
    mask and has no alignment rule of its own; square, it is nn.Transformer's
    generate_square_subsequent_mask; for unequal lengths the adapter aligns bottom-right
    (query i sees keys 0 .. i + k_len - q_len, as with a KV cache), as it declares."""
    rows = torch.arange(q_len, device=device)[:, None]
    return torch.arange(k_len, device=device)[None, :] > rows + (k_len - q_len)


def _additive(blocked: Tensor | None, dtype: torch.dtype) -> Tensor | None:
    if blocked is None:
        return None
    zeros = torch.zeros(blocked.shape, dtype=dtype, device=blocked.device)
    return zeros.masked_fill(blocked, -math.inf)


@contextlib.contextmanager
def _path(path: str) -> Iterator[None]:
    """The slow path needs autograd on (nn checks torch.is_grad_enabled()); the fast paths
    need it off."""
    with torch.enable_grad() if path == "slow" else torch.no_grad(), warnings.catch_warnings():
        # nested tensors are a "prototype" and say so on every call; it is not a finding
        warnings.filterwarnings("ignore", message=".*nested tensors is in prototype")
        yield


# ---- nn.MultiheadAttention --------------------------------------------------------------


class ModuleMHA:
    """A module with nn.MultiheadAttention's call signature, `module(query, key, value,
    key_padding_mask=, need_weights=, attn_mask=, average_attn_weights=)`, behind the
    harness's multi-head protocol. Masks go in the declared polarity, or additive
    (`float_masks`: 0 visible, -inf hidden); the causal mask is an `attn_mask` aligned
    bottom-right. Run with autograd on ("slow") or in eval under no_grad ("fast")."""

    def __init__(
        self,
        module: nn.Module,
        *,
        batch_first: bool,
        weights: WeightsKind,
        float_masks: bool,
        fast: bool,
        polarity: MaskPolarity = "true_blocks",
    ) -> None:
        self.module = module
        self.batch_first, self.weights = batch_first, weights
        self.float_masks, self.fast, self.polarity = float_masks, fast, polarity

    def __call__(
        self, x_query: Tensor, x_kv: Tensor, *, key_padding: Tensor | None, causal: bool
    ) -> tuple[Tensor, Tensor | None]:
        blocked = causal_blocks(x_query.shape[1], x_kv.shape[1], x_query.device) if causal else None
        if self.polarity == "true_attends":  # the mask as declared; float masks from blocked
            attn_mask = None if blocked is None else ~blocked
            padded = None if key_padding is None else ~key_padding
        else:
            attn_mask, padded = blocked, key_padding
        if self.float_masks:
            attn_mask, key_padding = (
                _additive(blocked, x_query.dtype),
                _additive(padded, x_query.dtype),
            )
        same = x_query is x_kv  # keep self-attention recognisable: the fast path needs it
        if not self.batch_first:
            x_query = x_query.transpose(0, 1)
            x_kv = x_query if same else x_kv.transpose(0, 1)
        with _path("fast" if self.fast else "slow"):
            out, weights = self.module(
                x_query,
                x_kv,
                x_kv,
                key_padding_mask=key_padding,
                attn_mask=attn_mask,
                need_weights=self.weights != "none",
                average_attn_weights=self.weights == "averaged",
            )
        if not self.batch_first:
            out = out.transpose(0, 1)
        return out.detach(), None if weights is None else weights.detach()

    def projections(self) -> Projections | None:
        """nn.MultiheadAttention's layout (in_proj_weight, or q/k/v_proj_weight, and
        out_proj); None for a module that keeps its weights otherwise."""
        m = self.module
        w, b = getattr(m, "in_proj_weight", None), getattr(m, "in_proj_bias", None)
        out = getattr(m, "out_proj", None)
        if w is None:
            parts = [getattr(m, f"{c}_proj_weight", None) for c in "qkv"]
            if not all(isinstance(p, Tensor) for p in parts):
                return None
            w = torch.cat(parts)  # type: ignore[arg-type]  # all tensors, checked above
        if not (isinstance(w, Tensor) and isinstance(out, nn.Linear)) or w.dim() != 2:
            return None
        d = w.shape[1]
        if w.shape[0] != 3 * d or tuple(out.weight.shape) != (d, d):
            return None
        bias = [None] * 3 if b is None else [b[:d], b[d : 2 * d], b[2 * d :]]
        return Projections(
            W_Q=w[:d].T.detach(),
            W_K=w[d : 2 * d].T.detach(),
            W_V=w[2 * d :].T.detach(),
            W_O=out.weight.T.detach(),
            b_Q=_detached(bias[0]),
            b_K=_detached(bias[1]),
            b_V=_detached(bias[2]),
            b_O=_detached(out.bias),
        )


def _detached(t: Tensor | None) -> Tensor | None:
    return None if t is None else t.detach()


class TorchMHA(ModuleMHA):
    def __init__(
        self, spec: MHASpec, *, batch_first: bool, average: bool, float_masks: bool, fast: bool
    ) -> None:
        seed_torch(spec.seed)
        module = nn.MultiheadAttention(
            spec.d_model,
            spec.n_heads,
            dropout=0.1,  # inert in eval mode
            batch_first=batch_first,
            device=spec.device,
            dtype=spec.dtype,
        ).eval()
        weights: WeightsKind = "none" if fast else "averaged" if average else "per_head"
        super().__init__(
            module, batch_first=batch_first, weights=weights, float_masks=float_masks, fast=fast
        )


_NAN_ROW = (
    "nn.MultiheadAttention returns NaN for a batch item whose keys are all padded "
    "(the reference returns zeros)"
)


_PATH_DEPENDENT_ROW = (
    "with need_weights=False, a batch item whose keys are all padded gives NaN on the native "
    "fast path (self-attention) but b_O on the SDPA path (cross-attention): no single policy"
)


def mha_target(*, batch_first: bool, average: bool, float_masks: bool, fast: bool) -> Target:
    name = "torch-mha" + "-seq-first" * (not batch_first) + "-averaged" * average
    name += "-fast" * fast
    weights = "none" if fast else "averaged" if average else "per_head"
    explanations = {
        "mask_polarity": _NN_POLARITY,
        "fully_masked_row": _PATH_DEPENDENT_ROW if fast else _NAN_ROW,
    }
    if weights != "per_head":
        explanations["weights"] = (
            "need_weights=False on the fast path: no weights"
            if fast
            else "average_attn_weights=True (nn's default): weights averaged over heads"
        )
    mask_form = "float (additive -inf)" if float_masks else "boolean"
    return Target(
        name=name,
        description=f"torch.nn.MultiheadAttention, batch_first={batch_first}, "
        f"average_attn_weights={average}, {mask_form} key_padding_mask and causal attn_mask, "
        + ("eval + no_grad + need_weights=False (fast path)" if fast else "autograd on"),
        conventions=Conventions(
            mask_polarity="true_blocks",
            fully_masked_row="unspecified" if fast else "nan",
            weights=weights,  # type: ignore[arg-type]
            explanations=explanations,
        ),
        mha=lambda spec: TorchMHA(
            spec, batch_first=batch_first, average=average, float_masks=float_masks, fast=fast
        ),
    )


MHAModuleFactory = Callable[[int, int], nn.Module]  # (d_model, n_heads) -> module
NN_MHA_CONVENTIONS = Conventions(
    mask_polarity="true_blocks",
    fully_masked_row="nan",
    explanations={"mask_polarity": _NN_POLARITY, "fully_masked_row": _NAN_ROW},
)


def mha_module_target(
    name: str,
    build: MHAModuleFactory,
    *,
    batch_first: bool = True,
    conventions: Conventions = NN_MHA_CONVENTIONS,
    float_masks: bool = False,
    description: str = "",
) -> Target:
    """A target for a module with nn.MultiheadAttention's call signature, built by
    `build(d_model, n_heads)` (seeded from the spec, then moved to its device and dtype,
    eval mode, called with autograd on).

    conventions: nn.MultiheadAttention's by default (boolean masks True = must not attend,
    NaN for a query whose keys are all padded, weights per head: `average_attn_weights=False`;
    declare weights="averaged" or "none" for the module's other forms); float_masks: pass
    the key padding and causal masks as additive float masks (0 visible, -inf hidden).
    Projections are read in nn.MultiheadAttention's layout (in_proj_weight or
    q/k/v_proj_weight, out_proj); a module without it makes the properties that need
    them not applicable."""
    if not callable(build):
        raise TypeError(f"build: {type(build).__name__} is not callable")
    if not isinstance(batch_first, bool) or not isinstance(float_masks, bool):
        raise DeclarationTypeError(
            f"batch_first={batch_first!r}, float_masks={float_masks!r}: expected True or False"
        )

    def mha(spec: MHASpec) -> ModuleMHA:
        seed_torch(spec.seed)
        module = build(spec.d_model, spec.n_heads).to(device=spec.device, dtype=spec.dtype)
        return ModuleMHA(
            module.eval(),
            batch_first=batch_first,
            weights=conventions.weights,
            float_masks=float_masks,
            fast=False,
            polarity=conventions.mask_polarity,
        )

    what = getattr(build, "__qualname__", type(build).__name__)
    return Target(
        name=name,
        description=description or f"{what}: nn.MultiheadAttention's call signature",
        conventions=conventions,
        mha=mha,
    )


# ---- nn.TransformerEncoderLayer / nn.TransformerDecoderLayer ------------------------------


class TorchLayer:
    """ "encoder": nn.TransformerEncoderLayer; "decoder": nn.TransformerDecoderLayer;
    "decoder_only": nn.TransformerEncoderLayer with a causal src_mask (GPT-style)."""

    def __init__(self, spec: LayerSpec, path: str) -> None:
        seed_torch(spec.seed)
        cls = nn.TransformerDecoderLayer if spec.kind == "decoder" else nn.TransformerEncoderLayer
        self.layer = cls(
            spec.d_model,
            spec.n_heads,
            dim_feedforward=spec.d_ff,
            dropout=0.1,  # inert in eval mode
            batch_first=True,
            norm_first=spec.norm == "pre",
            device=spec.device,
            dtype=spec.dtype,
        ).eval()
        self.kind, self.path = spec.kind, path

    def __call__(
        self,
        x: Tensor,
        memory: Tensor | None = None,
        *,
        key_padding: Tensor | None = None,
        memory_padding: Tensor | None = None,
    ) -> Tensor:
        t = x.shape[1]
        with _path(self.path):
            if self.kind == "encoder":
                out = self.layer(x, src_key_padding_mask=key_padding)
            elif self.kind == "decoder_only":
                causal = causal_blocks(t, t, x.device)
                out = self.layer(
                    x, src_mask=causal, src_key_padding_mask=key_padding, is_causal=True
                )
            else:
                out = self.layer(
                    x,
                    memory,
                    tgt_mask=causal_blocks(t, t, x.device),
                    tgt_key_padding_mask=key_padding,
                    memory_key_padding_mask=memory_padding,
                    tgt_is_causal=True,
                )
        result: Tensor = out.detach()
        return result

    @torch.no_grad()
    def zero_sublayer_outputs(self) -> None:
        zero_linear(self.layer.self_attn.out_proj)
        if isinstance(self.layer, nn.TransformerDecoderLayer):
            zero_linear(self.layer.multihead_attn.out_proj)
        zero_linear(self.layer.linear2)


def layers_target(path: str) -> Target:
    how = {
        "slow": "autograd on (the Python path)",
        "fast": "eval + no_grad (nn.TransformerEncoderLayer's fused fast path; "
        "nn.TransformerDecoderLayer has none)",
    }[path]
    return Target(
        name=f"torch-layers-{path}",
        description=f"torch.nn.TransformerEncoderLayer / TransformerDecoderLayer, "
        f"batch_first, post-LN and norm_first, {how}",
        conventions=Conventions(
            mask_polarity="true_blocks", explanations={"mask_polarity": _NN_POLARITY}
        ),
        layers=lambda spec: TorchLayer(spec, path),
        layer_kinds=("encoder", "decoder", "decoder_only"),
        layer_norms=("post", "pre"),
    )


# ---- nn.Transformer / nn.TransformerEncoder as whole models ------------------------------


class TorchTransformerModel(nn.Module):
    """Token embedding (nn.Embedding) + the reference's sinusoidal table + the nn stack +
    a linear un-embedding. Only the stack is under test; the wrapping is what a user of
    nn.Transformer writes around it."""

    pad_id = 0
    masks_padding = True  # key_padding_mask from the <PAD> tokens, in every stack

    def __init__(self, spec: ModelSpec, path: str) -> None:
        super().__init__()
        seed_torch(spec.seed)
        d, kind = spec.d_model, spec.kind
        self.kind, self.path = kind, path
        self.embed = nn.Embedding(spec.vocab_size, d)
        table = R.sinusoidal_interleaved(spec.max_len, d) if spec.positional else None
        self.register_buffer("table", table)
        layer = nn.TransformerEncoderLayer(
            d, spec.n_heads, spec.d_ff, dropout=0.1, batch_first=True
        )
        nested = path == "nested"
        self.stack: nn.Module
        if kind == "encoder_decoder":
            self.stack = nn.Transformer(
                d,
                spec.n_heads,
                spec.n_layers,
                spec.n_layers,
                spec.d_ff,
                dropout=0.1,
                batch_first=True,
                custom_encoder=nn.TransformerEncoder(
                    layer, spec.n_layers, nn.LayerNorm(d), enable_nested_tensor=nested
                ),
            )
        else:
            self.stack = nn.TransformerEncoder(layer, spec.n_layers, enable_nested_tensor=nested)
        self.unembed = nn.Linear(d, spec.vocab_size)
        self.to(device=spec.device, dtype=spec.dtype).eval()

    def _embed(self, tokens: Tensor) -> Tensor:
        x: Tensor = self.embed(tokens) * math.sqrt(self.embed.embedding_dim)
        table = self.table
        if isinstance(table, Tensor):
            x = x + table[: tokens.shape[1]].to(x.dtype)
        return x

    def logits(self, tokens: Tensor, src: Tensor | None = None) -> Tensor:
        t = tokens.shape[1]
        with _path(self.path):
            x = self._embed(tokens)
            if self.kind == "encoder_decoder":
                assert src is not None, "an encoder-decoder model needs src"
                src_pad = src == self.pad_id
                y = self.stack(
                    self._embed(src),
                    x,
                    tgt_mask=causal_blocks(t, t, x.device),
                    src_key_padding_mask=src_pad,
                    tgt_key_padding_mask=tokens == self.pad_id,
                    memory_key_padding_mask=src_pad,
                    tgt_is_causal=True,
                )
            elif self.kind == "decoder_only":
                y = self.stack(
                    x,
                    mask=causal_blocks(t, t, x.device),
                    src_key_padding_mask=tokens == self.pad_id,
                    is_causal=True,
                )
            else:
                y = self.stack(x, src_key_padding_mask=tokens == self.pad_id)
            if y.is_nested:
                y = y.to_padded_tensor(0.0, (tokens.shape[0], t, y.size(-1)))
            out: Tensor = self.unembed(y)
        return out.detach()

    def incremental_logits(self, tokens: Tensor, src: Tensor | None = None) -> Tensor | None:
        return None  # nn.Transformer has no KV cache


def transformer_target(path: str) -> Target:
    how = {
        "slow": "autograd on (the Python path)",
        "fast": "eval + no_grad, enable_nested_tensor=False (the fused encoder fast path)",
        "nested": "eval + no_grad, enable_nested_tensor=True (padded batches as nested tensors)",
    }[path]
    explanations = {"mask_polarity": _NN_POLARITY}
    return Target(
        name=f"torch-transformer-{path}",
        description="torch.nn.Transformer (encoder-decoder) and torch.nn.TransformerEncoder "
        f"(encoder-only; decoder-only with a causal mask), post-LN, {how}; "
        "nn.Embedding x sqrt(d_model) + sinusoidal positions in, nn.Linear out",
        conventions=Conventions(mask_polarity="true_blocks", explanations=explanations),
        model=lambda spec: TorchTransformerModel(spec, path),
        model_kinds=("encoder_decoder", "decoder_only", "encoder_only"),
    )


TARGETS: dict[str, Callable[[], Target]] = {
    "torch-mha": lambda: mha_target(batch_first=True, average=False, float_masks=False, fast=False),
    "torch-mha-averaged": lambda: mha_target(
        batch_first=True, average=True, float_masks=True, fast=False
    ),
    "torch-mha-seq-first": lambda: mha_target(
        batch_first=False, average=False, float_masks=True, fast=False
    ),
    "torch-mha-seq-first-averaged": lambda: mha_target(
        batch_first=False, average=True, float_masks=False, fast=False
    ),
    "torch-mha-fast": lambda: mha_target(
        batch_first=True, average=False, float_masks=False, fast=True
    ),
    "torch-layers-slow": lambda: layers_target("slow"),
    "torch-layers-fast": lambda: layers_target("fast"),
    "torch-transformer-slow": lambda: transformer_target("slow"),
    "torch-transformer-fast": lambda: transformer_target("fast"),
    "torch-transformer-nested": lambda: transformer_target("nested"),
}
