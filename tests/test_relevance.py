"""The calibrated rule that decides which localities are listed for a query."""

from __future__ import annotations

import numpy as np
import pytest

from kb import relevance
from kb.relevance import Signals, match_kind, probability


def _signals(dense: dict[int, float], bm25: dict[int, float], possible: float = 10.0) -> Signals:
    """A query whose tokens could give a passage `possible` (Signals.possible_bm25)."""
    return Signals(dense=dense, bm25=bm25, background=(0.80, 0.02), possible_bm25=possible)


def test_a_strong_keyword_match_is_listed_as_keyword() -> None:
    s = _signals({1: 0.86, 2: 0.81}, {1: 12.0, 2: 1.0})
    assert match_kind(s, [1], keyword=True) == "keyword"
    assert match_kind(s, [2], keyword=False) is None  # near the background, few keywords


def test_a_passage_far_above_the_background_is_listed_by_meaning_without_keywords() -> None:
    # no query word in it, some keyword evidence (sub-words, glossary terms) and a strong dense contrast
    s = _signals({1: 0.90, 2: 0.80}, {1: 3.0, 2: 3.0, 7: 9.0})
    assert match_kind(s, [1], keyword=False) == "meaning"
    assert match_kind(s, [2], keyword=False) is None  # the same keyword evidence at the background


def test_a_rule_of_law_query_lists_its_first_localities_on_weak_evidence_an_everyday_one_does_not() -> None:
    weak = _signals({1: 0.82, 2: 0.81}, {})  # a plain-language question: no word shared, a faint contrast
    assert match_kind(weak, [1], keyword=False, place=0) is None  # no domain margin known (no vectors)
    weak.domain = relevance.DOMAIN_MIN
    assert match_kind(weak, [1], keyword=False, place=0) == "meaning"
    assert match_kind(weak, [2], keyword=False, place=relevance.FIRST_LOCALITIES - 1) == "meaning"
    assert match_kind(weak, [2], keyword=False, place=relevance.FIRST_LOCALITIES) is None  # ranked lower: the rule
    assert match_kind(weak, [1], keyword=False) is None  # place unknown
    weak.domain = relevance.DOMAIN_MIN - 0.01  # nearer to everyday questions
    assert match_kind(weak, [1], keyword=False, place=0) is None


def test_the_first_localities_rule_is_for_a_query_whose_words_the_passages_do_not_hold() -> None:
    found = _signals({1: 0.82, 2: 0.81}, {2: 2.0}, possible=10.0)  # its best passage: 0.2 of the possible score
    found.domain = relevance.DOMAIN_MIN
    assert probability(found, [1], keyword=False) < relevance.THRESHOLD  # the rule alone would not list it
    assert match_kind(found, [1], keyword=False, place=1) is None
    unheld = _signals({1: 0.82, 2: 0.81}, {2: 1.0}, possible=10.0)  # 0.1: a plain-language question
    unheld.domain = relevance.DOMAIN_MIN
    assert match_kind(unheld, [1], keyword=False, place=1) == "meaning"


def test_the_first_localities_rule_needs_some_of_the_querys_words_in_some_passage() -> None:
    unwritten = _signals({1: 0.82, 2: 0.81}, {}, possible=10.0)  # BM25 asked and found nothing at all
    unwritten.domain, unwritten.bm25_asked = relevance.DOMAIN_MIN, True
    assert match_kind(unwritten, [1], keyword=False, place=0) is None
    held = _signals({1: 0.82, 2: 0.81}, {2: 0.3}, possible=10.0)  # one word held somewhere: listed again
    held.domain, held.bm25_asked = relevance.DOMAIN_MIN, True
    assert match_kind(held, [1], keyword=False, place=0) == "meaning"


def test_a_query_off_the_reports_subject_lists_no_locality_even_by_keyword() -> None:
    strong = _signals({1: 0.86}, {1: 12.0})
    assert match_kind(strong, [1], keyword=True) == "keyword"  # no domain margin known: the rule alone
    strong.domain = relevance.DOMAIN_NONE - 0.001
    assert match_kind(strong, [1], keyword=True, place=0) is None
    strong.domain = relevance.DOMAIN_NONE
    assert match_kind(strong, [1], keyword=True, place=0) == "keyword"


def test_a_locality_far_behind_the_querys_best_passage_is_not_listed_whatever_else_it_matches() -> None:
    strong = _signals({1: 0.86}, {1: 12.0})
    strong.domain = relevance.DOMAIN_MIN  # a query about the reports' subject, ranked second: listed on its own
    assert match_kind(strong, [1], keyword=True, place=1, share=relevance.TAIL_SHARE) == "keyword"
    assert match_kind(strong, [1], keyword=True, place=1, share=relevance.TAIL_SHARE - 0.01) is None
    assert match_kind(strong, [1], keyword=True) == "keyword"  # no share given: the query's best


def test_probability_grows_with_each_signal() -> None:
    base = _signals({1: 0.82, 2: 0.86}, {1: 2.0, 2: 2.0, 3: 9.0})
    assert probability(base, [2], False) > probability(base, [1], False)  # dense contrast
    more_bm = _signals({1: 0.82}, {1: 6.0, 3: 9.0})
    assert probability(more_bm, [1], False) > probability(base, [1], False)
    assert probability(base, [1], True) > probability(base, [1], False)


def test_background_is_the_contrast_with_a_fixed_sample() -> None:
    sample = relevance.background_sample([np.eye(4, dtype=np.float32)[i % 4] for i in range(16)])
    mu, sd = relevance.background_of(sample, np.array([1, 0, 0, 0], dtype=np.float32))
    assert abs(mu - 0.25) < 1e-6 and sd > 0
    assert relevance.background_of(None, np.zeros(4)) is None


def test_bm25_counts_as_a_share_of_what_the_query_could_score_not_of_its_best() -> None:
    # an off-topic query: its best BM25 passage scores 2 of a possible 20 (one common word of several rare ones)
    weak = _signals({1: 0.82, 2: 0.95}, {1: 2.0}, possible=20.0)
    strong = _signals({1: 0.82, 2: 0.95}, {1: 2.0}, possible=2.5)
    assert probability(weak, [1], False) < probability(strong, [1], False)
    assert match_kind(weak, [1], keyword=False) is None


def test_the_dense_contrast_counts_as_a_share_of_the_querys_best() -> None:
    # the same absolute contrast weighs more when it is the query's best than when a far better one exists
    alone = _signals({1: 0.86}, {1: 3.0, 9: 9.0})
    behind = _signals({1: 0.86, 2: 0.95}, {1: 3.0, 9: 9.0})
    assert probability(alone, [1], False) > probability(behind, [1], False)


def test_a_mention_needs_the_words_that_carry_the_query_not_a_common_one() -> None:
    from kb import tokens
    from kb.results import Mention

    # a made-up town's passage that says 推荐 (recommend) and 比赛 (contest) but is about neither query
    text = "街道推荐两名调解员参加全市普法知识比赛,获得优秀组织奖。"
    drama = Mention(tokens.words("韩剧推荐"), [])
    assert tokens.word_weight("韩剧") > tokens.word_weight("推荐")
    assert not drama.found_in(text)  # 1 of 2 words, but the light one
    assert Mention(tokens.words("普法知识比赛"), []).found_in(text)
    assert not Mention(tokens.words("电竞比赛直播"), []).found_in(text)
    # the one glossary term a query names is a mention on its own
    assert Mention(tokens.words("调解 contest"), ["调解员"]).found_in(text)
    # of several, a passage must hold the terms that carry the query, not the most common one alone
    assert tokens.word_weight("网格员") > tokens.word_weight("普法")
    survey = Mention(tokens.words("grid workers doing legal outreach"), ["网格员", "普法"])
    assert not survey.found_in(text)  # 普法 only
    assert survey.found_in("社区网格员入户开展普法宣传。") and survey.found_in("网格员每日巡查。")
    # single characters never prove a mention, however many of them occur
    assert not Mention(["街", "道"], []).found_in(text)


def test_an_english_querys_uncovered_words_are_part_of_what_a_mention_must_hold() -> None:
    """"24-hour smart service hall run by the subdistrict": the glossary covers only "subdistrict" (街道办事处);
    the dictionary's readings of the other words weigh in, so a passage that names the 街道办事处 and nothing
    else no longer mentions the query. A reading adds to a mention but never makes one on its own."""
    from kb.results import Mention

    generic = "街道办事处深入学习贯彻习近平法治思想,全面落实法治政府建设工作部署。"
    hall = "街道办事处建成24小时智能政务服务大厅,群众随时可办。"
    bare = Mention(["24", "hour", "smart", "hall", "run"], ["街道办事处"])
    assert bare.found_in(generic)  # without the readings, the one term is all the query has
    read = Mention(["24", "hour", "smart", "hall", "run"], ["街道办事处"], [("小时",), ("智能", "聪明")], unread=1)
    assert not read.found_in(generic)
    assert read.found_in(hall)
    # readings alone: a passage holding only dictionary words of an English query never mentions it
    only = Mention(["broadcast", "football"], [], [("转播",), ("足球",)])
    assert not only.found_in("电视台转播足球比赛。")


def test_a_long_term_is_mentioned_by_most_of_its_parts_but_not_by_one() -> None:
    from kb import glossary, tokens
    from kb.results import Mention

    glossary.register_domain_words()  # the glossary term is one token, as in a search
    assert tokens.words("法治政府建设示范创建") == ["法治政府建设示范创建"]
    model = Mention(tokens.words("法治政府建设示范创建"), [])
    # a made-up county's passage writes the term's parts, not the term
    assert model.found_in("县政府获评全省法治政府建设示范县。")
    assert model.found_in("扎实推进法治政府建设示范创建工作。")
    assert not model.found_in("全年开展法治宣传活动12场。")  # 法治 alone
    # quotation marks inside a term (行政执法“三项制度”) do not hide it
    assert Mention(tokens.words("行政执法三项制度"), []).found_in("严格落实行政执法“三项制度”。")


def test_highlights_leave_single_characters_out_beside_longer_words() -> None:
    from kb.results import highlight_terms

    words = ["政府", "开会", "要", "学", "法律条文"]
    assert highlight_terms(words, ["会前学法"]) == ["会前学法", "法律条文", "开会", "政府"]
    assert highlight_terms(["法", "a"], []) == ["法"]  # only single characters: the Chinese one stays
    assert highlight_terms(["ai", "x", "调解"], []) == ["ai", "调解"]


def test_bm25_that_found_nothing_is_evidence_a_dense_search_is_not() -> None:
    """In a hybrid search BM25 was asked: finding nothing counts against a locality. Only a dense search, which
    never asks BM25, leaves its signals at their mean (neutral)."""
    hybrid = Signals(dense={1: 0.9}, bm25={}, background=(0.80, 0.02), possible_bm25=10.0, bm25_asked=True)
    dense_only = Signals(dense={1: 0.9}, bm25={}, background=(0.80, 0.02))
    assert relevance.features(hybrid, [1], False)[1:3] == (0.0, 0.0)
    assert relevance.features(dense_only, [1], False)[1:3] == (relevance.MEANS[1], relevance.MEANS[2])
    assert probability(hybrid, [1], False) < probability(dense_only, [1], False)


def test_a_passage_holding_the_querys_chinese_verbatim_gains_its_share_in_the_fusion() -> None:
    from kb.fusion import DENSE_WEIGHT, PHRASE_WEIGHT, fuse_scores
    from kb.results import phrase_shares

    records = {
        1: {"text": "石桥镇推进镇街综合行政执法改革,组建综合执法队。"},
        2: {"text": "石桥镇规范行政执法行为,落实执法全过程记录。"},  # the words apart, not the term
        3: {"text": "开展综合治理和行政审批改革。"},
    }
    assert phrase_shares("综合行政执法 reform at township level", records) == {1: 1.0}
    # a share of all the query's Chinese: one run of two held, the other (6 of 10 characters) not
    assert phrase_shares("综合行政执法、乡镇街道", records) == {1: 0.6}
    # a single character is never a phrase, and an English query has none
    assert phrase_shares("法 law", records) == {} and phrase_shares("administrative law enforcement", records) == {}
    # row 2 leads on the model's contrast, row 1 on the phrase: with it, row 1 goes first
    signals = Signals(dense={1: 0.84, 2: 0.86}, bm25={1: 5.0, 2: 5.0}, background=(0.80, 0.02))
    assert [r for r, _ in fuse_scores(signals)] == [2, 1]
    signals.phrase = phrase_shares("综合行政执法 reform", records)
    fused = dict(fuse_scores(signals))
    assert fused[1] > fused[2] and fused[1] == pytest.approx(1.0 + DENSE_WEIGHT * 2.0 / 3.0 + PHRASE_WEIGHT)
