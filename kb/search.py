"""Search: query normalization and expansion, dense + BM25 fusion, filters, locality grouping, highlights."""

from __future__ import annotations

import bisect
import re
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from kb import glossary, tokens
from kb.clean import lexicon
from kb.embed import Embedder
from kb.errors import NotFound, UsageError
from kb.model import KINDS
from kb.store import IndexReader, worker_pool

MAX_QUERY_CHARS = 500
MAX_K = 100
# Reciprocal-rank fusion constant; 30 rather than the customary 60 keeps a strong first rank from either
# retriever near the top (measured on the dev queries, see BENCHMARKS.md "fusion").
RRF_K = 30
DEPTH = 60  # candidates taken from each retriever before fusion
W_DENSE = 1.0
W_BM25 = 1.0
PER_LOCALITY = 3

# One retriever's answer: rows best first, their scores, and the chunk record of each row.
Hits = tuple[np.ndarray, np.ndarray, dict[int, dict[str, Any]]]


def _ranked(hits: Hits) -> tuple[list[tuple[int, float]], dict[int, dict[str, Any]]]:
    rows, scores, records = hits
    return [(int(r), float(s)) for r, s in zip(rows, scores, strict=True)], records


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

    def active(self) -> bool:
        return any(v is not None for v in (self.locality, self.year, self.region, self.kind))


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
) -> Filters:
    """Validate filter values against the index; errors name the bad value and the valid ones."""
    docs = reader.documents()
    loc = _clean_filter(locality)
    if loc is not None:
        loc = normalize_query(loc)
        known = sorted({d["locality"] for d in docs if d.get("locality")})
        if not any(loc in k for k in known):
            raise UsageError(f"unknown locality {locality!r}; known: {', '.join(known) or '(none)'}")
    yr: int | None = None
    if _clean_filter(year) is not None:
        text = unicodedata.normalize("NFKC", str(year)).strip()
        years = sorted({d["year"] for d in docs if d.get("year")})
        if not re.fullmatch(r"\d{4}", text):
            raise UsageError(f"year must be a four-digit year; got {year!r} (indexed: {_years(years)})")
        yr = int(text)
        if yr not in years:
            raise UsageError(f"no report for year {yr}; indexed years: {_years(years)}")
    reg = _clean_filter(region)
    if reg is not None:
        reg = normalize_query(reg)
        known = sorted({d[f] for d in docs for f in ("region", "province") if d.get(f)})
        if not any(reg in k for k in known):
            raise UsageError(f"unknown region {region!r}; known: {', '.join(known) or '(none)'}")
    kd = _clean_filter(kind)
    if kd is not None and kd not in KINDS:
        raise UsageError(f"unknown kind {kind!r}; valid kinds: {', '.join(KINDS)}")
    return Filters(loc, yr, reg, kd)


def _years(years: list[int]) -> str:
    return ", ".join(map(str, years)) or "(none)"


def _clean_filter(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, str):
        v = v.strip()
        return v or None
    return v


@dataclass(frozen=True)
class Mention:
    """What it takes for a passage to mention a query's topic: a glossary term the query names, or most
    of the query's own words (English words only count where they occur in the text)."""

    words: list[str]
    terms: list[str]

    def found_in(self, text: str) -> bool:
        low = text.lower()
        if any(t in low for t in self.terms):
            return True
        cjk = [w for w in self.words if not w.isascii() and len(w) >= 2]
        if not cjk:
            return False
        return sum(w in low for w in cjk) * 2 >= len(cjk)


class Searcher:
    """Answers searches and similar-passage questions over one loaded index with one embedder."""

    def __init__(self, reader: IndexReader, embedder: Embedder) -> None:
        if embedder.model_id != reader.model_id:
            raise UsageError(
                f"the index was built with {reader.model_id!r} but the configured model is {embedder.model_id!r};"
                " rebuild with `scripts/rebuild_index`"
            )
        self.reader = reader
        self.embedder = embedder
        self.glossary = glossary.load_glossary()
        glossary.register_domain_words()
        self._localities = self._scope_localities(None)
        self._term_cache: dict[str, list[str]] = {}

    # -- search

    def search(
        self,
        query: str,
        k: int = 10,
        filters: Filters | None = None,
        mode: str = "hybrid",
        per_locality: int = PER_LOCALITY,
    ) -> dict[str, Any]:
        """Ranked passages for a query, grouped by locality (at most `per_locality` passages each), in the
        CLI/API JSON shape."""
        t0 = time.perf_counter()
        if not isinstance(query, str):
            raise UsageError("query must be text")
        if len(query) > MAX_QUERY_CHARS:
            raise UsageError(f"query is {len(query)} characters long; the limit is {MAX_QUERY_CHARS}")
        norm = normalize_query(query)
        if not has_content(norm):
            raise UsageError("query is empty: type a topic such as 行政复议 or 'legal aid'")
        filters = filters or Filters()
        rows = self._allowed_rows(filters)
        direct, related = self.glossary.expand_parts(norm)
        expansions = direct + related
        q_tokens = tokens.tokenize(norm)
        x_tokens = [t for e in expansions for t in self._term_tokens(e)]
        ranked, by_row = self._rank(norm, q_tokens + x_tokens, rows, mode)
        # highlight whole query words, not the sub-words search mode adds for recall (行政 of 行政复议)
        q_words = tokens.words(norm)
        terms = highlight_terms(q_words, expansions)
        # result objects are built only for what is returned
        records = [by_row[r] for r, _ in ranked]
        best = (ranked[0][1] if ranked else 1.0) or 1.0
        made: dict[int, dict[str, Any]] = {}

        def result(i: int) -> dict[str, Any]:
            if i not in made:
                made[i] = self._result(records[i], ranked[i][1], best, terms)
            return made[i]

        results = [result(i) for i in range(min(k, len(ranked)))]
        grouped = self._group(records, ranked, Mention(q_words, direct), per_locality, result)
        matched = {g["locality"] for g in grouped}
        scope = self._scope_localities(filters) if filters.active() else self._localities
        return {
            "query": query,
            "normalized_query": norm,
            "expansions": expansions,
            "filters": {k_: v for k_, v in filters.__dict__.items() if v is not None},
            "took_ms": round((time.perf_counter() - t0) * 1000, 1),
            "results": results,
            "by_locality": grouped,
            "unmatched_localities": _without(scope, matched),
        }

    def _term_tokens(self, term: str) -> list[str]:
        """Tokens of a glossary term, cut once per Searcher (the glossary is fixed for its lifetime)."""
        got = self._term_cache.get(term)
        if got is None:
            got = self._term_cache[term] = tokens.tokenize(term)
        return got

    def _allowed_rows(self, filters: Filters) -> np.ndarray | None:
        if not filters.active():
            return None
        rows = self.reader.rows_where(
            locality=filters.locality, year=filters.year, region=filters.region, kind=filters.kind
        )
        return rows if rows is not None else None

    def _rank(
        self, norm: str, bm25_tokens: list[str], rows: np.ndarray | None, mode: str
    ) -> tuple[list[tuple[int, float]], dict[int, dict[str, Any]]]:
        """(row, fused score) best first, and the chunk record of every ranked row."""
        if rows is not None and len(rows) == 0:
            return [], {}
        if mode == "bm25":
            return _ranked(self._bm25_hits(bm25_tokens, rows))
        # glossary terms go to BM25 only: added to the embedded query they pull it off the user's topic
        # (recall@5 0.96 → 0.78 with three of them, BENCHMARKS.md)
        qvec = self.embedder.embed_query(norm)
        if mode == "dense":
            return _ranked(self._dense_hits(qvec, rows))
        # BM25 (and its records) in a worker thread while FAISS searches in this one: both release the GIL,
        # as SQLite does, and once the query is embedded both cores are free. (Started before the embedding,
        # BM25 only slowed the model, which uses both cores.) If the workers are busy with other requests and
        # have not started it, this thread runs it rather than wait in their queue.
        bm25 = worker_pool().submit(self._bm25_hits, bm25_tokens, rows)
        d_rows, _, d_recs = self._dense_hits(qvec, rows)
        b_rows, _, b_recs = self._bm25_hits(bm25_tokens, rows) if bm25.cancel() else bm25.result()
        fused: dict[int, float] = {}
        for ranking, weight in ((d_rows, W_DENSE), (b_rows, W_BM25)):
            for rank, r in enumerate(ranking.tolist()):
                fused[r] = fused.get(r, 0.0) + weight / (RRF_K + rank + 1)
        return sorted(fused.items(), key=lambda kv: -kv[1]), {**b_recs, **d_recs}

    def _bm25_hits(self, bm25_tokens: list[str], rows: np.ndarray | None) -> Hits:
        found, scores = self.reader.bm25_search(bm25_tokens, DEPTH, rows)
        return found, scores, self._records(found)

    def _dense_hits(self, qvec: np.ndarray, rows: np.ndarray | None) -> Hits:
        found, scores = self.reader.dense_search(qvec, DEPTH, rows)
        return found, scores, self._records(found)

    def _records(self, rows: np.ndarray) -> dict[int, dict[str, Any]]:
        return {rec["row"]: rec for rec in self.reader.chunks(rows)} if len(rows) else {}

    def _result(self, rec: dict[str, Any], score: float, best: float, terms: Sequence[str]) -> dict[str, Any]:
        """One passage in the JSON shape; `terms` (highlight_terms) are highlighted."""
        return {
            "chunk_id": rec["chunk_id"],
            "doc_id": rec["doc_id"],
            "source": rec["source"],
            "locality": rec.get("locality"),
            "region": rec.get("region"),
            "province": rec.get("province"),
            "year": rec.get("year"),
            "title": rec.get("title"),
            "section_path": rec["section_path"],
            "kind": rec["kind"],
            "text": rec["text"],
            "start": rec["start"],
            "end": rec["end"],
            "score": round(float(score), 6),
            "relative_score": round(float(score) / best, 4) if best else 0.0,
            "highlights": spans_of(rec["text"], terms),
        }

    def _group(
        self,
        records: list[dict[str, Any]],
        ranked: list[tuple[int, float]],
        mention: Mention,
        per_locality: int,
        result: Callable[[int], dict[str, Any]],
    ) -> list[dict[str, Any]]:
        """Localities best first, each with its best passages; a locality is listed only when one of its
        passages mentions the topic (dense neighbours alone exist for any query)."""
        groups: dict[str, dict[str, Any]] = {}
        picked: dict[str, list[int]] = {}
        for i, (rec, (_, score)) in enumerate(zip(records, ranked, strict=True)):
            loc = rec.get("locality") or f"(未知地区) {rec['source']}"
            g = groups.get(loc)
            if g is None:
                g = groups[loc] = {
                    "locality": loc,
                    "region": rec.get("region"),
                    "province": rec.get("province"),
                    "years": [],
                    "score": round(float(score), 6),
                    "keyword_match": False,
                    "results": [],
                }
                picked[loc] = []
            if rec.get("year") and rec["year"] not in g["years"]:
                g["years"].append(rec["year"])
            g["keyword_match"] = g["keyword_match"] or mention.found_in(rec["text"])
            if len(picked[loc]) < per_locality:
                picked[loc].append(i)
        kept = [g for g in groups.values() if g["keyword_match"]]
        for g in kept:
            g["results"] = [result(i) for i in picked[g["locality"]]]
        return kept

    def _scope_localities(self, filters: Filters | None) -> list[str]:
        docs = self.reader.documents()
        if filters is not None and filters.active():
            rows = self._allowed_rows(filters)
            doc_ids = {c["doc_id"] for c in self.reader.chunks(rows)} if rows is not None and len(rows) else set()
            docs = [d for d in docs if d["doc_id"] in doc_ids]
        return sorted({d.get("locality") or f"(未知地区) {d['source']}" for d in docs})

    # -- similar measures

    def similar(
        self,
        chunk_id: str | None = None,
        text: str | None = None,
        k: int = 10,
        per_locality: int = 1,
        include_same_locality: bool = False,
    ) -> dict[str, Any]:
        """Passages nearest to a chunk (or free text) from other localities, a few per locality."""
        t0 = time.perf_counter()
        if (chunk_id is None) == (text is None):
            raise UsageError("give either a passage id or a text to compare with")
        exclude_loc: str | None = None
        if chunk_id is not None:
            rec = self.reader.chunk_by_id(chunk_id)
            if rec is None:
                raise NotFound(f"unknown passage id {chunk_id!r}; ids look like 000_6c25788e2e4f38cc:1a2b3c4d5e")
            qvec = self.reader.vector(rec["row"])
            query, exclude_loc, source_rec = rec["text"], rec.get("locality"), rec
        else:
            assert text is not None
            if len(text) > MAX_QUERY_CHARS * 4:
                raise UsageError(f"text is {len(text)} characters long; the limit is {MAX_QUERY_CHARS * 4}")
            query = normalize_query(text)
            if not has_content(query):
                raise UsageError("text is empty")
            qvec = self.embedder.embed_query(query)
            source_rec = None
        rows, scores = self.reader.dense_search(qvec, min(self.reader.n_chunks, DEPTH * 4))
        records = self.reader.chunks(rows)
        per: dict[str, int] = {}
        picked: list[tuple[dict[str, Any], float]] = []
        for rec, score in zip(records, scores, strict=True):
            loc = rec.get("locality") or rec["source"]
            if source_rec is not None and rec["chunk_id"] == source_rec["chunk_id"]:
                continue
            if not include_same_locality and exclude_loc is not None and loc == exclude_loc:
                continue
            if per.get(loc, 0) >= per_locality:
                continue
            per[loc] = per.get(loc, 0) + 1
            picked.append((rec, float(score)))
            if len(picked) >= k:
                break
        best = picked[0][1] if picked else 1.0
        q_tokens = tokens.tokenize(normalize_query(query))[:40]
        terms = highlight_terms(q_tokens, [])
        results = [self._result(rec, score, best, terms) for rec, score in picked]
        return {
            "query": chunk_id if chunk_id is not None else text,
            "normalized_query": query,
            "source_passage": self._result(source_rec, 1.0, 1.0, []) if source_rec else None,
            "took_ms": round((time.perf_counter() - t0) * 1000, 1),
            "results": results,
            "by_locality": _group_results(results),
        }


def _without(names: list[str], drop: set[str]) -> list[str]:
    """`names` (sorted, distinct) less the few in `drop`: bisection per dropped name instead of a membership
    test per name, which took ~0.9 ms per search over 5,000 localities."""
    cut = sorted(i for i in (bisect.bisect_left(names, d) for d in drop) if i < len(names) and names[i] in drop)
    out: list[str] = []
    prev = 0
    for i in cut:
        out.extend(names[prev:i])
        prev = i + 1
    out.extend(names[prev:])
    return out


def _group_results(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[str, dict[str, Any]] = {}
    for r in results:
        loc = r.get("locality") or r["source"]
        g = groups.setdefault(
            loc,
            {"locality": loc, "region": r.get("region"), "province": r.get("province"), "years": [],
             "score": r["score"], "results": []},
        )
        if r.get("year") and r["year"] not in g["years"]:
            g["years"].append(r["year"])
        g["results"].append(r)
    return list(groups.values())


def highlight_terms(q_tokens: Sequence[str], expansions: Sequence[str]) -> list[str]:
    """What a result highlights (spans_of), longest first: query words (single ASCII letters and digits left
    out) and glossary terms."""
    terms = {t for t in q_tokens if (len(t) >= 2 or not t.isascii()) and t.strip()}
    terms |= {e for e in expansions if e and not (len(e) == 1 and e.isascii())}
    return sorted(terms, key=lambda t: (-len(t), t))


def spans_of(text: str, terms: Sequence[str]) -> list[list[int]]:
    """Merged [start, end] offsets of every occurrence of `terms` in `text` (case-insensitive)."""
    spans: list[tuple[int, int]] = []
    lower = text.lower()
    for term in terms:
        start = 0
        while True:
            i = lower.find(term, start)
            if i < 0:
                break
            spans.append((i, i + len(term)))
            start = i + len(term)
    spans.sort()
    merged: list[list[int]] = []
    for s, e in spans:
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    return merged
