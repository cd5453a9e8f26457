"""Third-party implementations as targets: torch SDPA per backend, torch.nn's attention
modules, layers and models, and (with the `hf` extra) Hugging Face models. Each adapter
declares the library's conventions with a one-line explanation of every difference from the
reference's."""

from collections.abc import Callable

from ..targets import Target
from . import hf, sdpa, torch_nn

THIRD_PARTY: dict[str, Callable[[], Target]] = {**sdpa.TARGETS, **torch_nn.TARGETS, **hf.TARGETS}

__all__ = ["THIRD_PARTY"]
