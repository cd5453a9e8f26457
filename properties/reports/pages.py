"""Reports for people: one self-contained HTML page (inline CSS, pictures as data URIs, no
network) and a short markdown summary for a CI job summary.

The page: the verdict, a summary per cell, the failures with their counterexamples and
pictures, a summary per spec section and the clauses this run checked with their outcomes
(sections it did not touch are left out, the clauses it did not check folded into one list),
the tolerances used, and the run header (targets, conventions, environment)."""

import base64
import html
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from transformer_spec.properties.harness.results import CellReport, Outcome, Result
from transformer_spec.properties.reports.report import count
from transformer_spec.properties.targets.protocols import Target
from transformer_spec.spec import Clause, Spec

OUTCOMES: tuple[Outcome, ...] = ("pass", "fail", "not_applicable", "known_failure", "convention")
LABEL = {
    "pass": "pass",
    "fail": "FAIL",
    "not_applicable": "n/a",
    "known_failure": "known",
    "convention": "conv",
}
_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em; color: #1b1f24; max-width: 1200px; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccd; padding-bottom: .2em; }
table { border-collapse: collapse; margin: .6em 0 1.2em; }
th, td { border: 1px solid #d0d7de; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #f3f5f7; }
.status { font-size: 1.3em; padding: .5em 1em; border-radius: 6px; display: inline-block; }
.ok { background: #dafbe1; color: #116329; } .bad { background: #ffebe9; color: #a40e26; }
.o { display: inline-block; min-width: 3.2em; text-align: center; border-radius: 4px;
     font-size: .85em; padding: 0 .3em; margin: 1px; }
.pass { background: #dafbe1; color: #116329; } .fail { background: #cf222e; color: #fff; }
.not_applicable { background: #eaeef2; color: #57606a; }
.known_failure { background: #fff8c5; color: #7d4e00; } .convention { background: #ddf4ff; }
pre { background: #f6f8fa; padding: .6em; overflow-x: auto; font-size: .85em; }
img { max-width: 100%; border: 1px solid #d0d7de; margin: .4em 0; }
.muted { color: #57606a; }
"""
# Counts whether every picture decoded; the browser test reads it from the page.
_SCRIPT = """
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  document.body.dataset.imagesTotal = images.length;
  document.body.dataset.imagesLoaded = images.filter(i => i.complete && i.naturalWidth > 0).length;
});
"""


def _e(text: object) -> str:
    return html.escape(str(text))


def _badge(outcome: str) -> str:
    return f'<span class="o {outcome}">{LABEL[outcome]}</span>'


def _cell_name(cell: CellReport) -> str:
    return f"{cell.target} | {cell.device} | {cell.dtype}"


def _image(path: str) -> str:
    try:
        data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    except OSError:
        return f'<p class="muted">picture {_e(path)} could not be read</p>'
    return f'<img alt="{_e(Path(path).name)}" src="data:image/png;base64,{data}">'


def _header(
    targets: dict[str, Target], environment: dict[str, Any], cells: Sequence[CellReport]
) -> list[str]:
    out = ["<h2>Run</h2>", "<table>"]
    out += [f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in environment.items()]
    if cells:
        out.append(
            f"<tr><th>profile, seed</th><td>{_e(cells[0].profile)}, {cells[0].seed}</td></tr>"
        )
    out.append("</table>")
    for name, t in targets.items():
        c = t.conventions
        out.append(f"<h3>Target <code>{_e(name)}</code></h3><p>{_e(t.description)}</p><table>")
        fields = (
            "mask_polarity",
            "causal_alignment",
            "fully_masked_row",
            "weights",
            "deterministic",
        )
        explained = bool(t.loosen) or any(c.explanations.get(f) for f in fields)
        for field in fields:
            why = f"<td>{_e(c.explanations.get(field, ''))}</td>" if explained else ""
            out.append(f"<tr><th>{field}</th><td>{_e(getattr(c, field))}</td>{why}</tr>")
        for pattern, (factor, why) in t.loosen.items():
            out.append(
                f"<tr><th>tolerance x{factor:g}</th><td>{_e(pattern)}</td><td>{_e(why)}</td></tr>"
            )
        out.append("</table>")
    return out


def _summary(cells: Sequence[CellReport]) -> list[str]:
    out = ["<h2>Summary</h2>", '<table id="summary"><tr><th>cell</th>']
    out += [f"<th>{LABEL[o]}</th>" for o in OUTCOMES] + ["</tr>"]
    for cell in cells:
        counts = "".join(f'<td data-outcome="{o}">{cell.count(o)}</td>' for o in OUTCOMES)
        out.append(
            f'<tr data-cell="{_e(_cell_name(cell))}"><td>{_e(_cell_name(cell))}</td>{counts}</tr>'
        )
    out.append("</table>")
    return out


def _clause_row(clause: Clause, cells_html: list[str]) -> str:
    if clause.kind == "informative":
        props = f'<span class="muted">not checked: {_e(clause.reason)}</span>'
    elif clause.properties:
        props = "<br>".join(f"<code>{_e(p)}</code>" for p in clause.properties)
    else:
        props = '<span class="muted">checked by the reference\'s tests</span>'
    cid = _e(clause.id)
    return (
        f'<tr id="{cid}"><td><code>{cid}</code></td><td>{_e(clause.statement)}</td>'
        f"<td>{props}</td>" + "".join(f"<td>{c}</td>" for c in cells_html) + "</tr>"
    )


def _results(clause: Clause, by_id: list[dict[str, Result]]) -> list[list[Result]]:
    """Per cell, the results of the properties that check `clause`."""
    return [[results[p] for p in clause.properties if p in results] for results in by_id]


def _sections(spec: Spec, cells: Sequence[CellReport]) -> list[str]:
    """Counts per spec section, then the clauses of each section that this run checked; the
    clauses it did not check are folded into one list at the end."""
    by_id = [{r.property: r for r in cell.results} for cell in cells]
    rows, details, folded = [], [], []
    head = "".join(f"<th>{_e(_cell_name(c))}</th>" for c in cells)
    for section in spec.sections:
        counts: Counter[str] = Counter()
        clause_rows = []
        for clause in section.clauses:
            found = _results(clause, by_id)
            if not any(found):
                folded.append(_clause_row(clause, []))
                continue
            counts.update(r.outcome for rs in found for r in rs)
            badges = [
                " ".join(f'<span title="{_e(r.property)}">{_badge(r.outcome)}</span>' for r in rs)
                or '<span class="muted">not run</span>'
                for rs in found
            ]
            clause_rows.append(_clause_row(clause, badges))
        if not clause_rows:
            continue
        name = _e(section.name)
        rows.append(
            f'<tr data-section="{name}"><td><a href="#s-{name}">{_e(section.title)}</a></td>'
            + "".join(f'<td data-outcome="{o}">{counts[o]}</td>' for o in OUTCOMES)
            + "</tr>"
        )
        details += [
            f'<h3 id="s-{name}">{_e(section.title)}</h3>',
            f"<table><tr><th>clause</th><th>statement</th><th>properties</th>{head}</tr>",
            *clause_rows,
            "</table>",
        ]
    checked = len(spec.clauses) - len(folded)
    out = [
        "<h2>By spec section</h2>",
        f'<p class="muted">This run checked {count(checked, "clause")} of '
        f"{len(spec.clauses)}, in {count(len(rows), 'section')}. Each count is one (clause, "
        "property) result: a property that checks two clauses counts under both.</p>",
        "<table><tr><th>section</th>",
        *[f"<th>{LABEL[o]}</th>" for o in OUTCOMES],
        "</tr>",
        *rows,
        "</table>",
        "<h2>Clauses</h2>",
        *details,
    ]
    return out + _folded(folded)


def _folded(rows: list[str]) -> list[str]:
    """The clauses no property of this run checked: informative ones, structure ones (the
    reference's tests check them) and those of properties the run left out."""
    if not rows:
        return []
    return [
        f'<details id="not-run"><summary>{count(len(rows), "clause")} that no property of this '
        "run checked</summary>",
        "<table><tr><th>clause</th><th>statement</th><th>checked by</th></tr>",
        *rows,
        "</table></details>",
    ]


def _failure(cell: CellReport, r: Result, statements: dict[str, str]) -> list[str]:
    out = [
        f'<div class="failure" data-property="{_e(r.property)}">',
        f"<h3>{_badge('fail')} <code>{_e(r.property)}</code> in {_e(_cell_name(cell))}</h3>",
        "<ul>"
        + "".join(
            f'<li><a href="#{_e(c)}"><code>{_e(c)}</code></a>: {_e(statements.get(c, ""))}</li>'
            for c in r.clauses
        )
        + "</ul>",
        f"<p>Diagnosis: <b>{_e(r.fault)}</b></p>" if r.fault else "",
        f"<pre>{_e(r.message)}</pre>",
    ]
    if r.counterexample:
        out.append(f"<pre>{_e(r.counterexample)}</pre>")
    if r.reproduce:
        out.append(f"<p>Reproduce: <code>{_e(r.reproduce)}</code></p>")
    out += [_image(p) for p in r.pictures]
    return [*out, "</div>"]


def _tolerances(cells: Sequence[CellReport]) -> list[str]:
    names = list(cells[0].tolerance) if cells else []
    out = ["<h2>Tolerances used</h2>", "<table><tr><th>cell</th>"]
    out += [f"<th>{_e(n)}</th>" for n in names] + ["</tr>"]
    for cell in cells:
        values = "".join(f"<td>{cell.tolerance[n]:.3g}</td>" for n in names)
        out.append(f"<tr><td>{_e(_cell_name(cell))}</td>{values}</tr>")
    out.append("</table>")
    notes = {
        (cell.target, r.property, r.tolerance_note)
        for cell in cells
        for r in cell.results
        if r.tolerance_note
    }
    out += [f"<p><code>{_e(p)}</code> on {_e(t)}: {_e(n)}</p>" for t, p, n in sorted(notes)]
    return out


def render_html(
    cells: Sequence[CellReport],
    targets: dict[str, Target],
    spec: Spec,
    environment: dict[str, Any],
    notes: Sequence[str] = (),
) -> str:
    failed = sum(c.count("fail") for c in cells)
    where = count(len(cells), "cell")
    verdict = (
        f"FAILED: {count(failed, 'failing property', 'failing properties')} in {where}"
        if failed
        else f"OK: every applicable property passes in {where}"
    )
    status = f'<p class="status {"bad" if failed else "ok"}" id="status">{verdict}</p>'
    body = [f"<h1>transformer-spec conformance report</h1>{status}"]
    body += [f'<p class="muted">{_e(n)}</p>' for n in notes]
    body += _summary(cells)
    statements = {c.id: c.statement for section in spec.sections for c in section.clauses}
    failures = [(c, r) for c in cells for r in c.results if r.outcome == "fail"]
    failures.sort(key=lambda cr: not cr[1].pictures)  # the pictured ones first
    if failures:
        body.append("<h2>Failures</h2>")
        for cell, r in failures:
            body += _failure(cell, r, statements)
    body += _sections(spec, cells)
    body += _tolerances(cells)
    body += _header(targets, environment, cells)
    body.append(f'<p class="muted">spec version {_e(spec.version)}</p>')
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>transformer-spec report</title>"
        f"<style>{_CSS}</style><script>{_SCRIPT}</script></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def render_summary(cells: Sequence[CellReport], notes: Sequence[str] = ()) -> str:
    """A few lines of markdown: the verdict, the counts per cell, each failure in one line."""
    failed = sum(c.count("fail") for c in cells)
    verdict = (
        f"FAILED: {count(failed, 'failing property', 'failing properties')}"
        if failed
        else "OK: every applicable property passes"
    )
    lines = ["## transformer-spec", "", f"**{verdict}** in {count(len(cells), 'cell')}.", ""]
    lines += [f"_{n}_" for n in notes]
    lines += [
        "| cell | " + " | ".join(LABEL[o] for o in OUTCOMES) + " |",
        "| --- |" + " ---: |" * len(OUTCOMES),
    ]
    for cell in cells:  # a "|" inside a markdown cell would split it
        counts = " | ".join(str(cell.count(o)) for o in OUTCOMES)
        lines.append(f"| {cell.target}, {cell.device}, {cell.dtype} | {counts} |")
    failures = [(c, r) for c in cells for r in c.results if r.outcome == "fail"]
    if failures:
        lines += ["", "Failures:", ""]
        for cell, r in failures:
            first = r.message.strip().splitlines()[0] if r.message.strip() else ""
            where = f"{cell.target}, {cell.device}, {cell.dtype}"
            lines.append(f"- `{r.property}` ({', '.join(r.clauses)}) on {where}: {first}")
    return "\n".join(lines) + "\n"
