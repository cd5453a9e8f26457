"""labml-nn's annotated `MultiHeadAttention` (labml_nn.transformers.mha) as an mha-level
target: sequence-first tensors (L, b, d_model), keyword arguments query=, key=, value=, and
one mask (Lq, Lk, b) True = may attend, so the adapter builds the causal triangle itself.
No constructor fits: that is neither nn.MultiheadAttention's signature (key_padding_mask=,
attn_mask=, batch first or not) nor a one-input forward(x). From the repository root:

    transformer-spec check docs.public.labml_mha:target

Install: pip install -c constraints.txt --no-deps labml-nn "labml==0.4.168"   (labml-nn 0.5.1
tried; labml 0.5.x dropped tracker.debug, which the module calls;
its other dependencies are not needed for this module)
"""

import torch
from labml_nn.transformers.mha import MultiHeadAttention  # type: ignore[import-untyped]
from torch import Tensor
from transformer_spec.properties import Conventions, MHASpec, Projections, Target


class LabmlMHA:
    def __init__(self, spec: MHASpec) -> None:
        torch.manual_seed(spec.seed)
        self.net = MultiHeadAttention(spec.n_heads, spec.d_model, dropout_prob=0.0)
        self.net.to(device=spec.device, dtype=spec.dtype).eval()

    @torch.no_grad()
    def __call__(
        self, x_query: Tensor, x_kv: Tensor, *, key_padding: Tensor | None, causal: bool
    ) -> tuple[Tensor, Tensor | None]:
        (b, lq, _), lk = x_query.shape, x_kv.shape[1]
        keep = torch.ones(b, lq, lk, dtype=torch.bool, device=x_query.device)
        if key_padding is not None:
            keep = keep & key_padding[:, None, :]
        if causal:  # bottom-right aligned: query i sees keys 0 .. i + lk - lq
            keep = keep & torch.ones(lq, lk, dtype=torch.bool, device=keep.device).tril(lk - lq)
        q, kv = x_query.transpose(0, 1), x_kv.transpose(0, 1)
        out = self.net(query=q, key=kv, value=kv, mask=keep.permute(1, 2, 0))
        return out.transpose(0, 1), self.net.attn.permute(
            2, 3, 0, 1
        )  # (i, j, b, h) -> (b, h, i, j)

    def projections(self) -> Projections:
        n = self.net
        layers = (n.query.linear, n.key.linear, n.value.linear, n.output)
        return Projections(
            *(layer.weight.detach().T for layer in layers),
            *(layer.bias.detach() for layer in layers),
        )


def target() -> Target:
    return Target(
        name="labml-mha",
        description="labml_nn.transformers.mha.MultiHeadAttention, sequence first",
        conventions=Conventions(
            fully_masked_row="nan",
            explanations={
                "fully_masked_row": "softmax over a row of -inf gives NaN; the module does not "
                "treat a query with no visible key"
            },
        ),
        mha=LabmlMHA,
    )
