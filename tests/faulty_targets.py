"""Faulty targets for the guard's tests: each is the reference attention that misbehaves
(raises, hangs, changes global state, ...) only on causal calls, so the harness must
diagnose the causal properties and still pass the others."""

import time
from collections.abc import Callable
from dataclasses import replace

import torch
from torch import Tensor
from transformer_spec.properties import Conventions, Target
from transformer_spec.properties.targets.builtin import reference_target

from .broken_targets import _reference

Out = tuple[Tensor, Tensor | None]
Fault = Callable[[Tensor, Tensor, Tensor, Out], object]


def _faulty(name: str, fault: Fault, conventions: Conventions | None = None) -> Target:
    """The reference, with `fault(q, k, v, (out, weights))` giving the result of causal calls."""

    def attend(q: Tensor, k: Tensor, v: Tensor, *, mask: Tensor | None, causal: bool) -> Out:
        out = _reference(q, k, v, mask, causal)
        return fault(q, k, v, out) if causal else out  # type: ignore[return-value]

    return Target(
        name=name,
        description=f"reference attention that {name.replace('-', ' ')} on causal calls",
        attention=attend,
        conventions=conventions or Conventions(),
    )


def _raise(error: BaseException) -> Fault:
    def fault(q: Tensor, k: Tensor, v: Tensor, out: Out) -> Out:
        raise error

    return fault


def raises() -> Target:
    return _faulty("raises", _raise(RuntimeError("kernel exploded")))


def exits() -> Target:
    return _faulty("exits", _raise(SystemExit(3)))


def out_of_memory() -> Target:
    oom = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
    return _faulty("runs-out-of-memory", _raise(oom))


def returns_nan() -> Target:
    return _faulty("returns-nan", lambda q, k, v, out: (out[0] * torch.nan, out[1]))


def returns_inf() -> Target:
    def fault(q: Tensor, k: Tensor, v: Tensor, out: Out) -> Out:
        o = out[0].clone()
        o[..., -1, 0] = torch.inf
        return o, out[1]

    return _faulty("returns-inf", fault)


def wrong_shape() -> Target:
    return _faulty("wrong-shape", lambda q, k, v, out: (out[0][..., :-1], out[1]))


def wrong_dtype() -> Target:
    return _faulty("wrong-dtype", lambda q, k, v, out: (out[0].double(), out[1]))


def wrong_device() -> Target:
    return _faulty("wrong-device", lambda q, k, v, out: (out[0].to("meta"), out[1]))


def not_a_tensor() -> Target:
    return _faulty("not-a-tensor", lambda q, k, v, out: (out[0].tolist(), out[1]))


def not_a_tuple() -> Target:
    return _faulty("not-a-tuple", lambda q, k, v, out: out[0])


def mutates_input() -> Target:
    def fault(q: Tensor, k: Tensor, v: Tensor, out: Out) -> Out:
        with torch.no_grad():
            v.mul_(2.0)  # e.g. a kernel that scales V in place to save memory
        return out

    return _faulty("mutates-input", fault)


def nondeterministic() -> Target:
    calls = [0]

    def fault(q: Tensor, k: Tensor, v: Tensor, out: Out) -> Out:
        calls[0] += 1  # every other call differs, as a race between atomics might
        return out[0] + (calls[0] % 2) * 1e-3, out[1]

    return _faulty("nondeterministic", fault)


def declared_nondeterministic() -> Target:
    def fault(q: Tensor, k: Tensor, v: Tensor, out: Out) -> Out:
        # The last bits vary from call to call, drawn from torch's global RNG (as dropout
        # or a randomised kernel would): allowed by the declaration, so not a state fault.
        noise = torch.rand((), dtype=torch.float64).item() * 1e-7
        return out[0] + noise, out[1]

    why = "accumulates with atomics: the last bits vary between calls"
    conventions = Conventions(deterministic=False, explanations={"deterministic": why})
    return _faulty("declared-nondeterministic", fault, conventions)


def _then(change: Callable[[], object]) -> Fault:
    def fault(q: Tensor, k: Tensor, v: Tensor, out: Out) -> Out:
        change()
        return out

    return fault


def sets_default_dtype() -> Target:
    return _faulty("sets-default-dtype", _then(lambda: torch.set_default_dtype(torch.float64)))


def disables_grad() -> Target:
    return _faulty("disables-grad", _then(lambda: torch.set_grad_enabled(False)))


def sets_deterministic() -> Target:
    return _faulty("sets-deterministic", _then(lambda: torch.use_deterministic_algorithms(True)))


def reseeds_rng() -> Target:
    return _faulty("reseeds-rng", _then(lambda: torch.manual_seed(1234)))


def draws_global_rng() -> Target:
    return _faulty("draws-global-rng", _then(lambda: torch.rand(1)))


def hangs() -> Target:
    return _faulty("hangs", _then(lambda: time.sleep(3600)))


def model_logits_wrong_shape() -> Target:
    """A whole model whose logits drop the last vocabulary entry."""
    reference = reference_target("math")
    assert reference.model is not None
    build = reference.model

    class Cut:
        def __init__(self, spec: object) -> None:
            self.inner = build(spec)  # type: ignore[arg-type]
            self.pad_id = self.inner.pad_id

        def logits(self, tokens: Tensor, src: Tensor | None = None) -> Tensor:
            return self.inner.logits(tokens, src)[..., :-1]

        def incremental_logits(self, tokens: Tensor, src: Tensor | None = None) -> None:
            return None

    return replace(
        reference,
        name="logits-wrong-shape",
        description="reference model whose logits lose the last vocabulary entry",
        attention=None,
        mha=None,
        layers=None,
        components=None,
        vocabulary=None,
        model=Cut,
    )


def factory_sets_default_dtype() -> Target:
    """A model factory that switches the default dtype to float64 and leaves it so."""
    reference = reference_target("math")
    assert reference.model is not None
    build = reference.model

    def model(spec: object) -> object:
        torch.set_default_dtype(torch.float64)
        return build(spec)  # type: ignore[arg-type]

    return replace(
        reference,
        name="factory-sets-default-dtype",
        description="reference model whose factory leaves the default dtype float64",
        model=model,  # type: ignore[arg-type]
    )
