"""Left padding in a decoder: the queries of a sequence's leading <PAD> run see only <PAD>
keys (fully masked rows), so their output is nobody's business; NaN that reaches the real
tokens is a failure (nn.TransformerEncoder's fast path, two layers deep)."""

import torch
from torch import Tensor
from transformer_spec.properties import Target
from transformer_spec.properties.checks import load_all
from transformer_spec.properties.harness.registry import Context
from transformer_spec.properties.harness.results import Result
from transformer_spec.properties.harness.runner import run_property
from transformer_spec.properties.harness.tolerance import tolerance_for
from transformer_spec.properties.targets.builtin import ReferenceModel
from transformer_spec.properties.targets.levels import ModelSpec

CPU = torch.device("cpu")
PADDING = "model.decoder_only.padding_has_no_effect"


class _NaNAtPads(ReferenceModel):
    """The reference decoder, with NaN logits where `where` says (tokens -> bool (b, t))."""

    where = staticmethod(lambda tokens, pad: tokens == -1)

    def logits(self, tokens: Tensor, src: Tensor | None = None) -> Tensor:
        out = super().logits(tokens, src).clone()
        out[self.where(tokens, self.pad_id)] = float("nan")
        return out


def _leading(tokens: Tensor, pad: int) -> Tensor:
    return (tokens == pad).int().cumprod(-1).bool()


class _LeadingPads(_NaNAtPads):  # what a fully masked row may give
    where = staticmethod(_leading)


class _WholeLeftPaddedRows(_NaNAtPads):  # NaN spread through 0 * NaN to the real tokens
    where = staticmethod(
        lambda tokens, pad: _leading(tokens, pad).any(-1, keepdim=True).expand_as(tokens)
    )


class _TrailingPads(_NaNAtPads):  # a right-pad query sees real keys: NaN there is a bug
    where = staticmethod(lambda tokens, pad: (tokens == pad) & ~_leading(tokens, pad))


def _outcome(cls: type[ReferenceModel], pid: str = PADDING) -> Result:
    def build(spec: ModelSpec) -> ReferenceModel:
        return cls(spec, "math")

    name = cls.__name__
    target = Target(name=name, description=name, model=build, model_kinds=("decoder_only",))
    ctx = Context(
        target=target, device=CPU, dtype=torch.float32, tolerance=tolerance_for(torch.float32, CPU)
    )
    return run_property(load_all()[pid], ctx, profile="ci", seed=0)


def test_nan_at_the_leading_pads_alone_passes() -> None:
    for pid in (PADDING, "model.decoder_only.causal_no_future_leak", "model.output_shape"):
        r = _outcome(_LeadingPads, pid)
        assert r.outcome == "pass", (pid, r.message)


def test_nan_that_reaches_the_real_tokens_fails_and_says_where() -> None:
    r = _outcome(_WholeLeftPaddedRows)
    assert r.outcome == "fail" and r.fault == "non_finite", r.message
    assert "a real position after the left padding" in r.message


def test_nan_at_right_padding_is_still_a_fault() -> None:
    r = _outcome(_TrailingPads)
    assert r.outcome == "fail" and r.fault == "non_finite", r.message
    assert "left padding" not in r.message
