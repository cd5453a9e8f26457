"""Parameters that get no gradient: correct designs that real models ship, and broken twins
that lose a gradient by a bug (issue 30, false alarms 1-3 of `training.end_to_end_gradients`).

Each target is the reference model (math path) with one extra piece between the last layer
and the un-embedding, or one parameter changed. Correct, each passing every training
property:
- `frozen_sinusoid`: the sinusoidal table kept as a parameter with requires_grad=False;
- `balancing_bias`: a frozen, zero-initialised bias on the logits (a router's balancing
  bias, updated outside backprop);
- `zero_gate`: a branch behind a gate initialised to 0 (its weights get zero gradients);
- `top1_router`: two expert branches and a router whose top-1 weight is renormalised to 1;
- `unused_cross_attention`: weights the forward pass never reads (a decoder used alone);
- `indexer`: weights that reach the output only through an argmax's indices;
- `side_pooler`: a pooler of the first position computed and not read (BertModel's pooler
  under a causal-LM head);
- `padding_row`: an embedding looked up at its `padding_idx` row only (RoCBert's shape table
  when no shape ids are given): that row gets no gradient by nn.Embedding's design.

Broken, each failing `training.end_to_end_gradients`:
- `branch_detached`: a branch added as `branch(x).detach()`;
- `bias_frozen_at_init`: a randomly drawn bias with requires_grad=False;
- `weight_as_constant`: a branch's weight read into a constant (`torch.tensor(w.tolist())`);
- `branch_discarded`: a branch computed and its result dropped.
"""

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformer_spec.properties import Target
from transformer_spec.properties.targets.builtin import ReferenceModel
from transformer_spec.properties.targets.levels import Model, ModelKind, ModelSpec

GENERATIVE: tuple[ModelKind, ...] = ("encoder_decoder", "decoder_only")


class _Branch(nn.Module):
    """W2 relu(W1 x), drawn from the spec's seed, plus whatever a target adds."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(spec.seed + 7)

        def draw(*shape: int) -> nn.Parameter:
            w = torch.randn(*shape, generator=g, dtype=torch.float64) / shape[-1] ** 0.5
            return nn.Parameter(w.to(spec.device, spec.dtype))

        self.W1, self.W2 = draw(spec.d_ff, spec.d_model), draw(spec.d_model, spec.d_ff)
        self.draw = draw

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(F.relu(F.linear(x, self.W1)), self.W2)

    def __getattr__(self, name: str) -> Any:  # what `setup` adds: tensors and modules
        return super().__getattr__(name)


Extra = Callable[[_Branch, Tensor], Tensor]  # (the extra module, x) -> new x


class _WithBranch(ReferenceModel):
    """The reference with `extra(branch, x)` applied to what reaches the un-embedding."""

    extra: Extra = staticmethod(lambda branch, x: x)

    def __init__(self, spec: ModelSpec, path: str) -> None:
        super().__init__(spec, path)
        branch = _Branch(spec)
        self.setup(branch, spec)
        self.model.add_module("extra", branch)
        self.model.unembed.register_forward_pre_hook(
            lambda _m, args: (self.extra(branch, args[0]),)
        )

    def setup(self, branch: _Branch, spec: ModelSpec) -> None:
        """Adds the target's own parameters to `branch`."""


def _target(name: str, cls: type[ReferenceModel]) -> Target:
    def build(spec: ModelSpec) -> Model:
        return cls(spec, "math")

    return Target(
        name=name, description=name.replace("_", " "), model=build, model_kinds=GENERATIVE
    )


# ---- correct --------------------------------------------------------------------------------


class _FrozenSinusoid(ReferenceModel):
    def __init__(self, spec: ModelSpec, path: str) -> None:
        super().__init__(spec, path)
        positions = self.model.embed.positions
        table = positions.table
        assert table is not None
        del positions.table
        positions.table = nn.Parameter(table.clone(), requires_grad=False)


def frozen_sinusoid() -> Target:
    return _target("frozen_sinusoid", _FrozenSinusoid)


class _BalancingBias(_WithBranch):
    def setup(self, branch: _Branch, spec: ModelSpec) -> None:
        zeros = torch.zeros(spec.d_model, device=spec.device, dtype=spec.dtype)
        branch.balance = nn.Parameter(zeros, requires_grad=False)

    extra = staticmethod(lambda branch, x: x + branch.balance)


def balancing_bias() -> Target:
    return _target("balancing_bias", _BalancingBias)


class _ZeroGate(_WithBranch):
    def setup(self, branch: _Branch, spec: ModelSpec) -> None:
        branch.gate = nn.Parameter(torch.zeros(1, device=spec.device, dtype=spec.dtype))

    extra = staticmethod(lambda branch, x: x + torch.tanh(branch.gate) * branch(x))


def zero_gate() -> Target:
    return _target("zero_gate", _ZeroGate)


def _top1(branch: _Branch, x: Tensor) -> Tensor:
    p = torch.softmax(F.linear(x, branch.router), dim=-1)
    choice = p.argmax(-1, keepdim=True)
    weight = p.gather(-1, choice) / p.gather(-1, choice)  # renormalised over the top 1: 1
    expert = torch.where(
        choice == 0, branch(x), F.linear(F.relu(F.linear(x, branch.W3)), branch.W2)
    )
    return x + weight * expert


class _Top1Router(_WithBranch):
    def setup(self, branch: _Branch, spec: ModelSpec) -> None:
        branch.router, branch.W3 = (
            branch.draw(2, spec.d_model),
            branch.draw(spec.d_ff, spec.d_model),
        )

    extra = staticmethod(_top1)


def top1_router() -> Target:
    return _target("top1_router", _Top1Router)


class _UnusedCrossAttention(_WithBranch):
    """The branch is there and never called."""


def unused_cross_attention() -> Target:
    return _target("unused_cross_attention", _UnusedCrossAttention)


class _Indexer(_WithBranch):
    def setup(self, branch: _Branch, spec: ModelSpec) -> None:
        branch.indexer = branch.draw(4, spec.d_model)
        branch.register_buffer("offsets", torch.zeros(4, spec.d_model, device=spec.device))

    # The indices choose a row of offsets, all zero: as a top-k that keeps every key.
    extra = staticmethod(
        lambda branch, x: x + branch.offsets.to(x.dtype)[F.linear(x, branch.indexer).argmax(-1)]
    )


def indexer() -> Target:
    return _target("indexer", _Indexer)


def _pooled(branch: _Branch, x: Tensor) -> Tensor:
    torch.tanh(F.linear(x[:, 0], branch.W2 @ branch.W1))  # a summary the head never reads
    return x


class _SidePooler(_WithBranch):
    extra = staticmethod(_pooled)


def side_pooler() -> Target:
    return _target("side_pooler", _SidePooler)


def _zeros(x: Tensor) -> Tensor:
    return torch.zeros(x.shape[:-1], dtype=torch.long, device=x.device)


class _PaddingRow(_WithBranch):
    def setup(self, branch: _Branch, spec: ModelSpec) -> None:
        table = nn.Embedding(4, spec.d_model, padding_idx=0, device=spec.device, dtype=spec.dtype)
        with torch.no_grad():
            table.weight[0] = 0.1  # a value that moves the loss, and no gradient by design
        branch.table = table

    extra = staticmethod(
        lambda branch, x: (
            x + branch.table(torch.zeros(x.shape[:-1], dtype=torch.long, device=x.device))
        )
    )


def padding_row() -> Target:
    return _target("padding_row", _PaddingRow)


# ---- broken ---------------------------------------------------------------------------------


class _BranchDetached(_WithBranch):
    extra = staticmethod(lambda branch, x: x + branch(x).detach())


def branch_detached() -> Target:
    return _target("branch_detached", _BranchDetached)


class _BiasFrozenAtInit(_WithBranch):
    def setup(self, branch: _Branch, spec: ModelSpec) -> None:
        branch.bias = branch.draw(spec.d_model).requires_grad_(False)

    extra = staticmethod(lambda branch, x: x + branch.bias)


def bias_frozen_at_init() -> Target:
    return _target("bias_frozen_at_init", _BiasFrozenAtInit)


def _constant_weight(branch: _Branch, x: Tensor) -> Tensor:
    w2 = torch.tensor(branch.W2.tolist(), dtype=x.dtype, device=x.device)
    return x + F.linear(F.relu(F.linear(x, branch.W1)), w2)


class _WeightAsConstant(_WithBranch):
    extra = staticmethod(_constant_weight)


def weight_as_constant() -> Target:
    return _target("weight_as_constant", _WeightAsConstant)


def _discarded(branch: _Branch, x: Tensor) -> Tensor:
    branch(x)  # computed, and the result never used
    return x


class _BranchDiscarded(_WithBranch):
    extra = staticmethod(_discarded)


def branch_discarded() -> Target:
    return _target("branch_discarded", _BranchDiscarded)


CORRECT = (
    frozen_sinusoid,
    balancing_bias,
    zero_gate,
    top1_router,
    unused_cross_attention,
    indexer,
    side_pooler,
    padding_row,
)
# factory -> properties that must fail on it
MUTANTS: dict[str, tuple[str, ...]] = {
    "branch_detached": ("training.end_to_end_gradients",),
    "bias_frozen_at_init": ("training.end_to_end_gradients",),
    "weight_as_constant": ("training.end_to_end_gradients",),
    "branch_discarded": ("training.end_to_end_gradients",),
}
