"""The reference targets hand a built model out again once nothing holds it
(model_pool.ModelPool): it must come back exactly as a fresh build, whatever the last user did."""

import gc

import torch
from transformer_spec.properties.targets.builtin import ReferenceModel
from transformer_spec.properties.targets.levels import ModelSpec
from transformer_spec.properties.targets.model_pool import ModelPool

SPEC = ModelSpec(
    kind="decoder_only",
    vocab_size=12,
    d_model=8,
    n_heads=2,
    d_ff=16,
    n_layers=1,
    max_len=10,
    positional=True,
    dtype=torch.float32,
    device=torch.device("cpu"),
    seed=3,
)


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: t.detach().clone() for k, t in model.state_dict().items()}


def test_a_used_model_comes_back_as_built() -> None:
    pool = ModelPool()  # as reference_target gives each target

    def build(spec: ModelSpec) -> ReferenceModel:
        return ReferenceModel(spec, "math", pool)

    fresh = _state(ReferenceModel(SPEC, "math").model)  # no pool
    first = build(SPEC)
    inner = first.model
    for p in inner.parameters():  # what a training property leaves behind
        p.data.add_(1.0)
        p.grad = torch.ones_like(p)
        p.requires_grad_(False)
    inner.train()
    del first
    gc.collect()
    again = build(SPEC)
    assert again.model is inner, "a free model of the same spec is handed out again"
    assert all(torch.equal(t, fresh[k]) for k, t in _state(again.model).items())
    assert all(p.requires_grad and p.grad is None for p in again.model.parameters())
    assert not again.model.training


def test_a_model_in_use_or_hooked_is_not_handed_out() -> None:
    pool = ModelPool()  # as reference_target gives each target

    def build(spec: ModelSpec) -> ReferenceModel:
        return ReferenceModel(spec, "math", pool)

    first = build(SPEC)
    second = build(SPEC)  # the first is still held
    assert second.model is not first.model
    inner = second.model
    inner.register_forward_hook(lambda *args: None)
    del second
    gc.collect()
    assert build(SPEC).model is not inner, "a model given a hook is dropped"


def test_a_model_moved_to_another_dtype_is_not_handed_out() -> None:
    pool = ModelPool()
    first = ReferenceModel(SPEC, "math", pool)
    inner = first.model
    inner.to(torch.float64)
    del first
    gc.collect()
    assert ReferenceModel(SPEC, "math", pool).model is not inner
