"""Domain glossary (official term ↔ colloquial Chinese ↔ English) and a query expander built on it."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

DEFAULT_PATH = Path(__file__).parent / "data" / "glossary.tsv"
HEADER = ("term", "zh_variants", "en", "related")

_WORD = re.compile(r"[a-z0-9]+(?:['’]s\b)?")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


@dataclass(frozen=True)
class Entry:
    """One glossary row: an official term, its plain-language variants, English phrasings, related terms."""

    term: str
    zh_variants: tuple[str, ...]
    en: tuple[str, ...]
    related: tuple[str, ...]


@dataclass(frozen=True)
class _Span:
    start: int
    end: int
    terms: tuple[str, ...]


def _stem(word: str) -> str:
    """Light singularizer applied identically to glossary phrases and queries ("petitions" → "petition")."""
    if word.endswith(("'s", "’s")):
        word = word[:-2]
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith("sses"):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _words(text: str) -> list[re.Match[str]]:
    return list(_WORD.finditer(text.translate(_ASCII_LOWER)))


def _phrase_key(phrase: str) -> tuple[str, ...]:
    return tuple(_stem(m.group()) for m in _words(phrase))


def _zh_keys(text: str) -> set[str]:
    lowered = text.translate(_ASCII_LOWER)
    return {lowered, unicodedata.normalize("NFKC", lowered)}


def _select(spans: list[_Span], length: int) -> list[_Span]:
    """Greedy longest-first choice of non-overlapping spans, returned in query order."""
    taken = [False] * length
    chosen: list[_Span] = []
    for span in sorted(spans, key=lambda s: (s.start - s.end, s.start)):
        if not any(taken[span.start : span.end]):
            taken[span.start : span.end] = [True] * (span.end - span.start)
            chosen.append(span)
    return sorted(chosen, key=lambda s: s.start)


class Glossary:
    """An immutable set of entries with indexes for expanding search queries into official terms."""

    def __init__(self, entries: Iterable[Entry]) -> None:
        self._entries = tuple(entries)
        self._by_term: dict[str, Entry] = {}
        self._zh: dict[str, tuple[str, ...]] = {}
        self._en: dict[tuple[str, ...], tuple[str, ...]] = {}
        for entry in self._entries:
            if entry.term in self._by_term:
                raise ValueError(f"duplicate glossary term {entry.term!r}")
            self._by_term[entry.term] = entry
            for text in (entry.term, *entry.zh_variants):
                for key in _zh_keys(text):
                    self._add(self._zh, key, entry.term)
            for phrase in entry.en:
                words = _phrase_key(phrase)
                if words:
                    self._add(self._en, words, entry.term)
        self._zh_lengths = sorted({len(k) for k in self._zh}, reverse=True)
        self._zh_first = frozenset(k[0] for k in self._zh)
        self._en_max = max((len(k) for k in self._en), default=0)

    @staticmethod
    def _add(index: dict[Any, tuple[str, ...]], key: Any, term: str) -> None:
        terms = index.get(key, ())
        if term not in terms:
            index[key] = (*terms, term)

    @property
    def entries(self) -> tuple[Entry, ...]:
        return self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, term: str) -> Entry | None:
        """The entry whose official term is exactly `term`, if any."""
        return self._by_term.get(term)

    def expand(self, query: str) -> list[str]:
        """Official terms the (already normalized) query refers to, then their related terms.

        Terms already present in the query and repeats are left out; the order is that of the
        matches in the query, so it is stable for a given query and glossary.
        """
        direct, related = self.expand_parts(query)
        return direct + related

    def expand_parts(self, query: str) -> tuple[list[str], list[str]]:
        """expand() in two parts: the terms the query itself names, and their related terms."""
        spans = self._zh_spans(query) + self._en_spans(query)
        matched = [t for span in _select(spans, len(query)) for t in span.terms]
        related = [r for t in matched for r in self._by_term[t].related]
        seen: set[str] = set()
        parts: tuple[list[str], list[str]] = ([], [])
        for part, terms in zip(parts, (matched, related), strict=True):
            for term in terms:
                if term not in seen and not any(k in query for k in _zh_keys(term)):
                    seen.add(term)
                    part.append(term)
        return parts

    def uncovered(self, query: str) -> str:
        """The query with the English phrases the glossary knows blanked out: what is left for the dictionary
        (kb.translate) to read word by word."""
        out = list(query)
        for span in _select(self._en_spans(query), len(query)):
            out[span.start : span.end] = " " * (span.end - span.start)
        return "".join(out)

    def read_english(self, query: str, read_rest: Callable[[str], str]) -> str:
        """The query with each English phrase the glossary knows as its first term, and the text between them
        as `read_rest` reads it (kb.translate.reading: the dictionary's words; it is given blank text too)."""
        pieces: list[str] = []
        at = 0
        for span in _select(self._en_spans(query), len(query)):
            pieces += [read_rest(query[at : span.start]), span.terms[0]]
            at = span.end
        pieces.append(read_rest(query[at:]))
        return " ".join(p for p in pieces if p.strip())

    def _zh_spans(self, query: str) -> list[_Span]:
        text = query.translate(_ASCII_LOWER)
        spans: list[_Span] = []
        for i, char in enumerate(text):
            if char not in self._zh_first:
                continue
            for size in self._zh_lengths:
                terms = self._zh.get(text[i : i + size]) if i + size <= len(text) else None
                if terms:
                    spans.append(_Span(i, i + size, terms))
        return spans

    def _en_spans(self, query: str) -> list[_Span]:
        words = _words(query)
        stems = [_stem(m.group()) for m in words]
        spans: list[_Span] = []
        for i in range(len(words)):
            for n in range(min(self._en_max, len(words) - i), 0, -1):
                terms = self._en.get(tuple(stems[i : i + n]))
                if terms:
                    spans.append(_Span(words[i].start(), words[i + n - 1].end(), terms))
        return spans


def _cells(cell: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in cell.split("|") if part.strip())


def _parse_row(line: str, where: str) -> Entry:
    fields = line.split("\t")
    if len(fields) == 3:
        fields.append("")
    if len(fields) != len(HEADER):
        raise ValueError(f"{where}: expected {len(HEADER)} tab-separated columns, got {len(fields)}")
    term, variants, en, related = (f.strip() for f in fields)
    if not term or "|" in term:
        raise ValueError(f"{where}: the term column must hold exactly one term")
    english = tuple(p.lower() for p in _cells(en))
    if not english:
        raise ValueError(f"{where}: no English phrasing for {term!r}")
    return Entry(term, _cells(variants), english, _cells(related))


def _read(path: Path) -> Glossary:
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    if not lines or tuple(c.strip() for c in lines[0].split("\t")) != HEADER:
        raise ValueError(f"{path}:1: header must be {' / '.join(HEADER)} separated by tabs")
    entries: list[Entry] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip() or line.startswith("#"):
            continue
        entry = _parse_row(line, f"{path}:{number}")
        if entry.term in seen:
            raise ValueError(
                f"{path}:{number}: term {entry.term!r} already defined on line {seen[entry.term]}"
            )
        seen[entry.term] = number
        entries.append(entry)
    return Glossary(entries)


@lru_cache(maxsize=1)
def _default_glossary() -> Glossary:
    return _read(DEFAULT_PATH)


def load_glossary(path: Path | None = None) -> Glossary:
    """Load a glossary TSV; without a path, the packaged one (cached). Malformed rows raise ValueError."""
    if path is None:
        return _default_glossary()
    return _read(Path(path))


def register_domain_words() -> None:
    """Make every glossary term a whole BM25 token, for the corpus and the queries alike (only in
    kb.tokens' own tokenizer: cleaning's dictionary stays as jieba ships it)."""
    from kb import tokens

    tokens.add_words(e.term for e in load_glossary().entries)
