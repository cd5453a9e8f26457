"""The mutation run of reference/ (mutmut) and its report, docs/mutation.md.

    python tools/mutation_report.py stage  [DIR]   # copy the package to DIR, configure mutmut
    (cd DIR && mutmut run --max-children 2)          # the tool's own run (nox -s mutation)
    python tools/mutation_report.py export [DIR]   # DIR/results.json: one row per mutant
    python tools/mutation_report.py report [DIR]   # docs/mutation.md from that file

`stage` copies the package as a plain `transformer_spec/` tree (src/, reference/,
properties/ and spec/ under their import names), so the copy mutmut mutates is the one the
tests import, ahead of any installed transformer_spec. The test command is
tools/mutation_suite.py, fastest items first (tools/mutation_conftest.py). A mutant is named
by its file, its function and the changed lines (`- old | + new`), not by mutmut's number,
which shifts when code changes; that name is the key of tools/mutation-equivalents.toml,
where each surviving mutant is explained.
"""

import json
import shutil
import sys
import tomllib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGE = ROOT / "build" / "mutation"
EXPLAINED = ROOT / "tools" / "mutation-equivalents.toml"
REPORT = ROOT / "docs" / "mutation.md"

# mutmut's statuses, grouped into the report's columns.
COLUMN = {
    "killed": "killed",
    "survived": "survived",
    "timeout": "timeout",
    "no tests": "incompetent",  # no test reaches the line (coverage) or the function
    "skipped": "incompetent",
    "caught by type check": "incompetent",
    "not checked": "not run",
    "check was interrupted by user": "not run",
    "suspicious": "other",
    "segfault": "other",
}
COLUMNS = ["killed", "survived", "timeout", "incompetent", "not run", "other"]
KINDS = ("equivalent", "unseeable", "cell", "open", "gap")
TIERS = ("bad input", "property", "unit test")  # the test command's, in order

MUTMUT_CONFIG = """\
[tool.mutmut]
source_paths = ["transformer_spec/reference"]
also_copy = {also_copy}
pytest_add_cli_args = ["-p", "no:cacheprovider", "-p", "no:xdist"]
pytest_add_cli_args_test_selection = ["tests/"]
mutate_only_covered_lines = true
# torch is not fork-safe once it has run: fork each mutant from a clean, warmed server.
process_isolation = "forkserver"

[tool.pytest.ini_options]
addopts = []
markers = ["unchecked: bad-input tests (the first tier)", "slow: not in the test command"]
"""

# The reference's own unit tests, after the properties in the test command (see
# tools/mutation_conftest.py): its bad-input tests and its structure tests among them.
UNIT_TESTS = [
    "test_attention.py",
    "test_bad_inputs.py",
    "test_embedding.py",
    "test_layers.py",
    "test_model.py",
    "test_positional.py",
    "test_reference_beyond.py",
    "test_vocabulary.py",
]


def stage(folder: Path) -> None:
    """A fresh copy of the package under its import names, plus the test command."""
    shutil.rmtree(folder, ignore_errors=True)
    package = folder / "transformer_spec"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "src" / "transformer_spec", package, ignore=ignore)
    for name in ("reference", "properties", "spec"):
        shutil.copytree(ROOT / name, package / name, ignore=ignore)
    tests = folder / "tests"
    tests.mkdir()
    (tests / "__init__.py").write_text("")
    shutil.copy(ROOT / "tools" / "mutation_suite.py", tests / "test_suite.py")
    shutil.copy(ROOT / "tools" / "mutation_conftest.py", tests / "conftest.py")
    shutil.copy(ROOT / "tests" / "conftest.py", tests / "project_conftest.py")
    for name in UNIT_TESTS:
        shutil.copy(ROOT / "tests" / name, tests / name)
    # Everything but reference/ reaches mutmut's copy through also_copy.
    also = sorted(
        p.relative_to(folder).as_posix() for p in package.iterdir() if p.name != "reference"
    )
    (folder / "pyproject.toml").write_text(MUTMUT_CONFIG.format(also_copy=json.dumps(also)))


def export(folder: Path) -> None:
    """results.json from mutmut's state in `folder` (run there, after `mutmut run`)."""
    import os

    from mutmut.mutation.data import SourceFileMutationData
    from mutmut.mutation.diff_apply import get_diff_for_mutant
    from mutmut.mutation.file_mutation import mutate_file_contents
    from mutmut.stats import status_by_exit_code
    from mutmut.utils.file_utils import walk_mutatable_files

    os.chdir(folder)
    killers = first_killers(folder / "mutants" / "killers.jsonl")
    rows = []
    unreached = {}
    for path in walk_mutatable_files():
        data = SourceFileMutationData(path=path)
        data.load()
        # mutate_only_covered_lines: no mutant is made on a line the suite never runs.
        every = mutate_file_contents(str(path), path.read_text()).mutant_names
        unreached[path.name] = len(every) - len(data.exit_code_by_key)
        for name, code in sorted(data.exit_code_by_key.items()):
            diff = get_diff_for_mutant(name, path=path)
            status = status_by_exit_code[code]
            rows.append(
                {
                    "file": path.name,
                    "function": function_of(name),
                    "change": change_of(diff),
                    "status": status,
                    "name": name,
                    **(killers.get(name, {}) if status == "killed" else {}),
                }
            )
    results = {"mutants": rows, "unreached": unreached}
    Path("results.json").write_text(json.dumps(results, indent=1) + "\n")


def first_killers(path: Path) -> dict[str, dict[str, str]]:
    """Each killed mutant's first failing item and its tier, from the test command's log
    (tools/mutation_conftest.py); a mutant run twice keeps its last run's."""
    found: dict[str, dict[str, str]] = {}
    lines = path.read_text().splitlines() if path.exists() else []
    for line in lines:
        row = json.loads(line)
        found[row["mutant"]] = {"killer": row["test"], "tier": row["tier"]}
    return found


def function_of(mutant: str) -> str:
    """`Class.method` or `function` from mutmut's mangled name."""
    mangled = mutant.partition("__mutmut_")[0].rpartition(".")[2]
    if "ǁ" in mangled:
        return ".".join(part for part in mangled.split("ǁ")[1:] if part)
    return mangled.removeprefix("x_")


def change_of(diff: str) -> str:
    """The changed lines of a unified diff, stripped: `- old | + new`."""
    lines = diff.splitlines()
    changed = [
        f"{line[0]} {line[1:].strip()}"
        for line in lines
        if line[:1] in "-+" and not line.startswith(("---", "+++"))
    ]
    return " | ".join(changed)


@dataclass(frozen=True)
class Entry:
    file: str
    function: str
    change: str
    # equivalent; unseeable (no spec property can see it); cell (a named property kills it
    # in a cell the run leaves out, float64); open (a real gap, not closed yet: what would
    # close it); gap (it survived once and is now killed)
    kind: str
    reason: str

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.file, self.function, self.change)


def load_entries(path: Path) -> list[Entry]:
    data = tomllib.loads(path.read_text()) if path.exists() else {}
    entries = []
    for i, row in enumerate(data.get("mutant", [])):
        missing = [k for k in ("file", "function", "change", "kind", "reason") if not row.get(k)]
        if missing:
            raise ValueError(f"{path.name}: mutant entry {i + 1} lacks {', '.join(missing)}")
        if row["kind"] not in KINDS:
            raise ValueError(
                f"{path.name}: mutant entry {i + 1}: kind {row['kind']!r} not in {KINDS}"
            )
        entries.append(
            Entry(row["file"], row["function"], row["change"], row["kind"], row["reason"])
        )
    return entries


def stale(rows: list[dict[str, str]], entries: list[Entry]) -> list[str]:
    """Entries that no longer describe the run: the mutant is gone, an equivalent or unseeable
    one is now killed, a closed gap survives again."""
    status = {(r["file"], r["function"], r["change"]): r["status"] for r in rows}
    out = []
    for e in entries:
        where = f"{e.file} {e.function}: {e.change}"
        found = status.get(e.key)
        if found is not None and COLUMN.get(found) == "not run":
            continue  # the run did not reach it: nothing to say
        if found is None:
            out.append(f"{e.kind} entry matches no mutant any more: {where}")
        elif e.kind == "gap" and COLUMN.get(found) != "killed":
            out.append(f"closed gap is {found} again: {where}")
        elif e.kind != "gap" and COLUMN.get(found) in ("killed", "timeout"):
            out.append(f"{e.kind} entry is now {found} (remove it): {where}")
    return out


def score(counts: Counter[str]) -> tuple[float, int]:
    """(detected / competent non-equivalent mutants, that denominator): detected = killed or
    timed out; equivalent, incompetent and not-run mutants are left out."""
    left_out = ("equivalent", "incompetent", "not run")
    competent = sum(counts[column] for column in COLUMNS if column not in left_out)
    detected = counts["killed"] + counts["timeout"]
    return (detected / competent if competent else 1.0), competent


def render(
    rows: list[dict[str, str]],
    entries: list[Entry],
    *,
    unreached: dict[str, int],
    header: str,
) -> str:
    """The report: a table per file, the score, every survivor with its status."""
    by_key = {e.key: e for e in entries}

    def kind(row: dict[str, str]) -> str:
        e = by_key.get((row["file"], row["function"], row["change"]))
        return e.kind if e else ""

    def column(row: dict[str, str]) -> str:
        found = COLUMN.get(row["status"], "other")
        return "equivalent" if found == "survived" and kind(row) == "equivalent" else found

    names = [*COLUMNS, "equivalent"]
    firsts = [f"first by {t}" for t in TIERS]
    heads = " | ".join([*names, *firsts])
    out = [header, "", f"| file | line never run | generated | {heads} | score |"]
    out.append("|---" * (len(names) + len(firsts) + 4) + "|")
    files = sorted({r["file"] for r in rows} | set(unreached))
    total: Counter[str] = Counter()
    for file in [*files, "all"]:
        mine = [r for r in rows if file in ("all", r["file"])]
        counts = Counter(column(r) for r in mine)
        counts.update(f"first by {r['tier']}" for r in mine if r.get("tier"))
        never = sum(unreached.values()) if file == "all" else unreached.get(file, 0)
        cells = " | ".join(str(counts[c]) for c in [*names, *firsts])
        name = "**all**" if file == "all" else file
        value, competent = score(counts)
        shown = f"{value:.1%}" if competent else "-"
        out.append(f"| {name} | {never} | {len(mine)} | {cells} | {shown} |")
        total = counts
    value, competent = score(total)
    detected = total["killed"] + total["timeout"]
    unseeable = sum(column(r) == "survived" and kind(r) == "unseeable" for r in rows)
    elsewhere = sum(column(r) == "survived" and kind(r) == "cell" for r in rows)
    inside = (detected + elsewhere) / (competent - unseeable) if competent > unseeable else 1.0
    bad_input = total["first by bad input"]
    by_property = total["first by property"]
    valid = competent - bad_input
    out += [
        "",
        f"Score: {detected} of {competent} competent, non-equivalent "
        f"mutants detected = **{value:.1%}** ({total['equivalent']} equivalent, "
        f"{total['incompetent']} incompetent, {sum(unreached.values())} not generated because "
        "the suite never runs their line).",
        "",
        f"First failures: {bad_input} a bad-input test, {by_property} a property, "
        f"{total['first by unit test']} only a unit test ({total['timeout']} timed out). "
        "Bad-input tests run first because they are the cheapest; they build models, so they "
        "also catch any mutant that breaks building or calling, and how many of those the "
        "properties would catch is not measured. Of the other "
        f"{valid} competent, non-equivalent mutants, which all met every property reaching "
        f"their function, the properties detect {by_property} "
        f"(**{by_property / valid if valid else 1.0:.1%}**); the unit tests kill "
        f"{total['first by unit test']} of the rest: what the properties miss, listed below.",
        "",
        f"Leaving out also the {unseeable} survivors no property of the spec can see (input",
        "validation, error messages, arguments no target protocol passes; each has its reason",
        f"below), and counting as detected the {elsewhere} that a named property kills in a cell",
        f"the run leaves out: {detected + elsewhere} of {competent - unseeable} = "
        f"**{inside:.1%}**.",
        "",
        "## Every survivor",
        "",
    ]
    survivors = [r for r in rows if column(r) in ("survived", "equivalent", "other")]
    if not survivors:
        out.append("None.")
    for r in survivors:
        e = by_key.get((r["file"], r["function"], r["change"]))
        status = f"{e.kind}: {e.reason}" if e else "**unexplained: a gap to close**"
        out.append(f"- `{r['file']}` `{r['function']}` `{r['change']}` ({r['status']}): {status}")
    missed = [r for r in rows if r.get("tier") == "unit test"]
    out += ["", "## Detected by a unit test only: what the properties miss", ""]
    out += [
        "Each passed every property that reaches its function and failed the named unit test of",
        "the reference (its own API and structure, beyond what a target protocol calls).",
        "",
    ]
    out += [
        f"- `{r['file']}` `{r['function']}` `{r['change']}`: {r['killer']}" for r in missed
    ] or ["None."]
    gaps = [e for e in entries if e.kind == "gap"]
    if gaps:
        out += ["", "## Gaps the run found, now closed", ""]
        out += [f"- `{e.file}` `{e.function}` `{e.change}`: {e.reason}" for e in gaps]
    warnings = stale(rows, entries)
    if warnings:
        out += ["", "## Stale entries in tools/mutation-equivalents.toml", ""]
        out += [f"- {w}" for w in warnings]
    return "\n".join(out) + "\n"


ABOUT = """\
# Mutation testing of reference/

Generated by `nox -s mutation` (tools/mutation_report.py); do not edit by hand. Survivors are
explained in tools/mutation-equivalents.toml. The hand-written catalogue (docs/kill-matrix.md)
is the other measure; the README says how the two differ.

## The tool: mutmut 3, not cosmic-ray

cosmic-ray 8.7 was the tool of the sample in issue 20: it runs each mutant as a fresh process,
so every mutant pays the torch import (about 4 s) and runs the whole test command given to it,
and of its 708 mutants of three files 154 crashed at import (mutated type annotations) and 80
were syntax errors. mutmut 3.8 (read and run here) mutates function bodies only (no
annotation, decorator or module-level code, so no mutant fails at import), runs the suite once
to learn which tests reach which function, and forks each mutant from a warmed process
(`process_isolation = "forkserver"`: torch is not fork-safe once it has run) that runs only
those tests, stopping at the first failure; `mutate_only_covered_lines` makes no mutant on a
line the suite never runs; `--max-children` is its own parallelism. What mutmut does not
mutate (decorated functions such as `generate`, `@property` methods, dataclass defaults,
module constants) is not measured here; the catalogue covers several of those by hand.

## The four gaps of issue 20

Each applied by hand to reference/multihead.py and run with `transformer-spec check
reference-math reference-fused --profile ci --dtype float32`; each is killed by a named
property:

- fused-path condition `and causal` -> `or causal`: multihead.padding_and_causal_combine
  (both paths), multihead.causal_weights_hide_future_keys (math path);
- `self.path == "fused"` -> `!=`: multihead.causal_weights_hide_future_keys;
- `and mask is None` -> `or mask is None`: multihead.causal_weights_hide_future_keys,
  multihead.padded_keys_have_no_effect and 15 more;
- `causal: bool = False` -> `True` (the encoder layer relies on the default):
  model.encoder_only.all_to_all, model.encoder_decoder.cross_attention_not_causal,
  model.encoder_only.permutation_equivariant and 4 more (at the model level; no layers-level
  property sees it).

## The run

The test command has three tiers, run in this order for each mutant, stopping at the first
failure (tools/mutation_conftest.py):

1. *bad input*: the reference's bad-input tests (tests/test_bad_inputs.py, the tests marked
   `unchecked`): every caller mistake raises an error that names the argument. They are the
   cheapest and kill what no valid call can show (validation, message wording); they build
   models, so they also catch mutants that break building or calling.
2. *property*: every property, `quick` profile (10 examples each, seed 0; `ci` draws 25),
   without shrinking, on four cells:
   `reference-math` float32, `reference-fused` float32 (the fused path: torch SDPA, its
   causal kernel), `reference-math` bfloat16 (the low-precision branches) and
   `reference-top-left` float32 (the causal mask's top-left branch).
3. *unit test*: the reference's other unit tests (test_attention, test_embedding,
   test_layers, test_model, test_positional, test_vocabulary; the spec's structure clauses
   are checked there): the reference's own API beyond what a target protocol calls
   (an explicit `scale`, devices, the bias switch, exact low-precision rounding).

Within a tier the fastest items run first, so a killed mutant costs little; a survivor costs
every item that reaches its function. A mutant first killed by a unit test passed every
property that reaches its function: those are listed below as what the properties miss.
Columns: *line never run* counts the mutants mutmut would make on lines the test command never
executes (not generated); *incompetent* are generated mutants no test reaches; *timeout*
counts as detected; *first by* says which tier failed first for each killed mutant; the score
is detected / (generated - incompetent - equivalent).
"""


def header(run: dict[str, str]) -> str:
    """The report's head: what the tool is and why, what was run, how long it took."""
    return ABOUT + "\n" + "\n".join(f"- {k}: {v}" for k, v in run.items())


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("stage", "export", "report"):
        print("usage: mutation_report.py stage|export|report [DIR]", file=sys.stderr)
        return 2
    folder = Path(argv[1]).resolve() if len(argv) > 1 else STAGE
    if argv[0] == "stage":
        stage(folder)
    elif argv[0] == "export":
        export(folder)
    else:
        results = folder / "results.json"
        if not results.exists():
            print(f"{results}: no results; run `mutmut run` and `export` first", file=sys.stderr)
            return 2
        found = json.loads(results.read_text())
        rows, unreached = found["mutants"], found["unreached"]
        entries = load_entries(EXPLAINED)
        run = folder / "run.json"
        facts = json.loads(run.read_text()) if run.exists() else {}
        REPORT.write_text(render(rows, entries, unreached=unreached, header=header(facts)))
        for warning in stale(rows, entries):
            print(f"warning: {warning}", file=sys.stderr)
        print(f"wrote {REPORT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
