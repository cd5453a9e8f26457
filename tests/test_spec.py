"""spec/: the clauses load, validate, and cite headings that really are in the notes."""

import re
from pathlib import Path
from typing import Any

import pytest
from transformer_spec.spec import KINDS, SpecError, build_spec, load_spec

SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"
SECTIONS = [
    "architecture",
    "embedding",
    "positional",
    "attention",
    "scaling",
    "multihead",
    "masking",
    "cross_attention",
    "feedforward",
    "residual_norm",
    "encoder",
    "decoder",
    "unembedding",
    "generation",
    "training",
    "beyond_notes",
]


def test_spec_loads_with_every_section_and_many_checkable_clauses() -> None:
    spec = load_spec()
    assert [s.name for s in spec.sections] == SECTIONS
    assert len(spec.checkable()) > 40
    assert {c.kind for c in spec.clauses} == set(KINDS)
    assert len({c.id for c in spec.clauses}) == len(spec.clauses)
    assert all(c.reason for c in spec.clauses if c.kind == "informative")


@pytest.mark.skipif(not SEEDS.is_dir(), reason=f"the notes are not beside the repository ({SEEDS})")
def test_every_cited_heading_is_in_its_note() -> None:
    spec = load_spec()
    assert sorted(spec.sources) == sorted(p.name for p in SEEDS.iterdir())
    notes = {p.name: p.read_text(encoding="utf-8").replace("*", "") for p in SEEDS.iterdir()}
    missing = [
        (c.id, src.file, part)
        for c in spec.clauses
        for src in c.sources
        if not src.published  # a published work is cited by its section, not in the notes
        for part in (re.sub(r"^\d+\.\s*", "", p.strip()) for p in src.section.split("/"))
        if part not in notes[src.file]
    ]
    assert not missing


def _sources() -> dict[str, Any]:
    return {"spec_version": "1", "source": [{"file": "a.txt", "title": "A"}]}


def _section(**clause: Any) -> tuple[str, dict[str, Any]]:
    base = {
        "id": "X-ONE",
        "kind": "property",
        "statement": "s",
        "sources": [{"file": "a.txt", "section": "h"}],
    }
    base.update(clause)
    return ("x.toml", {"section": "x", "prefix": "X", "title": "X", "clause": [base]})


def test_a_valid_minimal_spec_builds() -> None:
    spec = build_spec(_sources(), [_section()])
    assert spec.clause("X-ONE").sources[0].file == "a.txt"


@pytest.mark.parametrize(
    ("clause", "message"),
    [
        (dict(kind="maybe"), "kind 'maybe' is not one of"),
        (dict(kind="informative"), "an informative clause needs a 'reason'"),
        (dict(id="Y-ONE"), "id must look like X-WORD"),
        (dict(id="x-one"), "id must look like X-WORD"),
        (dict(statement=""), "field 'statement' must be a non-empty str"),
        (dict(sources=[]), "'sources' must be a non-empty list"),
        (dict(sources=[{"file": "b.txt", "section": "h"}]), "unknown source file 'b.txt'"),
        (dict(checked_by=["p"]), r"unknown fields \['checked_by'\]"),
    ],
)
def test_malformed_clauses_are_rejected_with_the_field_named(
    clause: dict[str, Any], message: str
) -> None:
    with pytest.raises(SpecError, match=message):
        build_spec(_sources(), [_section(**clause)])


def test_duplicate_ids_are_rejected() -> None:
    name, table = _section()
    table["clause"] = table["clause"] * 2
    with pytest.raises(SpecError, match="duplicate clause id 'X-ONE'"):
        build_spec(_sources(), [(name, table)])


def test_duplicate_section_prefixes_are_rejected() -> None:
    one = _section()
    two = ("y.toml", {**one[1], "section": "y", "clause": [{**one[1]["clause"][0], "id": "X-TWO"}]})
    with pytest.raises(SpecError, match="section prefixes must be unique"):
        build_spec(_sources(), [one, two])


def test_clauses_beyond_the_notes_cite_published_work_only() -> None:
    spec = load_spec()
    beyond = [c for c in spec.clauses if c.beyond_notes]
    assert beyond, "no clause is marked beyond the notes"
    assert all(s.published and s.file in spec.published for c in beyond for s in c.sources)
    assert all(any(not s.published for s in c.sources) for c in spec.clauses if not c.beyond_notes)


@pytest.mark.parametrize(
    ("sources", "beyond", "message"),
    [
        ([{"published": "p", "section": "s"}], False, "a clause from the notes cites at least one"),
        (
            [{"file": "a.txt", "section": "h"}],
            True,
            "beyond the notes cites published sources only",
        ),
        ([{"published": "q", "section": "s"}], True, "unknown published source 'q'"),
    ],
)
def test_a_clause_cites_the_notes_or_published_work_as_its_section_says(
    sources: list[dict[str, str]], beyond: bool, message: str
) -> None:
    published = {"key": "p", "title": "P", "authors": "A", "year": 2020, "url": "https://x"}
    table = {**_sources(), "published": [published]}
    name, section = _section(sources=sources)
    section = {**section, "beyond_notes": beyond}
    with pytest.raises(SpecError, match=re.escape(message)):
        build_spec(table, [(name, section)])
