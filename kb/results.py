"""Search results: the passage JSON shape, the one locality grouper, what counts as a mention, highlights."""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from kb import tokens

UNKNOWN_LOCALITY = "(未知地区)"
# An English word no glossary phrase covers weighs in a mention through the dictionary's Chinese words for it
# (kb.translate), at the weight BM25 searches them with (kb.search.EXPANSION_WEIGHT): without them a long
# English query with one covered word was mentioned by every passage holding that word. Real reports: cards of
# the first page answering nothing 76 → 68 (of 191), listed 5.2 → 4.8 a query, shown 0.929 → 0.923; sets H
# and I listed 4.9 → 4.9, 5.0 → 4.8, shown unchanged (BENCHMARKS.md, ninth session).
READING_WEIGHT = 0.5


def locality_key(rec: dict[str, Any]) -> str:
    """The name a passage or report is grouped under: its locality, or one label per unnamed report."""
    return rec.get("locality") or f"{UNKNOWN_LOCALITY} {rec['source']}"


@dataclass(frozen=True)
class Mention:
    """What it takes for a passage to mention a query's topic: the query's own words and the glossary terms it
    names that the passage holds carry at least half of the weight of them all (tokens.word_weight; English
    words count through their terms, or else through their dictionary readings). By weight, not by count: in 韩剧推荐 the passage that says 推荐 does
    not mention the query, and a single character (电 of an unknown 电竞) weighs in but never proves a mention.
    A term counts as one of the query's parts, not as proof by itself: "public satisfaction survey on
    rule-of-law building" is not mentioned by every passage that says 法治建设 (real reports: localities
    listed 6.0 → 5.8, set A 4.8 → 4.5, no judged passage less shown)."""

    words: list[str]
    terms: list[str]
    readings: Sequence[Sequence[str]] = ()  # each English word no glossary phrase covers: its Chinese words
    unread: int = 0  # English words whose every Chinese word is missing from the index

    @cached_property  # once per query: found_in runs for every ranked passage
    def _weighed(self) -> tuple[list[tuple[str, float, list[tuple[str, float]]]], list[tuple[list[str], float]], float]:
        """The query's glossary terms and Chinese words of two characters or more with their weights and their
        parts (what can prove a mention), its English words' readings with their weights, and the weight of
        all of them."""
        cjk = [(w, tokens.word_weight(w)) for w in self.words if not w.isascii()]
        terms = [(t, tokens.word_weight(t)) for t in self.terms]
        proof = [(w, wt, _parts(w)) for w, wt in terms + [(w, wt) for w, wt in cjk if len(w) >= 2]]
        # an English word weighs what its most telling reading does; one with none in the index, what the
        # query's other words weigh on average (it is a part of the topic no passage can show)
        read = [(list(zh), READING_WEIGHT * max(tokens.word_weight(z) for z in zh)) for zh in self.readings if zh]
        known = [wt for _, wt in terms + cjk]
        unread = self.unread * READING_WEIGHT * (sum(known) / len(known) if known else 0.0)
        return proof, read, sum(known) + sum(wt for _, wt in read) + unread

    def found_in(self, text: str) -> bool:
        proof, read, total = self._weighed
        low = text.lower()
        held = sum(wt * _share_held(w, parts, low) for w, wt, parts in proof)
        # a dictionary's reading is a guess at the word the reports use: it adds to a mention, never makes one
        read_held = sum(wt for zh, wt in read if any(z in low for z in zh))
        return held > 0 and (held + read_held) * 2 >= total


def _parts(word: str) -> list[tuple[str, float]]:
    """The words of two characters or more inside a long word, with their weights: what a passage that does not
    write the word whole may hold instead (法治政府建设示范创建, a glossary term the tokenizer keeps whole, is
    written 法治政府建设示范县; 行政执法三项制度 is written 行政执法"三项制度")."""
    if len(word) < 4:
        return []
    return [(p, tokens.word_weight(p)) for p in dict.fromkeys(tokens.tokenize(word)) if p != word and len(p) >= 2]


def _share_held(word: str, parts: list[tuple[str, float]], low: str) -> float:
    """1 when the text holds the word; else the share of its parts' weight the text holds, when that is most of
    it (a passage holding 法治 alone of 法治政府建设示范创建 does not mention it)."""
    if word in low:
        return 1.0
    total = sum(wt for _, wt in parts)
    share = sum(wt for p, wt in parts if p in low) / total if total > 0 else 0.0
    return share if share * 2 > 1 else 0.0


_CJK_RUN = re.compile(r"[\u4e00-\u9fff]+")


def phrase_shares(norm: str, records: dict[int, dict[str, Any]]) -> dict[int, float]:
    """The share of a normalized query's Chinese characters that each passage holds verbatim, as whole runs of
    two characters or more (the runs between punctuation, spaces and English words): 综合行政执法 of
    "综合行政执法 reform at township level" is the user's exact term, which the model's vector of the whole query
    blurs and BM25 scores word by word. Passages holding none are left out."""
    runs = _CJK_RUN.findall(norm)
    total = sum(len(r) for r in runs)
    held = [r for r in runs if len(r) >= 2]
    if not held:
        return {}
    out: dict[int, float] = {}
    for row, rec in records.items():
        n = sum(len(r) for r in held if r in rec["text"])
        if n:
            out[row] = n / total
    return out


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


def passage(rec: dict[str, Any], score: float, best: float, terms: Sequence[str]) -> dict[str, Any]:
    """One passage in the JSON shape, from its chunk record; `terms` (highlight_terms) are highlighted."""
    return {
        "chunk_id": rec["chunk_id"],
        "doc_id": rec["doc_id"],
        "source": rec["source"],
        "locality": rec.get("locality"),
        "region": rec.get("region"),
        "province": rec.get("province"),
        "chain": rec.get("chain") or [],
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


def group_by_locality(
    records: Sequence[dict[str, Any]],
    scores: Sequence[float],
    per_locality: int,
    result: Callable[[int], dict[str, Any]],
    judge: Callable[[list[int]], str | None] | None = None,
    keep_share: float = 0.0,
) -> list[dict[str, Any]]:
    """Ranked passages (best first) grouped by locality_key, best locality first, with at most
    `per_locality` passages each (built by `result(i)` only for what is shown). With `judge`, a locality
    is listed only when judge(the indices of all its ranked passages) names how it matches. A card keeps
    only the passages scoring at least `keep_share` of its best one."""
    groups: dict[str, dict[str, Any]] = {}
    members: dict[str, list[int]] = {}
    for i, (rec, score) in enumerate(zip(records, scores, strict=True)):
        loc = locality_key(rec)
        g = groups.get(loc)
        if g is None:
            g = groups[loc] = {
                "locality": loc,
                "region": rec.get("region"),
                "province": rec.get("province"),
                "chain": rec.get("chain") or [],
                "years": [],
                "score": round(float(score), 6),
                "results": [],
            }
            members[loc] = []
        if rec.get("year") and rec["year"] not in g["years"]:
            g["years"].append(rec["year"])
        members[loc].append(i)
    kept = []
    for loc, g in groups.items():
        match = judge(members[loc]) if judge is not None else "keyword"
        if match is None:
            continue
        g["match"], g["keyword_match"] = match, match == "keyword"
        floor = keep_share * scores[members[loc][0]]
        g["results"] = [result(i) for i in members[loc][:per_locality] if scores[i] >= floor]
        kept.append(g)
    return kept


def highlight_terms(q_tokens: Sequence[str], expansions: Sequence[str]) -> list[str]:
    """What a result highlights (spans_of), longest first: query words and glossary terms. Single characters
    are left out when the query has longer words (in 政府开会之前是不是要先学一段法律条文, 要 and 学 would light up
    every passage); a query of single characters keeps its Chinese ones."""
    words = [t for t in q_tokens if t.strip()]
    longer = any(len(t) >= 2 for t in words)
    terms = {t for t in words if len(t) >= 2 or (not longer and not t.isascii())}
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
