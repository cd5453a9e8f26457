"""generation.greedy_appends_argmax judges generated positions up to the first generated
<PAD>: a model whose `logits` treats <PAD> as padding and whose `generate` feeds a generated
<PAD> back as an ordinary token (as library generation loops do) is greedy and correct, and
passes; the same model with a non-greedy first step still fails."""

import pytest
import torch
from torch import Tensor
from transformer_spec.properties import Target
from transformer_spec.properties.checks import load_all
from transformer_spec.properties.harness.registry import Context
from transformer_spec.properties.harness.runner import run_property
from transformer_spec.properties.harness.tolerance import tolerance_for
from transformer_spec.properties.targets.levels import ModelSpec

CPU = torch.device("cpu")
PAD, START, END, OTHER = 0, 1, 2, 3


class PadAsToken:
    """Logits prefer <PAD>, and OTHER once a <PAD> is read as a token: `logits` masks <PAD>
    (never reads one), generation reads them. `first` replaces the first greedy choice."""

    pad_id, start_id, end_id = PAD, START, END

    def __init__(self, spec: ModelSpec, first: int | None) -> None:
        self.spec, self.first = spec, first

    def _logits(self, tokens: Tensor, *, pad_is_token: bool) -> Tensor:
        b, t = tokens.shape
        out = torch.zeros(b, t, self.spec.vocab_size, dtype=self.spec.dtype, device=CPU)
        out[..., PAD] = 1.0
        if pad_is_token:
            out[..., OTHER] = 2.0 * (tokens == PAD).cumsum(1)
        return out

    def logits(self, tokens: Tensor, src: Tensor | None = None) -> Tensor:
        return self._logits(tokens, pad_is_token=False)

    def incremental_logits(self, tokens: Tensor, src: Tensor | None = None) -> None:
        return None

    def generate(
        self,
        prompt: Tensor | None,
        src: Tensor | None,
        max_new_tokens: int,
        *,
        sample: bool,
        generator: torch.Generator | None,
    ) -> Tensor:
        assert prompt is not None
        out = prompt
        for step in range(max_new_tokens):
            chosen = self._logits(out, pad_is_token=True)[:, -1].argmax(-1)
            if step == 0 and self.first is not None:
                chosen = torch.full_like(chosen, self.first)
            out = torch.cat([out, chosen[:, None]], dim=1)
        return out


def _outcome(first: int | None) -> str:
    target = Target(
        name="pad-as-token",
        description="generates <PAD>, masks it in logits",
        model=lambda spec: PadAsToken(spec, first),
        model_kinds=("decoder_only",),
    )
    ctx = Context(
        target=target, device=CPU, dtype=torch.float32, tolerance=tolerance_for(torch.float32, CPU)
    )
    prop = load_all()["generation.greedy_appends_argmax"]
    return run_property(prop, ctx, profile="ci", seed=0).outcome


@pytest.mark.parametrize(("first", "expected"), [(None, "pass"), (OTHER, "fail")])
def test_a_generated_pad_ends_what_the_greedy_check_judges(
    first: int | None, expected: str
) -> None:
    assert _outcome(first) == expected
