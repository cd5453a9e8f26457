"""The package's import layers, read from the source (every import, those inside functions
too; imports under `if TYPE_CHECKING:` are for the type checker only and left out):

    commands (the CLI)  >  plugin and its items  >  reports  >  the run (session, loading)
    >  checks  >  harness  >  targets  >  reference  >  spec  >  the version

A module imports only from its own layer or the layers below, and no two modules import
each other, directly or round a longer cycle."""

import ast
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).parents[1]
# Where each top-level folder lives in the one import namespace (pyproject.toml).
FOLDERS = {
    "transformer_spec": ROOT / "src" / "transformer_spec",
    "transformer_spec.spec": ROOT / "spec",
    "transformer_spec.reference": ROOT / "reference",
    "transformer_spec.properties": ROOT / "properties",
}
P = "transformer_spec.properties"
# (prefix, layer): the longest prefix that a module name starts with gives its layer.
LAYERS = [
    ("transformer_spec", 9),  # the CLI: cli, commands, the option and help modules
    ("transformer_spec._version", 0),
    ("transformer_spec.__init__", 0),
    ("transformer_spec._extras", 0),
    ("transformer_spec._lazy", 0),
    ("transformer_spec.spec", 1),
    ("transformer_spec.reference", 2),
    (f"{P}.targets", 3),
    (f"{P}.__init__", 3),  # the public API: the targets' constructors and protocols
    (f"{P}.harness", 4),
    (f"{P}.checks", 5),
    (f"{P}.harness.loading", 6),
    (f"{P}.harness.session", 6),
    (f"{P}.reports", 7),
    (f"{P}.plugin", 8),
    (f"{P}.test_properties", 8),
]


def layer(module: str) -> int:
    found = [(len(prefix), rank) for prefix, rank in LAYERS if _under(module, prefix)]
    return max(found)[1]


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package, folder in FOLDERS.items():
        for path in folder.rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            found[".".join((package, *parts))] = path
    return found


def imports(module: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that `module` imports (the longest known name of each)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for inner in ast.walk(node)
    }
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            # `from PACKAGE import MODULE` depends on MODULE; `from MODULE import NAME`, on
            # MODULE (a package's __init__ for a name it defines).
            names |= {
                f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names
            }
    return {_known(name, known) for name in names if name.startswith("transformer_spec")} - {
        module,
        "",
    }


def _known(name: str, known: set[str]) -> str:
    """`name` as a module of the package: itself, a package's __init__ or the module that
    defines the imported name."""
    while name:
        if name in known:
            return name
        if f"{name}.__init__" in known:
            return f"{name}.__init__"
        name = name.rpartition(".")[0]
    return ""


def graph() -> dict[str, set[str]]:
    found = modules()
    named = {m.removesuffix(".__init__") if m.endswith(".__init__") else m for m in found}
    known = set(found) | named
    return {m: {_init(i, found) for i in imports(m, p, known)} - {m} for m, p in found.items()}


def _init(name: str, found: dict[str, Path]) -> str:
    return name if name in found else f"{name}.__init__"


def test_each_module_imports_only_its_layer_and_below() -> None:
    wrong = [
        f"{m} (layer {layer(m)}) imports {i} (layer {layer(i)})"
        for m, targets in graph().items()
        for i in sorted(targets)
        if layer(i) > layer(m)
    ]
    assert not wrong, "\n".join(wrong)


def test_no_import_cycle() -> None:
    edges = graph()
    cycles = [c for c in _components(edges) if len(c) > 1]
    assert not cycles, cycles


def test_the_checker_sees_a_cycle_and_an_upward_import() -> None:
    """The two checks above would pass on an empty graph: they find what they look for."""
    cycle = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert [sorted(c) for c in _components(cycle) if len(c) > 1] == [["a", "b", "c"]]
    assert layer(f"{P}.harness.runner") < layer(f"{P}.reports.board")
    assert layer(f"{P}.harness.session") > layer(f"{P}.checks.model")
    assert f"{P}.harness.registry" in graph()[f"{P}.checks.attention"]


MAKE_A_PLAN = (
    f"from {P}.harness.plan import make_plan; "
    "plan = make_plan(['reference-math', 'torch-sdpa-math'], property=['attention.*'], jobs=2); "
    "plan.workers(); plan.items(True); plan.to_json()"
)


@pytest.mark.parametrize(
    "code",
    [f"import {P}.plugin", MAKE_A_PLAN, f"import {P}.harness.session"],
    ids=["plugin", "plan", "session"],
)
def test_the_plan_and_the_plugin_import_no_torch(code: str) -> None:
    """The Plan is made and sized, and the session starts its workers, before torch is
    imported (the plugin is loaded by every pytest session of a project that has the
    package installed)."""
    import subprocess
    import sys

    code = f"import sys; {code}; print('torch' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.stdout.strip() == "False", run.stdout + run.stderr


def _components(edges: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part: set[str] = set()
            while True:
                w = stack.pop()
                on.discard(w)
                part.add(w)
                if w == v:
                    break
            found.append(part)

    for v in list(edges):
        if v not in index:
            visit(v)
    return found


# Options that share a run option's name and mean something else.
NOT_RUN_OPTIONS = {("copy", "--seed")}  # copy-task: the training's seed, not Hypothesis's


def test_no_run_option_is_declared_twice() -> None:
    """The run options (plan.OPTIONS) are declared once: the CLI's parsers and the pytest
    plugin add them from that table, and no add_argument/addoption call names one again."""
    from transformer_spec.properties.harness.plan import OPTIONS

    names = {o.name for o in OPTIONS}
    again = []
    for path in [*FOLDERS["transformer_spec"].rglob("*.py"), FOLDERS[P] / "plugin.py"]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if node.func.attr not in ("add_argument", "addoption") or not node.args:
                continue
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                word = first.value.removeprefix("--ts-").removeprefix("--")
                owner = getattr(node.func.value, "id", "")
                if word in names and (owner, first.value) not in NOT_RUN_OPTIONS:
                    again.append(f"{path.name}:{node.lineno} {first.value}")
    assert not again, again


def test_every_command_takes_its_run_options_from_the_one_table() -> None:
    from transformer_spec.properties.harness.plan import OPTIONS

    from transformer_spec._parser import build_parser

    parser = build_parser()
    sub: Any = next(a for a in parser._actions if a.dest == "command").choices
    for o in OPTIONS:
        for command in o.commands:
            flags = {f for a in sub[command]._actions for f in a.option_strings}
            assert f"--{o.name}" in flags, (command, o.name)
