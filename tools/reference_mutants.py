"""Seeded bugs in the reference: each must make the reference's own tests fail.

Usage (from the repository root, in a venv with the project installed editable):
    python tools/reference_mutants.py [NAME-FILTER ...]
Prints KILLED or SURVIVED per mutant with the first failing test, and exits 1 if any
survives. Each mutant is one textual change to a file under reference/; the file is
restored afterwards, even on interrupt. Takes a few minutes on 2 cores (copy task skipped).
The harness's own mutant catalogue (properties against mutants) is a separate, later piece.
"""

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
# (name, file, original text, mutated text)
MUTANTS = [
    (
        "head split by view without transpose",
        "reference/multihead.py",
        "return x.view(b, n, self.n_heads, self.d_k).transpose(1, 2)",
        "return x.view(b, self.n_heads, n, self.d_k)",
    ),
    (
        "scale 1/d_k",
        "reference/attention.py",
        "scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale",
        "scale = 1.0 / q.shape[-1] if scale is None else scale",
    ),
    (
        "scale missing",
        "reference/attention.py",
        "return (q @ k.transpose(-2, -1)) * scale",
        "return q @ k.transpose(-2, -1)",
    ),
    (
        "causal off by one",
        "reference/masks.py",
        "return j <= i + shift",
        "return j <= i + shift + 1",
    ),
    (
        "causal alignment ignored",
        "reference/masks.py",
        'shift = k_len - q_len if alignment == "bottom_right" else 0',
        "shift = 0",
    ),
    (
        "softmax over the query axis",
        "reference/attention.py",
        "weights = torch.softmax(scores, dim=-1, dtype=acc)",
        "weights = torch.softmax(scores, dim=-2, dtype=acc)",
    ),
    (
        "mask polarity inverted",
        "reference/attention.py",
        'scores = scores.masked_fill(~mask, float("-inf"))',
        'scores = scores.masked_fill(mask, float("-inf"))',
    ),
    (
        "fully masked row NaN (no zeroing)",
        "reference/attention.py",
        "        scores = scores.masked_fill(~row_open, 0.0)\n",
        "",
    ),
    (
        "sin and cos swapped",
        "reference/positional.py",
        "pe[:, 0::2] = torch.sin(angle)",
        "pe[:, 0::2] = torch.cos(angle)",
    ),
    (
        "positions off by one",
        "reference/positional.py",
        "pos = torch.arange(start, start + n_positions, dtype=torch.float64)[:, None]",
        "pos = torch.arange(start + 1, start + 1 + n_positions, dtype=torch.float64)[:, None]",
    ),
    (
        "wrong frequency base",
        "reference/positional.py",
        "base: float = 10000.0",
        "base: float = 1000.0",
    ),
    (
        "KV cache does not advance positions",
        "reference/model.py",
        'offset = cache.length if cache is not None else 0\n        self.check_tokens("tokens"',
        'offset = 0\n        self.check_tokens("tokens"',
    ),
    ("layernorm unbiased variance", "reference/norm.py", "unbiased=False", "unbiased=True"),
    (
        "layernorm eps ignored",
        "reference/norm.py",
        "torch.rsqrt(var + self.eps)",
        "torch.rsqrt(var + 1e-12)",
    ),
    (
        "residual missing (pre-LN)",
        "reference/norm.py",
        "out = x + self.drop(sublayer(self.norm(x)))",
        "out = self.drop(sublayer(self.norm(x)))",
    ),
    (
        "pre/post swapped",
        "reference/norm.py",
        'if self.placement == "pre":',
        'if self.placement == "post":',
    ),
    (
        "cross-attention K/V from the decoder",
        "reference/multihead.py",
        "k, v = self._keys_values(x_kv if x_kv is not None else x_query, cache, cross=cross)",
        "k, v = self._keys_values(x_query, cache, cross=cross)",
    ),
    (
        "W^O missing",
        "reference/multihead.py",
        "return self.W_O(self.merge_heads(z))",
        "return self.merge_heads(z)",
    ),
    (
        "FFN mixes neighbours",
        "reference/feedforward.py",
        "out: Tensor = self.W_2(self.act(self.W_1(x)))",
        "out: Tensor = self.W_2(self.act(self.W_1(x + x.roll(1, dims=1))))",
    ),
    (
        "embedding not scaled as declared",
        "reference/embedding.py",
        "self.scale = math.sqrt(d_model) if scale else 1.0",
        "self.scale = 1.0",
    ),
    (
        "cache written before read (no self key)",
        "reference/multihead.py",
        "k, v = torch.cat([cache.k, k], dim=-2), torch.cat([cache.v, v], dim=-2)",
        "k, v = cache.k, cache.v",
    ),
    (
        "decoder pad mask ignored",
        "reference/model.py",
        "            self_mask=padding_mask(keep),\n            cache=",
        "            cache=",
    ),
    (
        "source pad mask ignored",
        "reference/model.py",
        "memory_mask=padding_mask(src_keep),",
        "memory_mask=None,",
    ),
    (
        "encoder pad mask ignored",
        "reference/layers.py",
        "x = self.sublayers[0](x, lambda y: self.self_attn(y, mask=mask)[0])",
        "x = self.sublayers[0](x, lambda y: self.self_attn(y)[0])",
    ),
    (
        "loss does not ignore pad",
        "reference/generation.py",
        "ignore_index=pad)",
        "ignore_index=-100)",
    ),
    (
        "greedy takes argmin",
        "reference/generation.py",
        "return logits.argmax(dim=-1)",
        "return logits.argmin(dim=-1)",
    ),
    (
        "unembed softmax over batch",
        "reference/model.py",
        "return torch.softmax(logits, dim=-1, dtype=acc).to(logits.dtype)",
        "return torch.softmax(logits, dim=0, dtype=acc).to(logits.dtype)",
    ),
]


def run_tests() -> tuple[bool, str]:
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider"]
    cmd += ["--deselect", "tests/test_copy_task.py", "tests"]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    failed = [line[7:] for line in r.stdout.splitlines() if line.startswith("FAILED")]
    return r.returncode != 0, failed[0] if failed else r.stdout.strip().splitlines()[-1]


def main(filters: list[str]) -> int:
    survivors = 0
    for name, path, old, new in MUTANTS:
        if filters and not any(f in name for f in filters):
            continue
        file = ROOT / path
        original = file.read_text()
        if original.count(old) != 1:
            print(f"STALE    {name}: the original text occurs {original.count(old)} times")
            survivors += 1
            continue
        file.write_text(original.replace(old, new))
        try:
            killed, detail = run_tests()
        finally:
            file.write_text(original)
        survivors += not killed
        print(f"{'KILLED  ' if killed else 'SURVIVED'} {name}: {detail[:100]}", flush=True)
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
