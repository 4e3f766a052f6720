"""Search: glossary expansion, dense + BM25 retrieval side by side, fusion, similar passages."""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from kb import glossary, relevance, termvec, tokens, translate
from kb.embed import Embedder
from kb.errors import UsageError
from kb.fusion import fuse_scores, meaning_share
from kb.query import (  # noqa: F401  (re-exported: the CLI, web and tests import them from here)
    MAX_K,
    MAX_QUERY_CHARS,
    MODES,
    Filters,
    has_content,
    normalize_query,
    parse_filters,
    parse_k,
    parse_mode,
)
from kb.results import (  # noqa: F401
    Mention,
    _without,
    group_by_locality,
    highlight_terms,
    locality_key,
    passage,
    phrase_shares,
    spans_of,
)
from kb.similar import similar_passages
from kb.store import IndexReader
from kb.store.bm25 import idf
from kb.threads import worker_pool

DEPTH = 60  # candidates taken from each retriever before fusion
# The glossary's terms count half as much as the query's own words in BM25: a term added for an English or
# plain-language phrase ("township" → 乡镇, 街道办事处) is a guess at the topic, the user's own 综合行政执法 is
# the topic. Real reports: recall@5/@10 0.779/0.869 → 0.792/0.894, localities listed 7.9 → 6.3; seeds' MRR
# 0.823 → 0.969 (BENCHMARKS.md "Search quality on real reports").
EXPANSION_WEIGHT = 0.5
BM25_POOL = 2 * DEPTH  # each of the two BM25 searches, before their scores are added up
_NONE = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))
PER_LOCALITY = 3
# A card shows a locality's further passages only when they score at least half its best one: on both dev
# sets this halves the passages a card shows (2.4 → 1.4 on the real reports) and drops no judged passage.
CARD_SHARE = 0.5

# One retriever's answer: rows best first, their scores, and the chunk record of each row.
Hits = tuple[np.ndarray, np.ndarray, dict[int, dict[str, Any]]]


def _ranked(hits: Hits) -> tuple[list[tuple[int, float]], dict[int, dict[str, Any]]]:
    rows, scores, records = hits
    return [(int(r), float(s)) for r, s in zip(rows, scores, strict=True)], records


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
        # the fixed sample a query's dense similarities are contrasted with (kb.relevance)
        n = reader.n_chunks
        picks: list[int] = np.linspace(0, n - 1, min(n, relevance.BACKGROUND_ROWS)).astype(int).tolist() if n else []
        self._background_sample = relevance.background_sample(list(reader.vectors(picks)) if picks else [])
        self._term_cache: dict[str, list[str]] = {}
        # the dictionary's English index (0.9 s, kb.translate) is read in a worker, not by the first English query
        worker_pool().submit(translate.english_units, "")
        # None for an index whose build left no phrasing vectors of this glossary and model (built before them)
        self._meanings = termvec.TermMatcher.load(getattr(reader, "root", None), self.glossary, embedder.model_id)

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
        if len(norm) > MAX_QUERY_CHARS:  # NFKC expands some characters (one U+FDFA is 18)
            raise UsageError(
                f"query is {len(norm)} characters long once normalized (NFKC expands some characters);"
                f" the limit is {MAX_QUERY_CHARS}"
            )
        if not has_content(norm):
            raise UsageError("query is empty: type a topic such as 行政复议 or 'legal aid'")
        mode = parse_mode(mode)
        filters = filters or Filters()
        rows = self.allowed_rows(filters)
        direct, related = self.glossary.expand_parts(norm)
        expansions = direct + related
        q_tokens = [t for t in tokens.tokenize(norm) if not translate.is_function_word(t)]
        if norm.isascii():
            # the terms an English query's phrases name are its own words in the reports' language, not guesses at
            # its topic: at full weight, their related terms and the dictionary's words at EXPANSION_WEIGHT (English
            # queries of the real set and set D: localities listed 7.5 / 12.0 → 5.0 / 7.6, recall unchanged)
            q_tokens += [t for e in direct for t in self._term_tokens(e) if t not in q_tokens]
        x_tokens = [t for e in expansions for t in self._term_tokens(e)]  # _bm25_hits drops those also in q_tokens
        # English words the glossary has no phrase for, as the Chinese words a dictionary gives them (kb.translate)
        translated = translate.translate(self.glossary.uncovered(norm), self._how_common)
        x_tokens += [t for w in translated.words for t in self._term_tokens(w) if t not in x_tokens]
        ranked, by_row, signals = self._rank(norm, (q_tokens, x_tokens), rows, mode, translated.absent)
        # highlight whole query words, not the sub-words search mode adds for recall (行政 of 行政复议)
        q_words = tokens.words(norm)
        # a term both spelled and meant is searched twice (it counts twice) but shown as what the query spelled
        by_meaning = [t for t in signals.meaning_terms if t not in expansions]
        expansions = expansions + by_meaning
        terms = highlight_terms(q_words, expansions + translated.words)  # a set: repeats fall away
        # result objects are built only for what is returned
        records = [by_row[r] for r, _ in ranked]
        best = (ranked[0][1] if ranked else 1.0) or 1.0
        made: dict[int, dict[str, Any]] = {}

        def result(i: int) -> dict[str, Any]:
            if i not in made:
                made[i] = passage(records[i], ranked[i][1], best, terms)
            return made[i]

        results = [result(i) for i in range(min(k, len(ranked)))]
        mention = Mention(q_words, direct, [zh for _, zh in translated.pairs], translated.absent)

        place = itertools.count()  # group_by_locality judges the localities best first

        def judge(members: list[int]) -> str | None:
            keyword = any(mention.found_in(records[i]["text"]) for i in members)
            # members are best first; with no score above 0 (a tiny index's unscored rows) there is no distance to read
            share = ranked[members[0]][1] / ranked[0][1] if ranked[0][1] > 0 else 1.0
            return relevance.match_kind(signals, [ranked[i][0] for i in members], keyword, next(place), share)

        grouped = group_by_locality(records, [s for _, s in ranked], per_locality, result, judge, CARD_SHARE)
        matched = {g["locality"] for g in grouped}
        scope = self._scope_localities(filters) if filters.active() else self._localities
        return {
            "query": query,
            "normalized_query": norm,
            "expansions": expansions,
            "expansions_by_meaning": by_meaning,
            "translations": [{"en": en, "zh": list(zh)} for en, zh in translated.pairs],
            "filters": filters.given(),
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

    def _embedded_text(self, norm: str) -> str:
        """What the model embeds for a query: a query wholly in English is read in the reports' language, its
        glossary phrases as their terms and its other words as the dictionary's (kb.translate.reading). The small
        multilingual model matches Chinese to Chinese far better than English to Chinese (both dev sets: English
        recall@10 0.90 → 1.00; BENCHMARKS.md); a query with Chinese in it is embedded as typed."""
        if not norm.isascii():
            return norm
        read = self.glossary.read_english(norm, lambda rest: translate.reading(rest, self._how_common))
        return read or norm

    def _how_common(self, words: Sequence[str]) -> list[float]:
        """How common each word is in the index, as its idf short of an unseen word's (0 for an unseen one)."""
        unseen = idf(0, self.reader.n_chunks)
        return [max(0.0, unseen - w) for w in self.reader.token_idf(words)]

    def background(self, qvec: np.ndarray) -> tuple[float, float] | None:
        """The query's similarity to the fixed sample of the index (kb.relevance): what dense scores contrast with."""
        return relevance.background_of(self._background_sample, qvec)

    def allowed_rows(self, filters: Filters) -> Any:
        """The reader's scope of the filters (rows for the local index, an expression for an engine), or None."""
        if not filters.active():
            return None
        return self.reader.scope_where(
            locality=filters.locality, year=filters.year, region=filters.region, kind=filters.kind,
            province=filters.province,
        )

    def _rank(
        self, norm: str, bm25_tokens: tuple[list[str], list[str]], rows: Any, mode: str, absent: int = 0
    ) -> tuple[list[tuple[int, float]], dict[int, dict[str, Any]], relevance.Signals]:
        """(row, fused score) best first, the chunk record of every ranked row, and what each retriever
        said of it (for deciding which localities answer)."""
        signals = relevance.Signals()
        if self.reader.scope_empty(rows):
            return [], {}, signals
        if mode != "dense":  # what the listing rule reads BM25's score against; no BM25 in a dense search
            signals.possible_bm25 = self._possible_bm25(bm25_tokens, absent)
            signals.bm25_asked = True
        if mode == "bm25":
            hits = self._bm25_hits(bm25_tokens, rows)
            signals.bm25 = dict(zip(hits[0].tolist(), hits[1].tolist(), strict=True))
            return (*_ranked(hits), signals)
        # glossary terms go to BM25 only: added to the embedded query they pull it off the user's topic
        # (recall@5 0.96 → 0.78 with three of them, BENCHMARKS.md); an English query is embedded as its Chinese
        # reading instead, where they replace the English phrases (_embedded_text)
        qvec = self.embedder.embed_query(self._embedded_text(norm))
        signals.background = self.background(qvec)
        signals.domain = self._meanings.domain(qvec) if self._meanings is not None else None
        if mode == "dense":
            hits = self._dense_hits(qvec, rows)
            signals.dense = dict(zip(hits[0].tolist(), hits[1].tolist(), strict=True))
            return (*_ranked(hits), signals)
        # BM25 (and its records) in a worker thread while FAISS searches in this one: both release the GIL,
        # as SQLite does, and once the query is embedded both cores are free. (Started before the embedding,
        # BM25 only slowed the model, which uses both cores.) If the workers are busy with other requests and
        # have not started it, this thread runs it rather than wait in their queue.
        # an everyday question means no term of the domain: its nearest phrasings are noise (世界杯足球赛转播 → 最多跑一次)
        off = relevance.off_subject(signals)
        signals.meaning_terms = self._meanings.match(qvec, norm) if self._meanings is not None and not off else []
        meant = [t for term in signals.meaning_terms for t in self._term_tokens(term)]
        signals.meaning_share = self._meaning_share(bm25_tokens, meant)
        bm25 = worker_pool().submit(self._keyword_hits, bm25_tokens, meant, rows)
        d_rows, d_scores, d_recs = self._dense_hits(qvec, rows)
        (b_rows, b_scores, b_recs), (m_rows, m_scores, m_recs) = (
            self._keyword_hits(bm25_tokens, meant, rows) if bm25.cancel() else bm25.result()
        )
        signals.dense = dict(zip(d_rows.tolist(), d_scores.tolist(), strict=True))
        signals.bm25 = dict(zip(b_rows.tolist(), b_scores.tolist(), strict=True))
        signals.meaning = dict(zip(m_rows.tolist(), m_scores.tolist(), strict=True))
        records = {**m_recs, **b_recs, **d_recs}
        signals.phrase = phrase_shares(norm, records)
        return fuse_scores(signals), records, signals

    def _keyword_hits(self, bm25_tokens: tuple[list[str], list[str]], meant: list[str], rows: Any) -> tuple[Hits, Hits]:
        """BM25 of the query and its literal expansions, and BM25 of the terms it means (empty without any)."""
        meaning = self.reader.bm25_search(meant, DEPTH, rows) if meant else _NONE
        return self._bm25_hits(bm25_tokens, rows), (*meaning, self._records(meaning[0]))

    def _meaning_share(self, bm25_tokens: tuple[list[str], list[str]], meant: list[str]) -> float:
        """kb.fusion.meaning_share of the meant tokens against the Chinese tokens the query searches."""
        if not meant:
            return 1.0
        asked = [t for t in dict.fromkeys(bm25_tokens[0] + bm25_tokens[1]) if not t.isascii()]
        unique = list(dict.fromkeys(meant))
        weights = self.reader.token_idf(asked + unique)
        return meaning_share(dict(zip(asked, weights, strict=False)), dict(zip(unique, weights[len(asked) :], strict=True)))

    def _possible_bm25(self, bm25_tokens: tuple[list[str], list[str]], absent: int = 0) -> float:
        """The idf of the query's own Chinese tokens, and of its expansions' at the weight _bm25_hits searches
        them with (English words count through the glossary terms and translations they bring, as in Mention);
        an English word whose every translation is missing from the index counts as a missing Chinese word
        does, at an unseen word's idf: "train a puppy" is not about 培训 alone."""
        own, extra = bm25_tokens
        typed = list(dict.fromkeys(own))
        known = set(own)
        theirs = [t for t in dict.fromkeys(extra) if t not in known]
        weights = self.reader.token_idf(typed + theirs)
        mine = [w for t, w in zip(typed, weights, strict=False) if not t.isascii()]
        # no token of the query's own in the index (an English query no glossary phrase matches): its expansions
        # were searched at full weight, so they can give it a full score (at EXPANSION_WEIGHT every match was
        # worth twice its share)
        unseen = idf(0, self.reader.n_chunks)
        weight = 1.0 if all(w >= unseen for w in weights[: len(typed)]) else EXPANSION_WEIGHT
        return sum(mine) + weight * (sum(weights[len(typed) :]) + absent * unseen)

    def _bm25_hits(self, bm25_tokens: tuple[list[str], list[str]], rows: Any) -> Hits:
        """BM25 over the query's own tokens and, at EXPANSION_WEIGHT, the glossary terms' (BM25 adds up over
        terms, so the two searches' scores add up); the terms alone at full weight when none of the query's
        own tokens is in the index (an English query no glossary phrase matches)."""
        own, extra = bm25_tokens
        mine = set(own)
        extra = [t for t in extra if t not in mine]
        found, scores = self.reader.bm25_search(own, BM25_POOL if extra else DEPTH, rows) if own else _NONE
        if extra and not len(found):
            found, scores = self.reader.bm25_search(own + extra, DEPTH, rows)
        elif extra:
            x_found, x_scores = self.reader.bm25_search(extra, BM25_POOL, rows)
            total = dict(zip(found.tolist(), scores.tolist(), strict=True))
            for r, sc in zip(x_found.tolist(), x_scores.tolist(), strict=True):
                total[r] = total.get(r, 0.0) + EXPANSION_WEIGHT * sc
            best = sorted(total.items(), key=lambda kv: (-kv[1], kv[0]))[:DEPTH]
            found = np.array([r for r, _ in best], dtype=np.int64)
            scores = np.array([sc for _, sc in best], dtype=np.float32)
        return found, scores, self._records(found)

    def _dense_hits(self, qvec: np.ndarray, rows: np.ndarray | None) -> Hits:
        found, scores = self.reader.dense_search(qvec, DEPTH, rows)
        return found, scores, self._records(found)

    def _records(self, rows: np.ndarray) -> dict[int, dict[str, Any]]:
        return {rec["row"]: rec for rec in self.reader.chunks(rows)} if len(rows) else {}

    def _scope_localities(self, filters: Filters | None) -> list[str]:
        docs = self.reader.documents()
        if filters is not None and filters.active():
            doc_ids = self.reader.scope_doc_ids(self.allowed_rows(filters))
            docs = [d for d in docs if d["doc_id"] in doc_ids]
        return sorted({locality_key(d) for d in docs})

    # -- similar measures

    # passages like a chunk (or a text) from other localities, a few per locality
    similar = similar_passages
