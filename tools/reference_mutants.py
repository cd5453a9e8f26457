"""Seeded bugs in the reference: each must make the reference's own tests fail.

Usage (from the repository root, in a venv with the project installed editable):
    python tools/reference_mutants.py [NAME-FILTER ...]
Prints KILLED or SURVIVED per mutant with the first failing test, and exits 1 if any
survives. The mutants are the harness's catalogue (transformer_spec.properties.targets.mutants),
written into the file under reference/ one at a time and restored afterwards, even on
interrupt. `transformer-spec mutants` checks the same catalogue against the properties,
without touching files; this tool asks whether the reference's own unit tests notice.
"""

import pathlib
import subprocess
import sys

from transformer_spec.properties.targets.mutants import CATALOGUE

ROOT = pathlib.Path(__file__).resolve().parents[1]
MUTANTS = [(m.name, f"reference/{m.module}.py", m.old, m.new) for m in CATALOGUE]


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
