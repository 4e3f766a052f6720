"""Query input: normalization like the corpus, limits, and validation of k, mode and filters."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from kb.clean import lexicon
from kb.errors import UsageError
from kb.model import KINDS
from kb.store import IndexReader

MAX_QUERY_CHARS = 500
MAX_K = 100
MODES = ("hybrid", "bm25", "dense")


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def normalize_query(q: str) -> str:
    """Fold a query like the corpus: full-width forms, traditional → simplified, case, spaces, controls."""
    q = _CONTROL.sub(" ", q)
    q = unicodedata.normalize("NFKC", q)
    q = lexicon.to_simplified(q).lower()
    return re.sub(r"\s+", " ", q).strip()


def has_content(q: str) -> bool:
    """Whether a normalized query has anything to search for (a letter, digit or CJK character)."""
    return any(ch.isalnum() for ch in q)


@dataclass(frozen=True)
class Filters:
    """Search filters; None means 'any'."""

    locality: str | None = None
    year: int | None = None
    region: str | None = None
    kind: str | None = None
    province: str | None = None

    def active(self) -> bool:
        return any(v is not None for v in (self.locality, self.year, self.region, self.kind, self.province))

    def given(self) -> dict[str, Any]:
        """The filters set, by name (as an answer reports them)."""
        return {name: v for name, v in self.__dict__.items() if v is not None}


def parse_k(value: Any, default: int = 10) -> int:
    """k from a CLI or URL value: a whole number 1..MAX_K (full-width digits accepted)."""
    if value is None or value == "":
        return default
    text = unicodedata.normalize("NFKC", str(value)).strip()
    if not re.fullmatch(r"[+]?\d{1,18}", text):
        raise UsageError(f"k must be a whole number from 1 to {MAX_K}; got {value!r}")
    k = int(text)
    if not 1 <= k <= MAX_K:
        raise UsageError(f"k must be from 1 to {MAX_K}; got {k}")
    return k


def parse_filters(
    reader: IndexReader,
    locality: str | None = None,
    year: Any = None,
    region: str | None = None,
    kind: str | None = None,
    province: str | None = None,
) -> Filters:
    """Validate filter values against the index; errors name the bad value and the valid ones."""
    docs = reader.documents()
    loc = _known_substring("locality", locality, {d["locality"] for d in docs if d.get("locality")})
    yr: int | None = None
    if _clean_filter(year) is not None:
        text = unicodedata.normalize("NFKC", str(year)).strip()
        years = sorted({d["year"] for d in docs if d.get("year")})
        if not re.fullmatch(r"\d{4}", text):
            raise UsageError(f"year must be a four-digit year; got {year!r} (indexed: {_years(years)})")
        yr = int(text)
        if yr not in years:
            raise UsageError(f"no report for year {yr}; indexed years: {_years(years)}")
    # a region is any level of the chain: 广东省, 东莞市, 白云区 … (a district's own report included)
    regions = {d[f] for d in docs for f in ("region", "province") if d.get(f)}
    reg = _known_substring("region", region, regions | {part for d in docs for part in d.get("chain") or []})
    kd = _clean_filter(kind)
    if kd is not None and kd not in KINDS:
        raise UsageError(f"unknown kind {kind!r}; valid kinds: {', '.join(KINDS)}")
    prov = _known_substring("province", province, {d["province"] for d in docs if d.get("province")})
    return Filters(loc, yr, reg, kd, prov)


def _known_substring(name: str, value: str | None, known: set[str]) -> str | None:
    """A filter value normalized like the corpus, which must be part of one of the `known` values."""
    v = _clean_filter(value)
    if v is None:
        return None
    v = normalize_query(v)
    if not any(v in k for k in known):
        raise UsageError(f"unknown {name} {value!r}; known: {', '.join(sorted(known)) or '(none)'}")
    return str(v)


def _years(years: list[int]) -> str:
    return ", ".join(map(str, years)) or "(none)"


def _clean_filter(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, str):
        v = v.strip()
        return v or None
    return v


def parse_mode(value: Any, default: str = "hybrid") -> str:
    """A search mode: one of MODES (an unknown one is an error, never a silent hybrid search)."""
    if value is None or value == "":
        return default
    if value not in MODES:
        raise UsageError(f"unknown search mode {value!r}; valid modes: {', '.join(MODES)}")
    return str(value)
