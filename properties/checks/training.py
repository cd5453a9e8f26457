"""Training through the model's own loss (spec TRAIN-CROSS-ENTROPY, TRAIN-PAD-IGNORED,
TRAIN-END-TO-END, TRAIN-FINE-TUNE).

Token sequences start with <START> and are right-padded with <PAD> per item (each item
keeps at least one label). The harness's cross-entropy is computed in float64 from the
model's own logits, so only the loss's arithmetic is compared, not the model's rounding.
"""

import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import Tensor

from ..compare import check_close, relative_bound
from ..registry import Check, Context, prop
from ..strategies import TokenCase, token_cases
from ..targets import ModelKind, TrainableModel
from .generation import generative_kinds
from .model import VOCAB, ModelCase, _logits, _source, _tokens, model_cases

# One SGD step moves the parameter entry with the largest gradient by this much: large
# enough to show in bfloat16 (whose spacing near 1 is 2^-7), small enough to stay a step.
_STEP = 0.25
# Finite-difference step along a unit direction, in float64: small, so that a ReLU kink is
# rarely crossed (a crossing at 1e-4 gave a 0.6% mismatch on the reference), large enough
# that rounding (about 1e-16 * loss / step) stays far below the 1e-3 relative bound.
_H = 1e-6


def _padded(
    ctx: Context, model: TrainableModel, case: TokenCase, data: st.DataObject, min_kept: int
) -> Tensor:
    """<START> (when the model names one) + tokens, each item right-padded after n >=
    min_kept >= 2 tokens, so that it has at least min_kept - 1 labels."""
    tokens = _tokens(ctx, case)
    start_id = getattr(model, "start_id", None)
    if start_id is not None:
        start = torch.full((case.batch, 1), start_id, dtype=torch.long, device=ctx.device)
        tokens = torch.cat([start, tokens], dim=1)
    kept = data.draw(
        st.lists(st.integers(min_kept, tokens.shape[1]), min_size=case.batch, max_size=case.batch),
        label="kept",
    )
    pad = (
        torch.arange(tokens.shape[1], device=ctx.device)[None, :]
        >= torch.tensor(kept, device=ctx.device)[:, None]
    )
    return tokens.masked_fill(pad, model.pad_id)


def _loss(model: TrainableModel, tokens: Tensor, src: Tensor | None) -> Tensor:
    out = model.loss(tokens, src)
    if not (isinstance(out, Tensor) and out.dim() == 0 and out.is_floating_point()):
        got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise AssertionError(f"loss returned {got}, expected a floating-point scalar")
    return out


def _cross_entropy64(logits: Tensor, labels: Tensor, pad_id: int) -> Tensor:
    """Mean over non-<PAD> labels of -log softmax(logits)[label], in float64."""
    logp = torch.log_softmax(logits.double(), dim=-1)
    picked = logp.gather(-1, labels[..., None])[..., 0]
    scored = labels != pad_id
    return -(picked * scored).sum() / scored.sum()


def _setup(
    ctx: Context,
    mc: ModelCase,
    case: TokenCase,
    data: st.DataObject,
    kinds: list[ModelKind],
    min_kept: int = 2,
) -> tuple[ModelKind, TrainableModel, Tensor, Tensor | None]:
    kind = data.draw(st.sampled_from(kinds), label="kind")
    model: TrainableModel = mc.build(ctx, kind)  # type: ignore[assignment]
    src = _source(ctx, case, case.length) if kind == "encoder_decoder" else None
    return kind, model, _padded(ctx, model, case, data, min_kept), src


@prop("training.loss_is_cross_entropy", clauses=("TRAIN-CROSS-ENTROPY",), needs=("model",))
def loss_is_cross_entropy(ctx: Context) -> Check:
    """loss(tokens) equals the mean over non-<PAD> labels of -log p(tokens[t + 1]) under the
    logits at position t, computed in float64 from the model's logits of tokens[:, :-1]."""
    kinds = generative_kinds(ctx, "loss")

    @given(model_cases(), token_cases(), st.data())
    def check(mc: ModelCase, case: TokenCase, data: st.DataObject) -> None:
        kind, model, tokens, src = _setup(ctx, mc, case, data, kinds)
        got = _loss(model, tokens, src).detach()
        logits = _logits(model, kind, tokens[:, :-1], src)
        want = _cross_entropy64(logits, tokens[:, 1:], model.pad_id)
        bound = relative_bound(ctx.tolerance.invariance, want)
        check_close(got, want, bound, f"{kind} loss vs cross-entropy of its logits", tokens)

    return check


@prop("training.pad_ignored", clauses=("TRAIN-PAD-IGNORED",), needs=("model",))
def pad_ignored(ctx: Context) -> Check:
    """Appending <PAD> columns leaves the loss unchanged (padded labels add nothing, and
    the mean is over non-<PAD> labels only)."""
    kinds = generative_kinds(ctx, "loss")

    @given(model_cases(), token_cases(max_len=6), st.data())
    def check(mc: ModelCase, case: TokenCase, data: st.DataObject) -> None:
        kind, model, tokens, src = _setup(ctx, mc, case, data, kinds)
        extra = data.draw(st.integers(1, 4), label="extra_pad")
        padding = torch.full((case.batch, extra), model.pad_id, device=ctx.device)
        a = _loss(model, tokens, src).detach()
        b = _loss(model, torch.cat([tokens, padding], dim=1), src).detach()
        bound = relative_bound(ctx.tolerance.invariance, a)
        check_close(b, a, bound, f"{kind} loss after appending {extra} <PAD> columns", tokens)

    return check


def _scored_inputs(tokens: Tensor, pad_id: int) -> Tensor:
    """The ids fed in at positions whose label is scored (not <PAD>): their embedding rows
    reach the loss. (An input whose label is <PAD>, under right padding, reaches only
    unscored positions.)"""
    inputs, labels = tokens[:, :-1], tokens[:, 1:]
    ids: Tensor = torch.unique(inputs[labels != pad_id])
    return ids


def _named(model: TrainableModel) -> dict[str, Tensor]:
    params = dict(model.parameters())
    if not params:
        raise AssertionError("parameters() returned nothing")
    return params


@prop("training.end_to_end_gradients", clauses=("TRAIN-END-TO-END",), needs=("model",))
def end_to_end_gradients(ctx: Context) -> Check:
    """One backward pass from the loss reaches every parameter; every weight matrix gets a
    non-zero gradient, and so does the embedding row of every input token that is scored.
    Items keep at least two labels: with one, self-attention sees one key, and W_Q and W_K
    rightly get no gradient.

    Biases need only be reached: the key projection's bias has zero gradient in exact
    arithmetic (adding a constant to every score of a row leaves its softmax unchanged)."""
    kinds = generative_kinds(ctx, "loss", "parameters", "embedding_parameter")

    @given(model_cases(), token_cases(min_len=3), st.data())
    def check(mc: ModelCase, case: TokenCase, data: st.DataObject) -> None:
        kind, model, tokens, src = _setup(ctx, mc, case, data, kinds, min_kept=3)
        params = _named(model)
        for name, p in params.items():
            if not p.requires_grad:
                raise AssertionError(f"{kind}: parameter {name} does not require grad")
            p.grad = None
        _loss(model, tokens, src).backward()  # type: ignore[no-untyped-call]
        for name, p in params.items():
            if p.grad is None:
                raise AssertionError(f"{kind}: no gradient reached parameter {name}")
        zero = [n for n, p in params.items() if p.dim() >= 2 and not bool(p.grad.ne(0).any())]  # type: ignore[union-attr]
        if zero:
            _zero_gradients_underflow(ctx, mc, kind, tokens, src, zero)
        if "float64" in ctx.target.conventions.dtypes:
            _gradient_is_derivative(ctx, mc, kind, tokens, src)
        grad = model.embedding_parameter().grad
        used = _scored_inputs(tokens, model.pad_id)
        if grad is None or not bool(grad[used].ne(0).any(dim=-1).all()):
            raise AssertionError(
                f"{kind}: embedding rows of input tokens {used.tolist()} did not all get a "
                "non-zero gradient"
            )

    return check


def _zero_gradients_underflow(
    ctx: Context,
    mc: ModelCase,
    kind: ModelKind,
    tokens: Tensor,
    src: Tensor | None,
    zero: list[str],
) -> None:
    """Weight matrices with an all-zero gradient fail, unless the cell is 16-bit and the
    float64 build of the same model gives each a non-zero gradient below the dtype's smallest
    normal number: the 16-bit backward pass flushed it to zero (why float16 training needs
    loss scaling). Hugging Face's std-0.02 initialisation makes a tiny BART's key-projection
    gradient about that small. A cut path gives zero or None in float64 as well."""
    if ctx.dtype.itemsize > 2 or "float64" not in ctx.target.conventions.dtypes:
        raise AssertionError(f"{kind}: parameter {zero[0]} got an all-zero gradient")
    tiny = torch.finfo(ctx.dtype).tiny
    exact: TrainableModel = mc.build(ctx, kind, dtype=torch.float64)  # type: ignore[assignment]
    params = _named(exact)
    _loss(exact, tokens, src).backward()  # type: ignore[no-untyped-call]
    for name in zero:
        grad = params[name].grad
        largest = 0.0 if grad is None else float(grad.abs().max())
        if not 0.0 < largest < tiny:
            raise AssertionError(
                f"{kind}: parameter {name} got an all-zero gradient in {ctx.dtype_name}, and "
                f"{largest:.3g} at most in float64 (not a {ctx.dtype_name} underflow: that "
                f"needs a non-zero float64 gradient below {tiny:.3g})"
            )


def _directional(
    model: TrainableModel, tokens: Tensor, src: Tensor | None, dirs: dict[str, Tensor]
) -> tuple[float, float]:
    """(backprop's derivative of the loss along `dirs`, the central finite difference)."""
    params = model.parameters()
    for p in params.values():
        p.grad = None
    _loss(model, tokens, src).backward()  # type: ignore[no-untyped-call]
    analytic = 0.0
    for n, d in dirs.items():
        grad = params[n].grad
        analytic += 0.0 if grad is None else float((grad.double() * d).sum())
    values = []
    with torch.no_grad():
        for sign in (1.0, -1.0):
            for n, d in dirs.items():
                params[n].add_(sign * _H * d)
            values.append(float(_loss(model, tokens, src)))
            for n, d in dirs.items():
                params[n].sub_(sign * _H * d)
    return analytic, (values[0] - values[1]) / (2 * _H)


def _gradient_is_derivative(
    ctx: Context, mc: ModelCase, kind: ModelKind, tokens: Tensor, src: Tensor | None
) -> None:
    """In float64, backprop's derivative along a random unit direction equals the finite
    difference: over all parameters, and over the embedding alone. A tensor detached on
    the way (the embedding before the layers, say) still moves the loss but not the
    gradient; a tied un-embedding would otherwise hide a detached input embedding."""
    model: TrainableModel = mc.build(ctx, kind, dtype=torch.float64)  # type: ignore[assignment]
    params = {n: p for n, p in _named(model).items() if p.requires_grad}
    g = torch.Generator().manual_seed(mc.seed)
    every = {
        n: torch.randn(p.shape, generator=g, dtype=torch.float64).to(p.device)
        for n, p in params.items()
    }
    norm = sum(float((d**2).sum()) for d in every.values()) ** 0.5
    every = {n: d / norm for n, d in every.items()}
    m = model.embedding_parameter()
    name = next(n for n, p in params.items() if p is m)
    only_m = {name: every[name] / float(every[name].norm())}
    for what, dirs in (("every parameter", every), ("the embedding", only_m)):
        analytic, numeric = _directional(model, tokens, src, dirs)
        if not abs(analytic - numeric) <= 1e-7 + 1e-3 * abs(numeric):
            raise AssertionError(
                f"{kind} (float64): the loss's derivative along a random direction over "
                f"{what} is {numeric:.6g} by finite differences but {analytic:.6g} by "
                "backprop: some gradient path is cut (a detach?)"
            )


def _sgd_step(model: TrainableModel) -> None:
    """One SGD step over the parameters that require grad, its learning rate chosen so the
    largest update is _STEP (computed in float64, rounded once)."""
    live = [p for p in model.parameters().values() if p.requires_grad and p.grad is not None]
    largest = max((float(p.grad.abs().max()) for p in live), default=0.0)  # type: ignore[union-attr]
    if largest == 0.0:
        return
    with torch.no_grad():
        for p in live:
            p.copy_((p.double() - _STEP / largest * p.grad.double()).to(p.dtype))  # type: ignore[union-attr]


@prop("training.fine_tunes_pretrained_embedding", clauses=("TRAIN-FINE-TUNE",), needs=("model",))
def fine_tunes_pretrained_embedding(ctx: Context) -> Check:
    """After load_pretrained_embedding(M), the embedding equals M; one SGD step changes the
    rows of the tokens in the batch unless freeze was asked, and none of them if it was."""
    methods = ("loss", "parameters", "embedding_parameter", "load_pretrained_embedding")
    kinds = generative_kinds(ctx, *methods)

    @given(model_cases(), token_cases(), st.data())
    def check(mc: ModelCase, case: TokenCase, data: st.DataObject) -> None:
        kind, model, tokens, src = _setup(ctx, mc, case, data, kinds)
        freeze = data.draw(st.booleans(), label="freeze")
        g = torch.Generator().manual_seed(case.seed)
        matrix = torch.randn(VOCAB, mc.d_model, generator=g, dtype=torch.float64)
        matrix = matrix.to(ctx.device, ctx.dtype)
        model.load_pretrained_embedding(matrix, freeze=freeze)
        check_close(model.embedding_parameter(), matrix, 0.0, f"{kind}: embedding after loading")
        for p in model.parameters().values():
            p.grad = None
        _loss(model, tokens, src).backward()  # type: ignore[no-untyped-call]
        _sgd_step(model)
        rows = _scored_inputs(tokens, model.pad_id)
        after = model.embedding_parameter().detach()
        if freeze and not torch.equal(after, matrix):
            moved = after.ne(matrix).any(dim=-1).nonzero()[:, 0].tolist()
            raise AssertionError(f"{kind}: frozen embedding rows {moved} changed in an SGD step")
        changed = after[rows].ne(matrix[rows]).any(dim=-1)
        if not freeze and not bool(changed.all()):
            raise AssertionError(
                f"{kind}: embedding rows {rows[~changed].tolist()} of tokens in the batch did "
                "not change in an SGD step (is the pretrained embedding frozen?)"
            )

    return check
