"""Training through the model's own loss (spec TRAIN-CROSS-ENTROPY, TRAIN-PAD-IGNORED,
TRAIN-END-TO-END, TRAIN-FINE-TUNE).

Token sequences start with <START> and are right-padded with <PAD> per item (each item
keeps at least one label). The harness's cross-entropy is computed in float64 from the
model's own logits, so only the loss's arithmetic is compared, not the model's rounding.
"""

from dataclasses import replace

import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import Tensor
from transformer_spec.properties.checks.generation import generative_kinds
from transformer_spec.properties.checks.gradients import (
    derivative_agrees,
    loss_moves,
    loss_value,
    typical_gradient,
)
from transformer_spec.properties.checks.model_cases import (
    ModelCase,
    _logits,
    _source,
    _tokens,
    model_cases,
    need_pad_id,
    pad_id,
    probe_model,
    vocab_size,
)
from transformer_spec.properties.harness.compare import check_close, relative_bound
from transformer_spec.properties.harness.reads import Reads, dead
from transformer_spec.properties.harness.registry import Check, Context, NotApplicable, prop
from transformer_spec.properties.harness.strategies import TokenCase, token_cases
from transformer_spec.properties.targets.protocols import ModelKind, TrainableModel

# One SGD step moves each row's entry with the largest gradient by this many spacings of
# the dtype at the row's largest value: it shows in every dtype, and stays a small step.
_SPACINGS = 4.0


def _padded(
    ctx: Context, model: TrainableModel, case: TokenCase, data: st.DataObject, min_kept: int
) -> Tensor:
    """<START> (when the model names one) + tokens, each item right-padded after n >=
    min_kept >= 2 tokens, so that it has at least min_kept - 1 labels (not padded when the
    model declares no <PAD>)."""
    tokens = _tokens(ctx, case)
    start_id = getattr(model, "start_id", None)
    if start_id is not None:
        start = torch.full((case.batch, 1), start_id, dtype=torch.long, device=ctx.device)
        tokens = torch.cat([start, tokens], dim=1)
    pad = pad_id(model)
    if pad is None:
        return tokens
    kept = data.draw(
        st.lists(st.integers(min_kept, tokens.shape[1]), min_size=case.batch, max_size=case.batch),
        label="kept",
    )
    padded = (
        torch.arange(tokens.shape[1], device=ctx.device)[None, :]
        >= torch.tensor(kept, device=ctx.device)[:, None]
    )
    return tokens.masked_fill(padded, pad)


def _cross_entropy64(logits: Tensor, labels: Tensor, pad: int | None) -> Tensor:
    """Mean over non-<PAD> labels of -log softmax(logits)[label], in float64."""
    logp = torch.log_softmax(logits.double(), dim=-1)
    picked = logp.gather(-1, labels[..., None])[..., 0]
    scored = labels != pad if pad is not None else torch.ones_like(labels, dtype=torch.bool)
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
    kinds = _own_loss_kinds(ctx)

    @given(model_cases(ctx), token_cases(), st.data())
    def check(mc: ModelCase, case: TokenCase, data: st.DataObject) -> None:
        kind, model, tokens, src = _setup(ctx, mc, case, data, kinds)
        got = loss_value(model, tokens, src).detach()
        logits = _logits(model, kind, tokens[:, :-1], src)
        want = _cross_entropy64(logits, tokens[:, 1:], pad_id(model))
        bound = relative_bound(ctx.tolerance.invariance, want)
        check_close(got, want, bound, f"{kind} loss vs cross-entropy of its logits", tokens)

    return check


@prop("training.pad_ignored", clauses=("TRAIN-PAD-IGNORED",), needs=("model",))
def pad_ignored(ctx: Context) -> Check:
    """Appending <PAD> columns leaves the loss unchanged (padded labels add nothing, and
    the mean is over non-<PAD> labels only)."""
    kinds = _own_loss_kinds(ctx, padding=True)

    @given(model_cases(ctx), token_cases(max_len=6), st.data())
    def check(mc: ModelCase, case: TokenCase, data: st.DataObject) -> None:
        kind, model, tokens, src = _setup(ctx, mc, case, data, kinds)
        extra = data.draw(st.integers(1, 4), label="extra_pad")
        pad = pad_id(model)
        assert pad is not None, "guarded by _own_loss_kinds(ctx, padding=True)"
        padding = torch.full((case.batch, extra), pad, device=ctx.device)
        a = loss_value(model, tokens, src).detach()
        b = loss_value(model, torch.cat([tokens, padding], dim=1), src).detach()
        bound = relative_bound(ctx.tolerance.invariance, a)
        check_close(b, a, bound, f"{kind} loss after appending {extra} <PAD> columns", tokens)

    return check


def _own_loss_kinds(ctx: Context, *, padding: bool = False) -> list[ModelKind]:
    """generative_kinds for a property of the loss itself: NotApplicable when the loss is
    the harness's own cross-entropy (an adapter's `harness_loss`), which it cannot test, or
    with `padding`, when the model declares no <PAD>."""
    kinds = generative_kinds(ctx, "loss")
    if padding:
        need_pad_id(ctx, kinds[0])
    probe = probe_model(ctx, kinds[0])
    if getattr(probe, "harness_loss", False):
        raise NotApplicable(
            "the target's module computes no loss: the harness's own cross-entropy stands in "
            "(declare loss= or targets_kwarg to check the module's)"
        )
    return kinds


def _scored_inputs(tokens: Tensor, pad: int | None) -> Tensor:
    """The ids fed in at positions whose label is scored (not <PAD>): their embedding rows
    reach the loss. (An input whose label is <PAD>, under right padding, reaches only
    unscored positions.)"""
    inputs, labels = tokens[:, :-1], tokens[:, 1:]
    ids: Tensor = torch.unique(inputs if pad is None else inputs[labels != pad])
    return ids


def _named(model: TrainableModel) -> dict[str, Tensor]:
    params = dict(model.parameters())
    if not params:
        raise AssertionError("parameters() returned nothing")
    return params


@prop("training.end_to_end_gradients", clauses=("TRAIN-END-TO-END",), needs=("model",))
def end_to_end_gradients(ctx: Context) -> Check:
    """One backward pass from the loss gives each parameter the loss depends on its
    gradient: the token embedding trains, its rows of scored input tokens get a non-zero
    gradient, and in float64 backprop's derivative equals the finite difference. Items keep
    at least two labels: with one, self-attention sees one key, and W_Q and W_K rightly get
    no gradient.

    A parameter without a gradient, or with an all-zero one, is judged by what it does to
    the loss (`_silent_by_design`), not by the reference's shape: frozen sinusoidal tables,
    zero-initialised gates, top-1 routers, global-attention projections and the
    cross-attention of a decoder used alone are designs; a detach, a discarded output and
    a weight frozen by mistake are bugs."""
    kinds = generative_kinds(ctx, "loss", "parameters", "embedding_parameter")

    @given(model_cases(ctx), token_cases(min_len=3), st.data())
    def check(mc: ModelCase, case: TokenCase, data: st.DataObject) -> None:
        kind, model, tokens, src = _setup(ctx, mc, case, data, kinds, min_kept=3)
        params = _named(model)
        _frozen_by_design(ctx, mc, kind, model, params, tokens, src)
        for p in params.values():
            p.grad = None
        loss_value(model, tokens, src).backward()  # type: ignore[no-untyped-call]
        silent = [n for n, p in params.items() if p.requires_grad and not _has_gradient(p)]
        grad = model.embedding_parameter().grad
        used = _scored_inputs(tokens, pad_id(model))
        if grad is None or not bool(grad[used].ne(0).any(dim=-1).all()):
            raise AssertionError(
                f"{kind}: embedding rows of input tokens {used.tolist()} did not all get a "
                "non-zero gradient"
            )
        exact: TrainableModel | None = None
        if ctx.dtype == torch.float64:
            exact = model
        elif "float64" in ctx.target.conventions.dtypes:
            exact = mc.build(ctx, kind, dtype=torch.float64)  # type: ignore[assignment]
        if silent:
            _silent_by_design(ctx, kind, model, exact, tokens, src, silent, mc.seed)
        if exact is not None:
            _gradient_is_derivative(ctx, mc.seed, kind, exact, tokens, src)

    return check


def _has_gradient(p: Tensor) -> bool:
    return p.grad is not None and bool(p.grad.ne(0).any())


def _frozen_by_design(
    ctx: Context,
    mc: ModelCase,
    kind: ModelKind,
    model: TrainableModel,
    params: dict[str, Tensor],
    tokens: Tensor,
    src: Tensor | None,
) -> None:
    """A parameter with requires_grad=False is frozen by design only if no seed draws it:
    a fixed table (sinusoidal positions) or a value another rule keeps (a balancing bias
    updated outside backprop) is the same in a model built from another seed. A frozen
    parameter that the seed draws, and that the loss reads, was meant to train (one the
    loss never reads, an audio tower given no audio, is not judged here). The token
    embedding must train."""
    frozen = {n: p for n, p in params.items() if not p.requires_grad}
    if not frozen:
        return
    m = model.embedding_parameter()
    if not m.requires_grad:
        raise AssertionError(
            f"{kind}: the token embedding does not require grad: it is never trained"
        )
    with Reads(frozen) as reads:
        loss_value(model, tokens, src)
    other = _named(replace(mc, seed=mc.seed + 1).build(ctx, kind))  # type: ignore[arg-type]
    drawn = [
        n for n in frozen if n in reads.read and n in other and not torch.equal(params[n], other[n])
    ]
    if drawn:
        raise AssertionError(
            f"{kind}: parameter {drawn[0]} does not require grad, yet its initial value "
            "depends on the seed: a weight drawn at random is meant to train (a parameter "
            "frozen by design holds a value no seed draws, such as a sinusoidal table)"
        )


def _silent_by_design(
    ctx: Context,
    kind: ModelKind,
    model: TrainableModel,
    exact: TrainableModel | None,
    tokens: Tensor,
    src: Tensor | None,
    silent: list[str],
    seed: int,
) -> None:
    """Parameters that got no gradient, or an all-zero one, pass only where the loss does
    not depend on them, which is judged on the float64 build when the target has one:

    - backprop's derivative along them must equal the finite difference: a loss that moves
      where backprop says it cannot has its gradient path cut (a detach, a value taken
      with `.item()`);
    - below float64, the loss must not move along them in float64 (beyond rounding): a
      gradient the float64 build has and the cell's dtype lost fails, unless it is a 16-bit
      underflow (below the dtype's smallest normal number);
    - one with no gradient at all must be unused by these inputs (the forward pass never
      reads it) or reach the loss only through steps without a gradient (top-k indices);
      one the forward pass reads and then drops is dead (a discarded layer output).
    The rows an embedding lookup declares as padding (`padding_idx`) are left out.

    What remains is a design: a zero-initialised gate multiplies its branch by zero, a
    top-1 router's renormalised weight is 1, a decoder used alone never runs its
    cross-attention, a key projection's bias shifts every score of a row alike."""
    judge = model if exact is None else exact
    params = _named(judge)
    with Reads({n: params[n] for n in silent}) as reads:
        loss_value(judge, tokens, src)
    for p in params.values():
        p.grad = None
    loss_value(judge, tokens, src).backward()  # type: ignore[no-untyped-call]
    g = torch.Generator().manual_seed(seed)
    dirs = _without_padding_rows(_unit({n: params[n] for n in silent}, g), reads.padding_rows)
    if not dirs:
        return
    names = ", ".join(silent[:3]) + (f" and {len(silent) - 3} more" if len(silent) > 3 else "")
    what = f"{kind}: the gradient of the loss over {names}, which got none"
    typical = typical_gradient(judge)
    derivative_agrees(ctx.tolerance.derivative, judge, tokens, src, dirs, what, scale=typical)
    if judge is not model and loss_moves(judge, tokens, src, dirs):
        _lost_below_float64(ctx, kind, judge, tokens, src, silent, g, reads.padding_rows)
    missing = {n: p for n, p in _named(model).items() if n in silent and p.grad is None}
    if not missing:
        return
    _, found = dead(lambda: loss_value(model, tokens, src).detach(), missing, g)
    if found:
        raise AssertionError(
            f"{kind}: parameter {found[0]} is read in the forward pass, but nothing computed "
            "from it reaches the loss, and moving it far leaves the loss unchanged: its "
            "result is discarded (a layer output never assigned?)"
        )


def _lost_below_float64(
    ctx: Context,
    kind: ModelKind,
    exact: TrainableModel,
    tokens: Tensor,
    src: Tensor | None,
    silent: list[str],
    g: torch.Generator,
    padding_rows: dict[str, set[int]],
) -> None:
    """AssertionError for the first of `silent` along which the float64 build's loss moves,
    unless its float64 gradient is below the cell dtype's smallest normal number (a 16-bit
    backward pass flushes it to zero: why float16 training needs loss scaling)."""
    params = _named(exact)
    tiny = torch.finfo(ctx.dtype).tiny
    for name in silent:
        one = _without_padding_rows(_unit({name: params[name]}, g), padding_rows)
        how = loss_moves(exact, tokens, src, one) if one else ""
        if not how:
            continue
        grad = params[name].grad
        largest = 0.0 if grad is None else float(grad.abs().max())
        if ctx.dtype.itemsize <= 2 and 0.0 < largest < tiny:
            continue
        raise AssertionError(
            f"{kind}: parameter {name} got no gradient in {ctx.dtype_name}, but the float64 "
            f"build's loss moves along it ({how}; its gradient there is up to {largest:.3g}, "
            f"not a {ctx.dtype_name} underflow, which needs one below {tiny:.3g})"
        )


def _without_padding_rows(
    dirs: dict[str, Tensor], padding_rows: dict[str, set[int]]
) -> dict[str, Tensor]:
    """`dirs` with the rows an embedding declares as padding left still (nn.Embedding's
    `padding_idx` row gets no gradient by design: RoCBert looks its shape and pronunciation
    tables up at the padding row when no shape or pronunciation ids are given); parameters
    left with no direction at all dropped."""
    out = {}
    for name, d in dirs.items():
        rows = sorted(padding_rows.get(name, ()))
        if rows:
            d = d.clone()
            d[rows] = 0.0
        if bool(d.ne(0).any()):
            out[name] = d
    return out


def _unit(params: dict[str, Tensor], g: torch.Generator) -> dict[str, Tensor]:
    """A random direction of norm 1 over `params`."""
    dirs = {n: torch.randn(p.shape, generator=g, dtype=torch.float64) for n, p in params.items()}
    norm = sum(float((d**2).sum()) for d in dirs.values()) ** 0.5
    return {n: (d / norm).to(params[n].device) for n, d in dirs.items()}


def _gradient_is_derivative(
    ctx: Context,
    seed: int,
    kind: ModelKind,
    model: TrainableModel,
    tokens: Tensor,
    src: Tensor | None,
) -> None:
    """In float64 (`model` is the float64 build), backprop's derivative along a random unit
    direction equals the finite difference: over all parameters, and over the embedding
    alone. A tensor detached on the way (the embedding before the layers, say) still moves
    the loss but not the gradient; a tied un-embedding would otherwise hide a detached
    input embedding."""
    params = {n: p for n, p in _named(model).items() if p.requires_grad}
    with Reads(params) as reads:
        loss_value(model, tokens, src)
    every = _unit(params, torch.Generator().manual_seed(seed))
    every = _without_padding_rows(every, reads.padding_rows)
    m = model.embedding_parameter()
    name = next(n for n, p in params.items() if p is m)
    if name not in every:
        return
    only_m = {name: every[name] / float(every[name].norm())}
    for what, dirs in (("every parameter", every), ("the embedding", only_m)):
        what = f"{kind} (float64): gradient of the loss over {what}"
        derivative_agrees(ctx.tolerance.derivative, model, tokens, src, dirs, what)


def _sgd_step(model: TrainableModel) -> None:
    """One SGD step over the parameters that require grad, with a learning rate per row (of
    a matrix; a vector is one row): the row's entry with the largest gradient moves by
    _SPACINGS spacings of the parameter's dtype at the row's largest value, so every row
    with a non-zero gradient changes, in every dtype (computed in float64, rounded once).

    A rate shared by the whole model, scaled to its largest gradient, left embedding rows
    unchanged: with an untied head initialised like Hugging Face's (std 0.02), an embedding
    row's largest gradient was 0.5% of the head's, so its update was 0.0012 where half a
    bfloat16 spacing near 1 is 0.002."""
    live = [p for p in model.parameters().values() if p.requires_grad and p.grad is not None]
    with torch.no_grad():
        for p in live:
            w = p.double().reshape(-1, p.shape[-1] if p.dim() else 1)
            g = p.grad.double().reshape(w.shape)  # type: ignore[union-attr]
            info = torch.finfo(p.dtype)
            largest = w.abs().amax(dim=-1, keepdim=True).clamp(min=info.tiny)
            spacing = info.eps * torch.exp2(torch.floor(torch.log2(largest)))
            steepest = g.abs().amax(dim=-1, keepdim=True)
            rate = torch.where(steepest > 0, _SPACINGS * spacing / steepest, 0.0)
            p.copy_((w - rate * g).reshape(p.shape).to(p.dtype))


@prop("training.fine_tunes_pretrained_embedding", clauses=("TRAIN-FINE-TUNE",), needs=("model",))
def fine_tunes_pretrained_embedding(ctx: Context) -> Check:
    """After load_pretrained_embedding(M), the embedding equals M; one SGD step changes the
    rows of the tokens in the batch unless freeze was asked, and none of them if it was."""
    methods = ("loss", "parameters", "embedding_parameter", "load_pretrained_embedding")
    kinds = generative_kinds(ctx, *methods)

    @given(model_cases(ctx), token_cases(), st.data())
    def check(mc: ModelCase, case: TokenCase, data: st.DataObject) -> None:
        kind, model, tokens, src = _setup(ctx, mc, case, data, kinds)
        freeze = data.draw(st.booleans(), label="freeze")
        g = torch.Generator().manual_seed(case.seed)
        fixed = ctx.target.model_fixed
        width = mc.d_model if fixed is None else fixed.d_model
        matrix = torch.randn(vocab_size(ctx), width, generator=g, dtype=torch.float64)
        matrix = matrix.to(ctx.device, ctx.dtype)
        model.load_pretrained_embedding(matrix, freeze=freeze)
        check_close(model.embedding_parameter(), matrix, 0.0, f"{kind}: embedding after loading")
        for p in model.parameters().values():
            p.grad = None
        loss_value(model, tokens, src).backward()  # type: ignore[no-untyped-call]
        _sgd_step(model)
        rows = _scored_inputs(tokens, pad_id(model))
        after = model.embedding_parameter().detach()
        if freeze and not torch.equal(after, matrix):
            moved = after.ne(matrix).any(dim=-1).nonzero()[:, 0].tolist()
            raise AssertionError(f"{kind}: frozen embedding rows {moved} changed in an SGD step")
        changed = after[rows].ne(matrix[rows]).any(dim=-1)
        if not freeze and not bool(changed.all()):
            grad = model.embedding_parameter().grad
            why = (
                "no gradient reached the embedding: is the pretrained embedding frozen?"
                if grad is None
                else "their largest gradients are "
                + ", ".join(f"{float(x):.3g}" for x in grad[rows[~changed]].abs().amax(dim=-1))
            )
            raise AssertionError(
                f"{kind}: embedding rows {rows[~changed].tolist()} of tokens in the batch did "
                f"not change in an SGD step after load_pretrained_embedding(freeze=False) "
                f"({why})"
            )

    return check
