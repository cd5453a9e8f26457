"""Which parameters a call reads, and whether what it computed from them reaches its result.

The training property uses it to tell a parameter that gets no gradient by design from one
whose result is thrown away. A parameter the call never reads (a cross-attention given no
memory, a vision tower given no image, global-attention projections given no global token)
is unused by those inputs. One it reads may still reach the result only through steps that
carry no gradient (the indices of a top-k or an argmax: a sparse-attention indexer, a hard
router), which is a design too. One it reads whose every derived value is dropped before
the result (a layer whose output is never assigned) is dead code.

Influence is followed through every torch function call (`TorchFunctionMode`): the outputs of
a call that takes a parameter, or a tensor derived from one, carry that parameter, indices
and `.detach()` included. A step torch does not report to the mode (a custom autograd
`Function`, a Python scalar taken with `.item()`) loses the trail, so a lost trail alone
proves nothing: `dead` also asks that the parameter, moved far, leaves the result unchanged.
"""

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor
from torch.overrides import TorchFunctionMode


def _tensors(value: Any) -> Iterator[Tensor]:
    if isinstance(value, Tensor):
        yield value
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _tensors(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _tensors(v)


class Reads(TorchFunctionMode):
    """While active, records which of `watched` (name -> parameter) each call reads, and which
    tensors carry their influence (`carried(result)`)."""

    def __init__(self, watched: dict[str, Tensor]) -> None:
        super().__init__()
        self._names = {id(p): n for n, p in watched.items()}
        self._carry: dict[int, frozenset[str]] = {}
        self._alive: list[Tensor] = []  # kept, so that no id is reused while active
        self.read: set[str] = set()
        # The highest rank of a result computed from each parameter directly: 3 and more is a
        # batch of sequences (a layer's work), 2 a batch of summaries (a pooler's).
        self.rank: dict[str, int] = {}
        # Rows an embedding lookup declares as padding (`padding_idx`): they get no gradient
        # by nn.Embedding's design, whatever they hold.
        self.padding_rows: dict[str, set[int]] = {}

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        out = func(*args, **(kwargs or {}))
        if func is torch.nn.functional.embedding:
            self._note_padding(args, kwargs or {})
        found: set[str] = set()
        rank = max((t.dim() for t in _tensors(out)), default=0)
        for t in _tensors((args, kwargs)):
            name = self._names.get(id(t))
            if name is not None:
                found.add(name)
                self.read.add(name)
                self.rank[name] = max(self.rank.get(name, 0), rank)
            found |= self._carry.get(id(t), frozenset())
        if found:
            for t in _tensors(out):
                self._carry[id(t)] = self._carry.get(id(t), frozenset()) | found
                self._alive.append(t)
        return out

    def _note_padding(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        weight = args[1] if len(args) > 1 else kwargs.get("weight")
        row = args[2] if len(args) > 2 else kwargs.get("padding_idx")
        name = self._names.get(id(weight))
        if name is not None and isinstance(row, int) and isinstance(weight, Tensor):
            self.padding_rows.setdefault(name, set()).add(row % weight.shape[0])

    def carried(self, result: Any) -> set[str]:
        """The watched parameters whose influence reached `result`."""
        names: set[str] = set()
        for t in _tensors(result):
            names |= self._carry.get(id(t), frozenset())
        return names


def dead(
    call: Callable[[], Tensor], watched: dict[str, Tensor], generator: torch.Generator
) -> tuple[list[str], list[str]]:
    """(read, dead): the watched parameters `call()` reads, and those of them that are dead:
    computed with over a batch of sequences (a layer's work, not a pooler's summary of one
    position), their influence does not reach the result, and moving each far (to random
    values 10 times its own size) leaves the result unchanged, bit for bit. A pooler whose
    summary a language model's head never reads (BertModel's, under a causal-LM class) is a
    side output, not a lost layer."""
    with Reads(watched) as reads:
        result = call()
    reached = reads.carried(result)
    read = [n for n in watched if n in reads.read]
    suspects = [n for n in read if n not in reached and reads.rank.get(n, 0) >= 3]
    if not suspects:
        return read, []
    before = result.detach().clone()
    found = []
    for name in suspects:
        p = watched[name]
        saved = p.detach().clone()
        scale = 10 * float(saved.double().abs().max().clamp(min=1.0))
        noise = torch.randn(p.shape, generator=generator, dtype=torch.float64)
        try:
            with torch.no_grad():
                p.copy_((noise * scale).to(p.device, p.dtype))
            after = call().detach()
        finally:
            with torch.no_grad():
                p.copy_(saved)
        if torch.equal(after, before):
            found.append(name)
    return read, found
