"""A model's logits may come in a finer dtype than its build (issue 30, false alarm 7): a
16-bit model that returns float32 logits passes every model property that applies; one that
rounds below its build before the upcast still fails (broken_models.logits_upcast_after_rounding,
run by tests/test_mutants.py); a coarser result is still the guard's `output` fault."""

import pytest
import torch
from torch import Tensor
from transformer_spec.properties import Target
from transformer_spec.properties.checks import load_all
from transformer_spec.properties.harness.registry import Context
from transformer_spec.properties.harness.runner import run_property
from transformer_spec.properties.harness.tolerance import tolerance_for
from transformer_spec.properties.targets.builtin import ReferenceModel
from transformer_spec.properties.targets.levels import ModelKind, ModelSpec

CPU = torch.device("cpu")
KINDS: tuple[ModelKind, ...] = ("encoder_decoder", "decoder_only", "encoder_only")


class _Float32Logits(ReferenceModel):
    """A 16-bit build's logits upcast to float32 (a float64 build's kept)."""

    def _wide(self, out: Tensor) -> Tensor:
        return out if out.dtype == torch.float64 else out.float()

    def logits(self, tokens: Tensor, src: Tensor | None = None) -> Tensor:
        return self._wide(super().logits(tokens, src))

    def incremental_logits(self, tokens: Tensor, src: Tensor | None = None) -> Tensor | None:
        out = super().incremental_logits(tokens, src)
        return None if out is None else self._wide(out)


class _Float32FromFloat64(_Float32Logits):
    """Logits always in float32: a float64 build's are downcast."""

    def _wide(self, out: Tensor) -> Tensor:
        return out.float()


def _target(name: str, cls: type[ReferenceModel]) -> Target:
    def build(spec: ModelSpec) -> ReferenceModel:
        return cls(spec, "math")

    return Target(name=name, description=name, model=build, model_kinds=KINDS)


def _ids() -> list[str]:
    return sorted(p for p in load_all() if p.startswith(("model.", "generation.", "training.")))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("pid", _ids())
def test_float32_logits_from_a_16_bit_build_pass(pid: str, dtype: torch.dtype) -> None:
    ctx = Context(_target("float32-logits", _Float32Logits), CPU, dtype, tolerance_for(dtype, CPU))
    result = run_property(load_all()[pid], ctx, profile="quick", seed=0)
    assert result.outcome in ("pass", "not_applicable"), result.message


def test_float32_logits_from_a_float64_build_are_a_fault() -> None:
    target = _target("float32-from-float64", _Float32FromFloat64)
    ctx = Context(target, CPU, torch.float64, tolerance_for(torch.float64, CPU))
    result = run_property(load_all()["model.output_shape"], ctx, profile="quick", seed=0)
    assert result.outcome == "fail" and result.fault == "output", result.message
    assert "of dtype torch.float32, expected torch.float64" in result.message
