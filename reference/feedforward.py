"""Position-wise feed-forward network: a two-layer MLP applied to every position on its own
(spec FFN-*): FFN(x) = act(x W_1 + b_1) W_2 + b_2; or gated (Shazeer 2020, spec
EXT-GLU-FORMULA): FFN(x) = (act(x W_gate) * (x W_up)) W_down, SiLU for SwiGLU, GELU for
GeGLU."""

from jaxtyping import Float
from torch import Tensor, nn

from .config import Activation, FFNKind


def activation(name: Activation) -> nn.Module:
    if name == "relu":
        return nn.ReLU()
    if name == "gelu":
        return nn.GELU()
    if name == "gelu_tanh":
        return nn.GELU(approximate="tanh")  # GPT-2's form
    raise ValueError(f"activation: {name!r} is not one of ['relu', 'gelu', 'gelu_tanh']")


class FeedForward(nn.Module):
    def __init__(self, d_model: int, d_ff: int, *, act: Activation = "relu", bias: bool = True):
        super().__init__()
        self.W_1 = nn.Linear(d_model, d_ff, bias=bias)
        self.act = activation(act)
        self.W_2 = nn.Linear(d_ff, d_model, bias=bias)

    def forward(self, x: Float[Tensor, "b n d_model"]) -> Float[Tensor, "b n d_model"]:
        out: Tensor = self.W_2(self.act(self.W_1(x)))
        return out


class GatedFeedForward(nn.Module):
    """(act(x W_gate) * (x W_up)) W_down: "swiglu" (SiLU) or "geglu" (GELU), no biases."""

    def __init__(self, d_model: int, d_ff: int, *, kind: FFNKind = "swiglu") -> None:
        super().__init__()
        if kind not in ("swiglu", "geglu"):
            raise ValueError(f"kind: {kind!r} is not one of ['swiglu', 'geglu']")
        self.kind = kind
        self.W_gate = nn.Linear(d_model, d_ff, bias=False)
        self.W_up = nn.Linear(d_model, d_ff, bias=False)
        self.act: nn.Module = nn.SiLU() if kind == "swiglu" else nn.GELU()
        self.W_down = nn.Linear(d_ff, d_model, bias=False)

    def forward(self, x: Float[Tensor, "b n d_model"]) -> Float[Tensor, "b n d_model"]:
        out: Tensor = self.W_down(self.act(self.W_gate(x)) * self.W_up(x))
        return out


def make_ffn(
    kind: FFNKind, d_model: int, d_ff: int, *, act: Activation, bias: bool
) -> FeedForward | GatedFeedForward:
    if kind == "mlp":
        return FeedForward(d_model, d_ff, act=act, bias=bias)
    return GatedFeedForward(d_model, d_ff, kind=kind)
