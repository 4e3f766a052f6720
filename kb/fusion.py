"""Fusion: the retrievers' evidence on one scale, summed into one ranking (search and similar passages)."""

from __future__ import annotations

import math
from collections.abc import Mapping

from kb import relevance

# The bundled model is the weaker retriever (dense alone recall@10 0.65 against BM25's 0.83 on the real
# reports): at 0.8 recall@10 0.887 → 0.906 there and the seeds' recall@5 0.938 → 0.979, no kind lower; at
# 0.6 English recall@10 falls to 0.75 (measured on both dev sets, BENCHMARKS.md).
DENSE_WEIGHT = 0.8
# The dense contrast is read as a share of the query's best one, but never of less than this: a query whose
# best passage stands only 2 sd above the background sample has no passage the model is sure of, and a
# share of that weak best gave a near miss the full dense weight. The best contrast follows how well dense
# alone ranks (correlation 0.59 with its reciprocal rank over the four labelled sets). Both dev sets: mixed
# queries' MRR 0.950 → 1.000, overall MRR 0.925 → 0.934, recall unchanged (BENCHMARKS.md, ninth session).
DENSE_REFERENCE = 2.5
# The glossary terms a query means (kb.termvec: 行政复议 and 行政处罚 for 被政府罚款了不服怎么办) are searched by BM25
# apart, and their share of that search's best score is added at this weight (times meaning_share). Both dev
# sets: recall@5 / @10 0.854 / 0.929 → 0.878 / 0.938, and no kind below BM25 alone at either (BENCHMARKS.md
# "Glossary terms by meaning").
MEANING_WEIGHT = 0.5
# A passage holding the query's Chinese verbatim (results.phrase_shares) gains its share at this weight, half of
# what the best BM25 passage gets: the fusion's MRR on mixed queries was below BM25 alone's (real reports 0.775
# against 1.000; the dense side put a near miss first). Real reports MRR 0.875 → 0.907, recall@5 0.900 → 0.912;
# seeds' MRR unchanged (0.969), recall@5 1.000 → 0.979 (BENCHMARKS.md "Round of 2026-12-02 (sixth session)").
PHRASE_WEIGHT = 0.5


def meaning_share(query_idf: Mapping[str, float], meant_idf: Mapping[str, float]) -> float:
    """How much of MEANING_WEIGHT the meant terms' search gets, from the idf of the query's Chinese tokens
    and of the meant terms' tokens: a meant token the query does not search stands for what the user did not
    say (行政复议 for 罚款不服) and counts fully; one it already searches restates it, and counts by the square
    root of its share of the query's idf — fully when it is the query's topic (人民调解 for 人民调解), little
    when it is one word of many (街道办事处 for "… service hall run by the subdistrict", which lifted every
    passage naming the 街道办事处 above the one about the hall). Both dev sets: English MRR 0.795 → 0.920, no
    kind below BM25 alone; a linear share lost recall@5 on a topic query (BENCHMARKS.md, ninth session)."""
    total = sum(meant_idf.values())
    if total <= 0:
        return 1.0
    novel = sum(w for t, w in meant_idf.items() if t not in query_idf) / total
    restated = sum(query_idf[t] for t in meant_idf if t in query_idf) / (sum(query_idf.values()) or 1.0)
    return novel + (1.0 - novel) * math.sqrt(restated)


def fuse_scores(signals: relevance.Signals) -> list[tuple[int, float]]:
    """Score-aware fusion, best first: each retriever's evidence on one scale, summed — BM25 as a share of
    the query's best BM25 score, dense as the contrast with the background sample (kb.relevance) as a share
    of the best contrast (or of DENSE_REFERENCE), at DENSE_WEIGHT; the meant terms' BM25 and the verbatim
    phrase share at their weights. Unlike reciprocal ranks it keeps how far ahead a retriever's first passages
    are (real reports: recall@5 0.692 → 0.729, MRR 0.652 → 0.749; BENCHMARKS.md)."""
    top_bm = signals.top_bm25 or 1.0
    zs = {r: max(0.0, z) for r in signals.dense if (z := signals.z(r)) is not None}
    top_z = max(max(zs.values(), default=0.0), DENSE_REFERENCE)
    fused = {r: b / top_bm for r, b in signals.bm25.items()}
    for r, z in zs.items():
        fused[r] = fused.get(r, 0.0) + DENSE_WEIGHT * z / top_z
    top_m = max(signals.meaning.values(), default=0.0) or 1.0
    weight = MEANING_WEIGHT * signals.meaning_share
    for r, m in signals.meaning.items():
        fused[r] = fused.get(r, 0.0) + weight * m / top_m
    for r, share in signals.phrase.items():
        fused[r] = fused.get(r, 0.0) + PHRASE_WEIGHT * share
    for r in signals.dense:
        fused.setdefault(r, 0.0)  # no background (a tiny index): still ranked, after the scored rows
    return sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))
