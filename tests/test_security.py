"""The suite itself never unpickles untrusted data, never reaches the network and parses
its own files with safe loaders. (Loading a *target* runs its code: the README says so.)"""

import ast
import importlib.util
import socket
from pathlib import Path

import pytest

from transformer_spec.cli import main

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [
    p
    for folder in ("spec", "reference", "properties", "src", "benchmarks", "tools")
    for p in (ROOT / folder).rglob("*.py")
]
UNSAFE_MODULES = {"pickle", "marshal", "shelve", "dill", "cloudpickle", "yaml", "requests"}
NETWORK_MODULES = {"socket", "urllib", "http", "requests", "httpx", "aiohttp"}


def _calls(tree: ast.AST) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)]


def _name(node: ast.expr) -> str:
    return ast.unparse(node)


def test_the_sources_were_found() -> None:
    assert len(SOURCES) > 30  # the checks below would pass vacuously on an empty list


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_unsafe_loading_or_network_in_our_code(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in (
            node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")]
        )
    }
    assert not imported & (UNSAFE_MODULES | NETWORK_MODULES), imported
    for call in _calls(tree):
        name = _name(call.func)
        if name.endswith("torch.load") or name == "load":
            weights_only = [k for k in call.keywords if k.arg == "weights_only"]
            assert weights_only and _name(weights_only[0].value) == "True", ast.unparse(call)
        assert not name.endswith(("from_pretrained", "hf_hub_download", "snapshot_download"))
        assert name not in ("eval", "__import__"), ast.unparse(call)


@pytest.mark.skipif(
    importlib.util.find_spec("transformers") is None, reason="the hf extra is not installed"
)
def test_hugging_face_targets_build_without_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    argv = [
        "check",
        "hf-gpt2",
        "hf-bert",
        "hf-bart",
        "hf:LlamaForCausalLM",
        "hf:T5ForConditionalGeneration",
    ]
    argv += ["--property", "model.output_shape"]
    assert main(argv) == 0
