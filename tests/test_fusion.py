"""kb.fusion: the dense reference contrast and the meant terms' share of the meaning weight."""

from __future__ import annotations

import math

import pytest

from kb.fusion import DENSE_REFERENCE, DENSE_WEIGHT, MEANING_WEIGHT, fuse_scores, meaning_share
from kb.relevance import Signals

pytest_plugins = ["web_fixtures"]  # fake_searcher


def test_a_weak_best_dense_contrast_is_read_against_the_reference_not_as_full_evidence() -> None:
    """Row 2's contrast (1 sd) is the query's best but weak: it gets DENSE_WEIGHT / DENSE_REFERENCE, not the
    whole DENSE_WEIGHT (which put it first at 0.5 + 0.8), so the passage BM25 ranks first stays first."""
    signals = Signals(dense={1: 0.80, 2: 0.81}, bm25={1: 4.0, 2: 2.0}, background=(0.80, 0.01))
    fused = dict(fuse_scores(signals))
    assert fused[2] == pytest.approx(0.5 + DENSE_WEIGHT * 1.0 / DENSE_REFERENCE)
    assert fused[1] == pytest.approx(1.0)
    assert [r for r, _ in fuse_scores(signals)] == [1, 2]
    # a strong best contrast (5 sd) is read as a share of itself, as before: the best gets the full weight
    strong = Signals(dense={1: 0.80, 2: 0.85}, bm25={1: 4.0, 2: 3.0}, background=(0.80, 0.01))
    assert dict(fuse_scores(strong))[2] == pytest.approx(0.75 + DENSE_WEIGHT)


def test_the_meaning_weight_is_scaled_by_the_share_the_searcher_gives_it() -> None:
    signals = Signals(bm25={1: 2.0}, meaning={1: 3.0, 2: 6.0})
    assert dict(fuse_scores(signals))[2] == pytest.approx(MEANING_WEIGHT)
    signals.meaning_share = 0.25
    fused = dict(fuse_scores(signals))
    assert fused[2] == pytest.approx(MEANING_WEIGHT * 0.25)
    assert fused[1] == pytest.approx(1.0 + MEANING_WEIGHT * 0.25 * 0.5)


def test_a_meant_term_the_query_does_not_say_counts_fully() -> None:
    """罚款不服 means 行政复议: a word the user did not use, the meaning search's whole point."""
    assert meaning_share({"罚款": 5.0, "不服": 6.0}, {"行政复议": 4.0}) == 1.0


def test_a_meant_term_that_is_the_whole_query_counts_fully() -> None:
    assert meaning_share({"人民调解": 4.0}, {"人民调解": 4.0}) == pytest.approx(1.0)


def test_a_meant_term_restating_one_word_of_many_counts_by_the_root_of_its_share() -> None:
    """街道办事处 is one common word of a long English query's reading: its idf share is small."""
    query = {"24": 9.0, "小时": 6.0, "智慧": 8.0, "政务": 5.0, "服务": 2.0, "大厅": 7.0, "街道办事处": 3.0}
    share = meaning_share(query, {"街道办事处": 3.0})
    assert share == pytest.approx(math.sqrt(3.0 / 40.0)) and share < 0.3


def test_part_restated_part_new_mixes_the_two() -> None:
    query = {"法治": 2.0, "培训": 3.0, "干部": 5.0}
    # 法治 (2 of the meant 6) is searched already at 2/10 of the query's idf; 宪法 (4 of 6) is new
    share = meaning_share(query, {"法治": 2.0, "宪法": 4.0})
    assert share == pytest.approx(4 / 6 + 2 / 6 * math.sqrt(2 / 10))
    assert meaning_share(query, {}) == 1.0 and meaning_share({}, {"宪法": 4.0}) == 1.0


def test_the_searcher_reads_the_share_from_its_index_idf(fake_searcher) -> None:
    from kb import tokens

    s = fake_searcher
    own = tokens.tokenize("人民调解 工作 机制")
    assert s._meaning_share((own, []), []) == 1.0
    unseen = s._meaning_share((own, []), ["zzzunseen"])
    assert unseen == 1.0  # a token the query does not search
    restated = s._meaning_share((own, []), [own[0]])
    idf = dict(zip(own, s.reader.token_idf(own), strict=True))
    assert restated == pytest.approx(math.sqrt(idf[own[0]] / sum(idf[t] for t in dict.fromkeys(own))))
