"""Position-wise feed-forward network: a two-layer MLP applied to every position on its own
(spec FFN-*): FFN(x) = act(x W_1 + b_1) W_2 + b_2."""

from jaxtyping import Float
from torch import Tensor, nn

from .config import Activation


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
