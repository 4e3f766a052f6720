"""Similar measures: passages like a given one (or a text) from other localities, by meaning and by its own words."""

from __future__ import annotations

import math
import re
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from kb import relevance, tokens
from kb.errors import NotFound, UsageError
from kb.fusion import fuse_scores
from kb.query import MAX_QUERY_CHARS, Filters, has_content, normalize_query
from kb.results import group_by_locality, highlight_terms, locality_key, passage

if TYPE_CHECKING:
    from kb.search import Searcher

# "More like this": the source's most distinctive words (tf·idf over the index) are searched by BM25 beside its
# vector, and the two fused as a search fuses them, the source's own passage (and locality) left out first. The
# bundled model puts every passage of these reports near every other one (their boilerplate dominates), so the
# vector alone answered the same generic passages whatever the source. With a judged passage as the source and the
# same query's judged passages elsewhere as the targets, recall@5 went 0.21 → 0.49 on the real reports and
# 0.53 → 0.65 on the seeds (12 / 20 / 40 / 60 words: 0.43 / 0.44 / 0.48 / 0.46 and 0.47 / 0.52 / 0.69 / 0.68;
# BENCHMARKS.md "Similar measures").
TERMS = 30
POOL_FACTOR = 4  # candidates of each retriever, in multiples of the search's DEPTH
# A count or an amount (五个, 万元, 余件) says nothing about what a measure is (the same figures on both dev sets)
_AMOUNT = re.compile(r"([零一二三四五六七八九十百千两几]+[万亿]?|[余多])?[个件次项名场份所条户期批类家]"
                     r"|[零一二三四五六七八九十百千两几]+[万亿]?元?|[万亿]?元")


def distinctive_words(searcher: Searcher, words: list[str], n: int = TERMS) -> list[str]:
    """The n Chinese words of a passage that say most about it: frequent in it, rare in the index."""
    tf = Counter(w for w in words if not w.isascii() and len(w) >= 2 and not _AMOUNT.fullmatch(w))
    weights = dict(zip(tf, searcher.reader.token_idf(list(tf)), strict=True))
    return sorted(tf, key=lambda w: (-weights[w] * math.log1p(tf[w]), w))[:n]


def similar_passages(
    searcher: Searcher,
    chunk_id: str | None = None,
    text: str | None = None,
    k: int = 10,
    per_locality: int = 1,
    include_same_locality: bool = False,
    filters: Filters | None = None,
) -> dict[str, Any]:
    """Passages nearest to a chunk (or free text) from other localities, a few per locality, within the filters
    (the same as a search's: locality, year, region, province, kind)."""
    from kb.search import DEPTH

    t0 = time.perf_counter()
    filters = filters or Filters()
    if (chunk_id is None) == (text is None):
        raise UsageError("give either a passage id or a text to compare with")
    reader = searcher.reader
    source_rec: dict[str, Any] | None = None
    if chunk_id is not None:
        source_rec = reader.chunk_by_id(chunk_id)
        if source_rec is None:
            raise NotFound(f"unknown passage id {chunk_id!r}; ids look like 000_6c25788e2e4f38cc:1a2b3c4d5e")
        qvec = reader.vector(source_rec["row"])
        query, words = source_rec["text"], reader.chunk_tokens([source_rec["row"]])[0]
    else:
        assert text is not None
        if len(text) > MAX_QUERY_CHARS * 4:
            raise UsageError(f"text is {len(text)} characters long; the limit is {MAX_QUERY_CHARS * 4}")
        query = normalize_query(text)
        if not has_content(query):
            raise UsageError("text is empty")
        qvec, words = searcher.embedder.embed_query(query), tokens.tokenize(query)
    pool = min(reader.n_chunks, DEPTH * POOL_FACTOR)
    terms = distinctive_words(searcher, words)
    signals = relevance.Signals(background=searcher.background(qvec))
    scope = searcher.allowed_rows(filters)
    if not reader.scope_empty(scope):
        d_rows, d_scores = reader.dense_search(qvec, pool, scope)
        signals.dense = dict(zip(d_rows.tolist(), d_scores.tolist(), strict=True))
        if terms:
            b_rows, b_scores = reader.bm25_search(terms, pool, scope)
            signals.bm25 = dict(zip(b_rows.tolist(), b_scores.tolist(), strict=True))
    exclude = locality_key(source_rec) if source_rec is not None and not include_same_locality else None
    # the source (and its locality, unless asked for) out before fusing: its own words score it, and its
    # report's passages, far above any other, and each retriever's scores are read as shares of its best
    records = {rec["row"]: rec for rec in reader.chunks(list({*signals.dense, *signals.bm25}))}
    keep = {r for r, rec in records.items() if not _excluded(rec, source_rec, exclude)}
    signals.dense = {r: v for r, v in signals.dense.items() if r in keep}
    signals.bm25 = {r: v for r, v in signals.bm25.items() if r in keep}
    ranked = fuse_scores(signals)
    picked = _pick([records[r] for r, _ in ranked], [s for _, s in ranked], per_locality, k)
    best = picked[0][1] if picked else 1.0
    shown = highlight_terms(terms, [])
    results = [passage(rec, score, best, shown) for rec, score in picked]
    return {
        "query": chunk_id if chunk_id is not None else text,
        "normalized_query": query,
        "similar_by": terms,
        "filters": filters.given(),
        "source_passage": passage(source_rec, 1.0, 1.0, []) if source_rec else None,
        "took_ms": round((time.perf_counter() - t0) * 1000, 1),
        "results": results,
        "by_locality": group_by_locality(
            [rec for rec, _ in picked], [r["score"] for r in results], k, results.__getitem__,
            # a card that shares some of the source's words matched by them too; else by meaning alone
            lambda members: "keyword" if any(results[i]["highlights"] for i in members) else "meaning",
        ),
    }


def _excluded(rec: dict[str, Any], source: dict[str, Any] | None, exclude: str | None) -> bool:
    """The source passage itself, or a passage of the locality left out."""
    return (source is not None and rec["chunk_id"] == source["chunk_id"]) or locality_key(rec) == exclude


def _pick(records: list[dict[str, Any]], scores: list[float], per_locality: int,
          k: int) -> list[tuple[dict[str, Any], float]]:
    """The best passages in rank order, per_locality at most each."""
    per: dict[str, int] = {}
    picked: list[tuple[dict[str, Any], float]] = []
    for rec, score in zip(records, scores, strict=True):
        loc = locality_key(rec)
        if per.get(loc, 0) >= per_locality:
            continue
        per[loc] = per.get(loc, 0) + 1
        picked.append((rec, float(score)))
        if len(picked) >= k:
            break
    return picked
