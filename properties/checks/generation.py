"""Autoregressive generation through the model's own `generate` (spec GEN-START, GEN-APPEND,
GEN-STOP, GEN-GREEDY, GEN-SAMPLE).

Each generated token is checked against the model's own full-pass logits for the prefix it
was generated from. A token counts as the greedy choice when its logit is within the
invariance bound of the largest: a cached step and a full pass may round differently, and a
near tie may then go either way.
"""

import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import Tensor
from transformer_spec.properties.checks.model_cases import (
    ModelCase,
    _logits,
    _source,
    _tokens,
    max_len,
    model_cases,
    probe_model,
    vocab_size,
)
from transformer_spec.properties.harness.compare import relative_bound, show
from transformer_spec.properties.harness.registry import Check, Context, NotApplicable, prop
from transformer_spec.properties.harness.strategies import TokenCase, token_cases
from transformer_spec.properties.targets.protocols import GenerativeModel, ModelKind

GENERATIVE: tuple[ModelKind, ...] = ("encoder_decoder", "decoder_only")
# GEN-SAMPLE: draws per test, and the p-value below which the goodness-of-fit test fails.
# With 25 examples per run, a correct sampler fails a ci run with probability <= 25 * 1e-6.
_DRAWS = 2000
_ROWS_PER_CALL = 500
_ALPHA = 1e-6


def generative_kinds(ctx: Context, *methods: str) -> list[ModelKind]:
    """The target's decoder kinds, or NotApplicable when it has none or its model lacks one
    of `methods` or declares it None (checked while building, on one tiny model)."""
    kinds = [k for k in ctx.target.model_kinds if k in GENERATIVE]
    if not kinds:
        raise NotApplicable("target offers no decoder-only or encoder-decoder model")
    probe = probe_model(ctx, kinds[0])
    missing = [m for m in methods if getattr(probe, m, None) is None]
    if missing:
        raise NotApplicable(f"the target's model has or declares no {', '.join(missing)}")
    return kinds


def _generate(
    model: GenerativeModel,
    prompt: Tensor | None,
    src: Tensor | None,
    n: int,
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    out = model.generate(prompt, src, n, sample=generator is not None, generator=generator)
    if not isinstance(out, Tensor) or out.dim() != 2:
        got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise AssertionError(f"generate returned {got}, expected (batch, length) token ids")
    return out


def _src(ctx: Context, kind: ModelKind, case: TokenCase) -> Tensor | None:
    return _source(ctx, case, case.length) if kind == "encoder_decoder" else None


def _start_prompt(ctx: Context, model: GenerativeModel, batch: int) -> Tensor:
    return torch.full((batch, 1), model.start_id, dtype=torch.long, device=ctx.device)


def _is_greedy(ctx: Context, logits: Tensor, chosen: int, where: str) -> None:
    """`chosen` has the largest logit, up to the invariance bound (a near tie)."""
    bound = relative_bound(ctx.tolerance.invariance, logits)
    best = int(logits.argmax())
    gap = float(logits[best].double() - logits[chosen].double())
    if not gap <= bound:
        raise AssertionError(
            f"{where}: generated token {chosen}, whose logit is {gap:.3g} below token {best}'s "
            f"(the greedy choice; a tie allows {bound:.3g})\n{show('logits', logits)}"
        )


def _keeps_prompt(kind: str, out: Tensor, prompt: Tensor) -> None:
    p = prompt.shape[1]
    if out.shape[1] < p or not torch.equal(out[:, :p], prompt):
        changed = out[:, :p].ne(prompt).any(-1).nonzero()[:, 0].tolist()
        raise AssertionError(
            f"{kind}: generation changed the prompt of items {changed}: "
            f"{show('prompt', prompt[:2])}, output begins {show('out', out[:2, :p])}"
        )


def _ends(row: Tensor, end_id: int) -> int:
    """The length of `row` up to and including its first <END> (all of it if none)."""
    hits = (row == end_id).nonzero()
    return int(hits[0]) + 1 if len(hits) else len(row)


def _judged(row: Tensor, p: int, model: GenerativeModel) -> int:
    """The generated positions of `row` (from p) that a full pass can judge: up to its first
    <END>, and up to its first generated <PAD>, after which the full pass sees padding where
    the generating pass saw a token (a random model may pick <PAD>; a model that masks
    padding in `logits` then rightly disagrees with its own generation)."""
    stop = _ends(row, model.end_id)
    if model.pad_id is None:  # a model without padding
        return stop
    pads = (row[p:] == model.pad_id).nonzero()
    return min(stop, p + int(pads[0]) + 1) if len(pads) else stop


def _draw(
    ctx: Context, kinds: list[ModelKind], mc: ModelCase, case: TokenCase, data: st.DataObject
) -> tuple[ModelKind, GenerativeModel, Tensor | None]:
    """A drawn kind, its model, and a source when the kind has an encoder."""
    kind = data.draw(st.sampled_from(kinds), label="kind")
    model: GenerativeModel = mc.build(ctx, kind)  # type: ignore[assignment]
    return kind, model, _src(ctx, kind, case)


@prop("generation.starts_from_start", clauses=("GEN-START",), needs=("model",))
def starts_from_start(ctx: Context) -> Check:
    """Without a prompt, generation begins with <START> alone: the output starts with
    <START>, and the first generated token is the greedy choice at that single position."""
    kinds = generative_kinds(ctx, "generate", "start_id")

    @given(model_cases(ctx), token_cases(), st.data())
    def check(mc: ModelCase, case: TokenCase, data: st.DataObject) -> None:
        kind, model, src = _draw(ctx, kinds, mc, case, data)
        out = _generate(model, None, src, 1)
        batch = 1 if src is None else case.batch
        if out.shape[0] != batch or out.shape[1] != 2:
            raise AssertionError(
                f"{kind}: generate(no prompt, 1 new token) has shape {tuple(out.shape)}, "
                f"expected ({batch}, 2): <START> and one token"
            )
        if not bool((out[:, 0] == model.start_id).all()):
            raise AssertionError(
                f"{kind}: generation starts with {out[:, 0].tolist()}, not <START> "
                f"({model.start_id})"
            )
        first = _logits(model, kind, _start_prompt(ctx, model, batch), src)[:, 0]
        for i in range(batch):
            _is_greedy(ctx, first[i], int(out[i, 1]), f"{kind}, item {i}, first token")

    return check


@prop("generation.greedy_appends_argmax", clauses=("GEN-APPEND", "GEN-GREEDY"), needs=("model",))
def greedy_appends_argmax(ctx: Context) -> Check:
    """Greedy generation keeps the prompt, appends one token per step, each the most probable
    under the full pass over the prefix before it, and gives the same output when repeated."""
    kinds = generative_kinds(ctx, "generate", "start_id", "end_id")

    @given(model_cases(ctx), token_cases(min_len=1, max_len=6), st.data())
    def check(mc: ModelCase, case: TokenCase, data: st.DataObject) -> None:
        kind, model, src = _draw(ctx, kinds, mc, case, data)
        prompt = torch.cat([_start_prompt(ctx, model, case.batch), _tokens(ctx, case)], dim=1)
        p = prompt.shape[1]
        n = data.draw(st.integers(1, max_len(ctx) - p), label="max_new_tokens")
        out = _generate(model, prompt, src, n)
        if out.shape[0] != case.batch or not p < out.shape[1] <= p + n:
            raise AssertionError(
                f"{kind}: generate(prompt of length {p}, {n} new) has shape "
                f"{tuple(out.shape)}, expected ({case.batch}, {p}+1 .. {p + n})"
            )
        _keeps_prompt(kind, out, prompt)
        full = _logits(model, kind, out[:, :-1], src)
        for i in range(case.batch):
            for j in range(p, _judged(out[i], p, model)):
                _is_greedy(ctx, full[i, j - 1], int(out[i, j]), f"{kind}, item {i}, position {j}")
        again = _generate(model, prompt, src, n)
        if not torch.equal(again, out):
            raise AssertionError(
                f"{kind}: greedy generation gave {out.tolist()}, then {again.tolist()}"
            )

    return check


@prop("generation.stops_at_end", clauses=("GEN-STOP",), needs=("model",))
def stops_at_end(ctx: Context) -> Check:
    """Sampled generation of one sequence stops right after its first <END>, or after exactly
    max_new_tokens tokens when no <END> comes."""
    kinds = generative_kinds(ctx, "generate", "start_id", "end_id")

    @given(model_cases(ctx), token_cases(max_batch=1), st.data())
    def check(mc: ModelCase, case: TokenCase, data: st.DataObject) -> None:
        kind, model, src = _draw(ctx, kinds, mc, case, data)
        prompt = _start_prompt(ctx, model, 1)
        n = data.draw(st.integers(1, max_len(ctx) - 1), label="max_new_tokens")
        g = torch.Generator(device=ctx.device).manual_seed(case.seed)
        out = _generate(model, prompt, src, n, generator=g)
        _keeps_prompt(kind, out, prompt)
        new = out[0, 1:]
        if len(new) == 0:
            raise AssertionError(f"{kind}: generated no token with max_new_tokens={n}")
        stop = _ends(new, model.end_id)
        if stop < len(new):
            raise AssertionError(
                f"{kind}: generated {new.tolist()}: tokens after <END> ({model.end_id})"
            )
        if not (stop == n or int(new[-1]) == model.end_id):
            raise AssertionError(
                f"{kind}: generated {len(new)} tokens {new.tolist()} with max_new_tokens={n} "
                f"and no <END>: stopped early"
            )
        if len(new) > n:
            raise AssertionError(f"{kind}: generated {len(new)} tokens, more than {n}")

    return check


# Pearson's approximation needs every bin to expect enough draws: at least 5 by the textbook.
# 10 keeps the tail near its nominal rate: an unbiased sampler over softmax(6 z), z ~ N(0, 1)
# in 24 bins, scored p < 1e-5 in 0 of 40,000 trials (2 at 5).
_MIN_EXPECTED = 10.0


def _pooled(counts: Tensor, expected: Tensor) -> tuple[list[float], list[float]]:
    """(observed, expected) per group: the bins in increasing order of expectation, pooled
    until each group expects at least _MIN_EXPECTED draws; a remainder short of it joins
    the group before it. (Pooling every rare bin into one that expected far fewer than 5
    draws made a 2.8% event score p = 7e-9 on an unbiased sampler.)"""
    obs: list[float] = []
    exp: list[float] = []
    o = e = 0.0
    for i in expected.argsort().tolist():
        o, e = o + float(counts[i]), e + float(expected[i])
        if e >= _MIN_EXPECTED:
            obs.append(o)
            exp.append(e)
            o = e = 0.0
    if e > 0 or o > 0:
        if exp:
            obs[-1], exp[-1] = obs[-1] + o, exp[-1] + e
        else:
            obs, exp = [o], [e]
    return obs, exp


def _chi_square_p_value(counts: Tensor, probs: Tensor) -> float:
    """Pearson's goodness-of-fit test on the bins pooled by `_pooled`."""
    obs, exp = _pooled(counts, probs * counts.sum())
    chi2 = sum((o - e) ** 2 / e for o, e in zip(obs, exp, strict=True) if e > 0)
    df = len(exp) - 1
    if df < 1:
        return 1.0
    return float(torch.special.gammaincc(torch.tensor(df / 2), torch.tensor(chi2 / 2)))


@prop(
    "generation.sampling_matches_distribution",
    clauses=("GEN-SAMPLE", "GEN-APPEND"),
    needs=("model",),
)
def sampling_matches_distribution(ctx: Context) -> Check:
    """2000 sampled next tokens from one prefix fit softmax(logits) of the last position
    (Pearson chi-square, false-alarm rate 1e-6 per example); no token whose probability is
    below 1e-12 is ever drawn; the prefix is kept."""
    kinds = generative_kinds(ctx, "generate", "start_id")

    @given(model_cases(ctx), token_cases(max_batch=1, min_len=1, max_len=6), st.data())
    def check(mc: ModelCase, case: TokenCase, data: st.DataObject) -> None:
        kind, model, src = _draw(ctx, kinds, mc, case, data)
        prompt = torch.cat([_start_prompt(ctx, model, 1), _tokens(ctx, case)], dim=1)
        probs = torch.softmax(_logits(model, kind, prompt, src)[0, -1].double(), -1).cpu()
        g = torch.Generator(device=ctx.device).manual_seed(case.seed)
        rows = prompt.expand(_DRAWS, -1)
        source = None if src is None else src.expand(_ROWS_PER_CALL, -1)
        # In calls of _ROWS_PER_CALL rows: what a model keeps per row (a cache sized by its
        # context length) stays bounded.
        out = torch.cat(
            [
                _generate(model, rows[:_ROWS_PER_CALL], source, 1, generator=g)
                for _ in range(_DRAWS // _ROWS_PER_CALL)
            ]
        )
        _keeps_prompt(kind, out, rows)
        drawn = out[:, prompt.shape[1]].cpu()
        counts = torch.bincount(drawn, minlength=vocab_size(ctx)).double()
        impossible = (counts > 0) & (probs < 1e-12)
        if bool(impossible.any()):
            raise AssertionError(
                f"{kind}: drew tokens {impossible.nonzero()[:, 0].tolist()} of probability < 1e-12"
            )
        p_value = _chi_square_p_value(counts, probs)
        if not p_value >= _ALPHA:
            top = probs.argsort(descending=True)[:6].tolist()
            freq = [f"{t}: {counts[t] / _DRAWS:.3f} vs p={probs[t]:.3f}" for t in top]
            raise AssertionError(
                f"{kind}: {_DRAWS} draws do not fit softmax(logits) (chi-square p-value "
                f"{p_value:.2g} < {_ALPHA:g}); most probable tokens, frequency vs p: "
                + ", ".join(freq)
            )

    return check
