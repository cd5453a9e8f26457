"""Reports for people: the HTML page (self-contained, checked in a real headless browser),
the markdown summary, and the pictures of a failing example (matplotlib optional)."""

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from transformer_spec.cli import main

ROOT = Path(__file__).resolve().parents[1]
MUTANT = "mutant:causal-off-by-one"  # the catalogue's leak of one future position
LEAK = "masking.causal_no_future_leak"
PLAIN = "attention.matches_float64_formula"
MATPLOTLIB = pytest.mark.skipif(
    importlib.util.find_spec("matplotlib") is None, reason="the pictures extra is not installed"
)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BROWSER = pytest.mark.skipif(CHROMIUM is None, reason="no chromium here (apt-get install chromium)")


@pytest.fixture(autouse=True)
def _from_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def _report(tmp_path: Path, target: str, *properties: str) -> tuple[int, Path]:
    """`check` with --html, --markdown and --json into tmp_path; (exit code, folder)."""
    words = [w for p in properties for w in ("--property", p)]
    argv = ["check", target, "--profile", "ci", *words]
    paths = ["--html", "page.html", "--markdown", "summary.md", "--json", "report.json"]
    code = main(argv + [w if w.startswith("--") else str(tmp_path / w) for w in paths])
    return code, tmp_path


@MATPLOTLIB
def test_a_mutants_page_shows_the_failing_clause_and_its_picture(tmp_path: Path) -> None:
    code, folder = _report(tmp_path, MUTANT, LEAK, PLAIN)
    assert code == 1
    page = (folder / "page.html").read_text()
    assert 'id="status">FAILED: 1 failing property in 1 cell<' in page
    assert f'data-property="{LEAK}"' in page and "MASK-CAUSAL-NO-LEAK" in page
    assert page.count("data:image/png;base64,") == 1
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # nothing from the network
    result = {
        r["property"]: r
        for r in json.loads((folder / "report.json").read_text())["cells"][0]["results"]
    }
    (picture,) = result[LEAK]["pictures"]
    assert Path(picture).parent == folder / "page_pictures" and Path(picture).stat().st_size > 5000
    assert result[PLAIN]["pictures"] == []
    summary = (folder / "summary.md").read_text()
    assert "**FAILED: 1 failing property** in 1 cell." in summary
    assert f"- `{LEAK}` (MASK-CAUSAL-NO-LEAK) on mutant:causal-off-by-one, cpu, float32:" in summary


def test_the_reference_page_is_all_green(tmp_path: Path) -> None:
    code, folder = _report(tmp_path, "reference-math", "masking.*", PLAIN)
    assert code == 0
    page = (folder / "page.html").read_text()
    assert 'class="status ok" id="status">OK' in page
    assert 'class="o fail"' not in page and "<h2>Failures</h2>" not in page
    assert (
        "**OK: every applicable property passes** in 1 cell." in (folder / "summary.md").read_text()
    )


@MATPLOTLIB
def test_a_positional_encoding_failure_is_drawn(tmp_path: Path) -> None:
    target = "tests.broken_components:pe_sin_cos_swapped"
    assert (
        main(["check", target, "--property", "components.positional*", "--pictures", str(tmp_path)])
        == 1
    )
    assert any(p.name.endswith("-positions.png") for p in tmp_path.glob("*.png"))


def test_without_matplotlib_the_page_says_so_and_the_run_goes_on(tmp_path: Path) -> None:
    block = "import sys; sys.modules['matplotlib'] = None; from transformer_spec.cli import main"
    argv = ["check", MUTANT, "--property", LEAK, "--html", str(tmp_path / "page.html")]
    run = subprocess.run(
        [sys.executable, "-c", f"{block}; sys.exit(main({argv}))"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert run.returncode == 1, run.stderr  # the mutant's failure, not a crash
    warning = "warning: no pictures: matplotlib is not installed"
    assert warning in run.stderr and "pip install 'transformer-spec[pictures]'" in run.stderr
    page = (tmp_path / "page.html").read_text()
    assert "No pictures: matplotlib is not installed" in page and "<img" not in page
    assert not (tmp_path / "page_pictures").exists()  # no empty folder left behind


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--html", "/no/such/folder/page.html"], "does not exist or is not writable"),
        (["--markdown", "tests"], "report path 'tests': is a folder"),
        (["--pictures", "README.md"], "--pictures 'README.md': exists and is not a folder"),
    ],
)
def test_bad_report_paths_exit_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    return subprocess.run(
        [CHROMIUM, *flags, "--virtual-time-budget=5000", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@BROWSER
@MATPLOTLIB
def test_the_page_renders_in_a_browser_with_its_numbers_and_pictures(tmp_path: Path) -> None:
    code, folder = _report(tmp_path, MUTANT, "masking.causal_*", PLAIN)
    assert code == 1
    url = (folder / "page.html").as_uri()
    dom = _chromium("--dump-dom", url)
    assert dom.returncode == 0, dom.stderr
    body = re.search(r"<body[^>]*>", dom.stdout)
    assert body, dom.stdout[:500]
    total = re.search(r'data-images-total="(\d+)"', body.group(0))
    loaded = re.search(r'data-images-loaded="(\d+)"', body.group(0))
    assert total and loaded and int(total.group(1)) >= 1 and loaded.group(1) == total.group(1)
    cell = json.loads((folder / "report.json").read_text())["cells"][0]
    row = re.search(r'<tr data-cell="[^"]*">(.*?)</tr>', dom.stdout, re.S)
    assert row
    shown = dict(re.findall(r'data-outcome="(\w+)">(\d+)<', row.group(1)))
    counted = {o: sum(r["outcome"] == o for r in cell["results"]) for o in shown}
    assert {o: int(n) for o, n in shown.items()} == counted and counted["fail"] >= 1
    shot = folder / "shot.png"
    run = _chromium("--window-size=1200,1600", f"--screenshot={shot}", url)
    assert run.returncode == 0 and shot.stat().st_size > 20_000, run.stderr


def test_a_filtered_page_shows_what_was_run(tmp_path: Path) -> None:
    """`--property 'masking.*'`: only the masking section is counted and its clauses shown;
    every other clause is folded into one list; no all-zero section rows, no empty column,
    no "1 cells"."""
    from transformer_spec.properties.checks import checked_by, select
    from transformer_spec.spec import load_spec

    code, folder = _report(tmp_path, "reference-math", "masking.*")
    assert code == 0
    page = (folder / "page.html").read_text()
    assert re.findall(r'data-section="(\w+)"', page) == ["masking"]
    run = {c for p in select(["masking.*"]) for c in p.clauses}
    shown = re.findall(
        r'<tr id="([A-Z0-9-]+)"><td><code>[^<]*</code></td><td>[^<]*</td><td>'
        r"[^\n]*?</td><td>",
        page,
    )
    assert set(shown) == run
    folded = page[page.index('<details id="not-run">') :]
    total = len(load_spec(checked_by()).clauses)
    assert f"{total - len(run)} clauses that no property of this run checked" in folded
    assert f"This run checked {len(run)} clauses of {total}, in 1 section." in page
    assert "not run</span>" not in page  # nothing listed as not run outside the fold
    assert "1 cells" not in page and "<td></td></tr>" not in page
