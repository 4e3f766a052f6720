"""Plain data types passed between pipeline stages (ingest → clean → meta → segment → chunk → index → search)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

KINDS = ("preamble", "achievements", "problems", "plans")
LEVELS = ("town", "township", "subdistrict", "district", "county", "city", "unknown")


@dataclass
class Repair:
    """One change made by cleaning; start/end locate `after` in the cleaned text."""

    kind: str
    start: int
    end: int
    before: str
    after: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Section:
    """A node of a report's section tree; start/end are offsets into the cleaned text."""

    heading: str
    level: int
    kind: str
    start: int
    end: int
    children: list[Section] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "heading": self.heading,
            "level": self.level,
            "kind": self.kind,
            "start": self.start,
            "end": self.end,
            "children": [c.to_dict() for c in self.children],
        }


@dataclass
class Report:
    """A cleaned report with its inferred metadata."""

    doc_id: str
    source: str
    sha256: str
    encoding: str
    raw_text: str
    text: str
    title: str
    headline: str | None
    locality: str | None
    level: str
    region: str | None
    province: str | None
    year: int | None
    published: str | None
    repairs: list[Repair] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    # what the official table of divisions says about `locality` (kb.gazetteer): verified (one division),
    # ambiguous (a real name in several places the text does not tell apart), unverified (not in the
    # table), unnamed (the report never names itself)
    locality_status: str = "unnamed"
    official_name: str | None = None
    division_code: str | None = None
    chain: list[str] = field(default_factory=list)

    def repair_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self.repairs:
            counts[r.kind] = counts.get(r.kind, 0) + 1
        return dict(sorted(counts.items()))

    def summary(self) -> dict[str, Any]:
        """The `kb docs --json` record."""
        return {
            "doc_id": self.doc_id,
            "source": self.source,
            "title": self.title,
            "locality": self.locality,
            "level": self.level,
            "region": self.region,
            "province": self.province,
            "year": self.year,
            "published": self.published,
            "repairs": self.repair_counts(),
            "locality_status": self.locality_status,
            "official_name": self.official_name,
            "division_code": self.division_code,
            "chain": list(self.chain),
        }


@dataclass
class Chunk:
    """A passage to embed and index; start/end are offsets into its report's cleaned text."""

    chunk_id: str
    doc_id: str
    ordinal: int
    section_path: list[str]
    kind: str
    start: int
    end: int
    text: str

    def embed_text(self) -> str:
        """What the embedder and the keyword index see: the breadcrumb gives a passage its topic."""
        if not self.section_path:
            return self.text
        return " › ".join(self.section_path) + "\n" + self.text
