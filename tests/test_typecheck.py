"""The run-time shape checker is on in the tests (conftest.py), so a shape that breaks an
annotation is caught at the call."""

import jaxtyping
import pytest
import torch
import transformer_spec.reference as R

from .conftest import CHECKED


@pytest.mark.skipif(not CHECKED, reason="the unchecked bad-input run")
def test_annotations_are_checked_at_run_time() -> None:
    q, k = torch.randn(2, 3, 8), torch.randn(2, 5, 6)
    with pytest.raises(jaxtyping.TypeCheckError, match="parameter 'k'"):
        R.attention_scores(q, k)


@pytest.mark.skipif(not CHECKED, reason="the unchecked bad-input run")
def test_module_forward_is_checked() -> None:
    ffn = R.FeedForward(8, 16)
    with pytest.raises(jaxtyping.TypeCheckError):
        ffn(torch.randn(8))
