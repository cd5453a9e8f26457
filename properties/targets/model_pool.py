"""The pool of built reference models that the built-in targets hand out again: a model no
longer held goes back to the pool, and comes back for the same spec as built (`ModelPool`)."""

import torch
from torch import Tensor, nn
from transformer_spec.properties.targets.levels import ModelSpec

from transformer_spec import reference as R

_Key = tuple[ModelSpec, str]
_State = dict[str, Tensor]


class ModelPool:
    """Reference models, kept by (spec, path) once nothing holds them, to be handed out again
    for the same spec. A `ci` cell builds 856 models of 340 specs; a build (95 modules,
    5 ms) costs more than putting the built weights back (1 ms). A model comes back as
    built: every parameter and buffer as built, no gradients, requires_grad on, eval mode.
    One whose tensors changed name, shape, dtype or device, or that was given hooks, is
    dropped."""

    def __init__(self) -> None:
        self.free: dict[_Key, list[tuple[R.AnyModel, _State]]] = {}

    KEEP = 2  # free models kept per spec (a property holds at most a few at once)

    def give(self, key: _Key, model: R.AnyModel, built: _State) -> None:
        """`built`: a copy of the model's tensors as it was built (`_copy`)."""
        free = self.free.setdefault(key, [])
        if len(free) < self.KEEP:
            free.append((model, built))

    def take(self, key: _Key) -> tuple[R.AnyModel, _State] | None:
        while self.free.get(key):
            model, built = self.free[key].pop()
            if _restore(model, built):
                return model, built
        return None


def _tensors(model: nn.Module) -> _State:
    return dict(model.named_parameters()) | dict(model.named_buffers())


def _copy(model: nn.Module) -> _State:
    return {k: t.detach().clone() for k, t in _tensors(model).items()}


@torch.no_grad()
def _restore(model: nn.Module, built: _State) -> bool:
    """Put `model` back as built; False when it cannot be (then it is not reused)."""
    now = _tensors(model)
    same = now.keys() == built.keys() and all(
        (t.shape, t.dtype, t.device) == (built[k].shape, built[k].dtype, built[k].device)
        for k, t in now.items()
    )
    hooked = any(
        m._forward_hooks or m._forward_pre_hooks or m._backward_hooks or m._state_dict_hooks
        for m in model.modules()
    )
    if not same or hooked:
        return False
    for k, t in now.items():
        t.copy_(built[k])
    for p in model.parameters():
        p.requires_grad_(True)
        p.grad = None
    model.eval()
    return True
