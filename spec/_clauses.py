"""Load and validate the clauses of spec/ (one TOML file per section of the notes).

A clause is one checkable (or deliberately unchecked) claim from the notes, in our words.
`kind` says how it is checked:
- ``property``: by an executable property of the harness (a Hypothesis test);
- ``structure``: by inspecting the reference's construction (shapes, parameter counts,
  layer composition) in the reference's own tests;
- ``informative``: not checkable by running code; ``reason`` says why.

The link from clauses to the properties that check them is not stored in the TOML: each
property cites its clause ids, and `Clause.properties` is filled from that registry, so the
link has one source of truth.
"""

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import Any, Literal, cast

Kind = Literal["property", "structure", "informative"]
KINDS: tuple[Kind, ...] = ("property", "structure", "informative")
_ID = re.compile(r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)+$")


class SpecError(ValueError):
    """A spec file is malformed; the message names the file and the field."""


@dataclass(frozen=True)
class Source:
    """Where a clause comes from: a note in ../shared/seeds/ (`file`), or, for a clause
    beyond the notes, a published work by its key in sources.toml (`published`)."""

    file: str
    section: str
    published: bool = False


@dataclass(frozen=True)
class Clause:
    id: str
    section: str
    kind: Kind
    statement: str
    sources: tuple[Source, ...]
    reason: str = ""
    properties: tuple[str, ...] = field(default=())
    beyond_notes: bool = False  # from published work, not from the notes


@dataclass(frozen=True)
class Section:
    name: str
    title: str
    prefix: str
    clauses: tuple[Clause, ...]
    beyond_notes: bool = False


@dataclass(frozen=True)
class Spec:
    version: str
    sources: Mapping[str, str]  # seed file name -> title
    sections: tuple[Section, ...]
    published: Mapping[str, str] = field(default_factory=dict)  # key -> citation

    @property
    def titles(self) -> Mapping[str, str]:
        """Every source a clause may cite, the notes and the published works."""
        return {**self.sources, **self.published}

    @property
    def clauses(self) -> tuple[Clause, ...]:
        return tuple(c for s in self.sections for c in s.clauses)

    def clause(self, clause_id: str) -> Clause:
        for c in self.clauses:
            if c.id == clause_id:
                return c
        raise KeyError(f"no clause with id {clause_id!r}")

    def checkable(self) -> tuple[Clause, ...]:
        return tuple(c for c in self.clauses if c.kind != "informative")


def _require(table: Mapping[str, Any], key: str, where: str, kind: type = str) -> Any:
    if key not in table:
        raise SpecError(f"{where}: missing required field {key!r}")
    value = table[key]
    if not isinstance(value, kind) or (isinstance(value, str) and not value.strip()):
        raise SpecError(f"{where}: field {key!r} must be a non-empty {kind.__name__}")
    return value


def _parse_sources(
    raw: Any, known: Mapping[str, str], published: Mapping[str, str], where: str
) -> tuple[Source, ...]:
    if not isinstance(raw, list) or not raw:
        raise SpecError(f"{where}: 'sources' must be a non-empty list of {{file, section}}")
    sources = []
    for i, entry in enumerate(raw):
        at = f"{where} sources[{i}]"
        if not isinstance(entry, dict):
            raise SpecError(f"{at}: must be a table with 'file' and 'section'")
        if "published" in entry:
            key = _require(entry, "published", at)
            if key not in published:
                raise SpecError(
                    f"{at}: unknown published source {key!r}; known: {sorted(published)}"
                )
            sources.append(Source(file=key, section=_require(entry, "section", at), published=True))
            continue
        file = _require(entry, "file", at)
        if file not in known:
            raise SpecError(f"{at}: unknown source file {file!r}; known: {sorted(known)}")
        sources.append(Source(file=file, section=_require(entry, "section", at)))
    return tuple(sources)


def _parse_clause(
    raw: Mapping[str, Any],
    section: str,
    prefix: str,
    sources: tuple[Mapping[str, str], Mapping[str, str]],
    beyond_notes: bool,
    where: str,
) -> Clause:
    cid = _require(raw, "id", where)
    at = f"{where} clause {cid}"
    if not _ID.match(cid) or not cid.startswith(prefix + "-"):
        raise SpecError(f"{at}: id must look like {prefix}-WORD (upper case, dashes)")
    kind = _require(raw, "kind", at)
    if kind not in KINDS:
        raise SpecError(f"{at}: kind {kind!r} is not one of {KINDS}")
    reason = raw.get("reason", "")
    if kind == "informative" and not (isinstance(reason, str) and reason.strip()):
        raise SpecError(f"{at}: an informative clause needs a 'reason' it cannot be checked")
    unknown = set(raw) - {"id", "kind", "statement", "sources", "reason"}
    if unknown:
        raise SpecError(f"{at}: unknown fields {sorted(unknown)}")
    cited = _parse_sources(raw.get("sources"), *sources, at)
    if beyond_notes and not all(s.published for s in cited):
        raise SpecError(f"{at}: a clause beyond the notes cites published sources only")
    if not beyond_notes and not any(not s.published for s in cited):
        raise SpecError(f"{at}: a clause from the notes cites at least one note")
    return Clause(
        id=cid,
        section=section,
        kind=cast(Kind, kind),
        statement=" ".join(_require(raw, "statement", at).split()),
        sources=cited,
        reason=" ".join(str(reason).split()),
        beyond_notes=beyond_notes,
    )


def parse_section(
    raw: Mapping[str, Any],
    known: Mapping[str, str],
    where: str,
    published: Mapping[str, str] | None = None,
) -> Section:
    name = _require(raw, "section", where)
    prefix = _require(raw, "prefix", where)
    beyond = raw.get("beyond_notes", False)
    if not isinstance(beyond, bool):
        raise SpecError(f"{where}: 'beyond_notes' must be true or false")
    clauses_raw = _require(raw, "clause", where, list)
    sources = (known, published or {})
    clauses = tuple(_parse_clause(c, name, prefix, sources, beyond, where) for c in clauses_raw)
    title = _require(raw, "title", where)
    return Section(name=name, title=title, prefix=prefix, clauses=clauses, beyond_notes=beyond)


def build_spec(
    sources_raw: Mapping[str, Any], sections_raw: Iterable[tuple[str, Mapping[str, Any]]]
) -> Spec:
    """Validate parsed TOML tables into a Spec: unique ids, prefixes and known sources."""
    entries = _require(sources_raw, "source", "sources.toml", list)
    known = {
        _require(e, "file", "sources.toml"): _require(e, "title", "sources.toml") for e in entries
    }
    published = {
        _require(e, "key", "sources.toml published"): _citation(e)
        for e in sources_raw.get("published", [])
    }
    sections = tuple(parse_section(raw, known, where, published) for where, raw in sections_raw)
    seen: dict[str, str] = {}
    for s in sections:
        for c in s.clauses:
            if c.id in seen:
                raise SpecError(f"duplicate clause id {c.id!r} in {seen[c.id]} and {s.name}")
            seen[c.id] = s.name
    prefixes = [s.prefix for s in sections]
    if len(set(prefixes)) != len(prefixes):
        raise SpecError(f"section prefixes must be unique, got {prefixes}")
    return Spec(
        version=_require(sources_raw, "spec_version", "sources.toml"),
        sources=known,
        sections=sections,
        published=published,
    )


def _citation(entry: Mapping[str, Any]) -> str:
    """'Title (Authors, year), url' for a published source."""
    at = f"sources.toml published {entry.get('key', '?')}"
    title, authors = _require(entry, "title", at), _require(entry, "authors", at)
    year, url = _require(entry, "year", at, int), _require(entry, "url", at)
    return f"{title} ({authors}, {year}), {url}"


def load_spec(checked_by: Mapping[str, tuple[str, ...]] | None = None) -> Spec:
    """Read every section file shipped in `transformer_spec.spec` (sorted by file name).
    `checked_by` (clause id -> property ids, from the properties registry) fills
    `Clause.properties`."""
    root = resources.files("transformer_spec.spec")
    sources = tomllib.loads(root.joinpath("sources.toml").read_text(encoding="utf-8"))
    files = sorted(
        (p for p in root.iterdir() if p.name.endswith(".toml") and p.name != "sources.toml"),
        key=lambda p: p.name,
    )
    sections = [(p.name, tomllib.loads(p.read_text(encoding="utf-8"))) for p in files]
    spec = build_spec(sources, sections)
    if not checked_by:
        return spec
    linked = tuple(
        Section(
            s.name,
            s.title,
            s.prefix,
            tuple(replace(c, properties=checked_by.get(c.id, ())) for c in s.clauses),
            s.beyond_notes,
        )
        for s in spec.sections
    )
    return replace(spec, sections=linked)
