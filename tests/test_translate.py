"""English words of a query as Chinese words from the dictionary (kb.translate), and their part in search."""

from __future__ import annotations

from kb import translate
from kb.glossary import load_glossary

pytest_plugins = ["web_fixtures"]  # fake_searcher


def _held(*words: str):
    """An index prior that holds the given words, the first most often."""
    rank = {w: float(len(words) - i) for i, w in enumerate(words)}
    return lambda heads: [rank.get(h, 0.0) for h in heads]


def test_the_index_chooses_among_a_words_translations() -> None:
    # CC-CEDICT gives "court" 宫廷, 朝廷, 球场, 法院 …: the one the reports hold is kept
    got = translate.translate("court", _held("法院"))
    assert got.pairs == (("court", ("法院",)),) and got.absent == 0
    # of several the reports hold, the more common ones, at most PER_WORD
    got = translate.translate("court", _held("法院", "球场", "朝廷"))
    assert got.words == ["法院", "球场"][: translate.PER_WORD]


def test_a_gloss_of_several_words_is_read_as_one() -> None:
    units = translate.english_units("section chiefs giving lectures")
    assert units[0] == ("section chiefs", ("section", "chief"))
    assert translate.translate("section chiefs", _held("科长", "部分")).pairs == (("section chiefs", ("科长",)),)


def test_function_words_and_inflections() -> None:
    assert [w for w, _ in translate.english_units("the lectures of a town")] == ["lectures", "town"]
    assert translate.translate("Lectures", _held("讲座", "讲课")).words  # capitals, plural


def test_a_word_whose_translations_no_passage_holds_is_counted_absent() -> None:
    got = translate.translate("how to train a puppy", _held("培训"))
    assert got.words == ["培训"] and got.absent == 1  # 小狗 is in no passage
    # a word the dictionary does not know at all says nothing either way
    assert translate.translate("zqxw", _held("培训")) == translate.Translation()


def test_chinese_text_is_left_alone() -> None:
    assert translate.english_units("行政复议 法院") == []


def test_the_glossary_phrases_are_left_to_the_glossary() -> None:
    g = load_glossary()
    left = g.uncovered("legal aid for residents")
    assert "legal" not in left and "aid" not in left and "residents" in left
    assert len(left) == len("legal aid for residents")


def test_an_english_query_reaches_chinese_wording_by_keyword(fake_searcher) -> None:
    """With the hashing fake embedder only BM25 can bring 法院 for "court": the dictionary does."""
    out = fake_searcher.search("court", k=10, mode="bm25")
    assert out["translations"] and out["translations"][0]["en"] == "court"
    zh = out["translations"][0]["zh"]
    assert out["results"] and all(any(w in r["text"] for w in zh) for r in out["results"])
    marked = {r["text"][a:b] for r in out["results"] for a, b in r["highlights"]}
    assert marked & set(zh)  # and shown as what the passage matched


def test_english_text_is_read_as_the_dictionary_words_the_index_holds() -> None:
    read = translate.reading("section chiefs giving law lectures", _held("科长", "法律", "讲课"))
    assert read == "科长 giving 法律 讲课"  # a word with no translation the index holds stays as written
    assert translate.reading("How to train a puppy", _held("培训")) == "培训 puppy"  # function words dropped


def test_the_glossary_reads_its_english_phrases_as_terms() -> None:
    g = load_glossary()
    read = g.read_english("legal aid for residents", lambda rest: f"<{rest.strip()}>" if rest.strip() else "")
    assert read == "法律援助 <for residents>"
    assert g.read_english("zqxw", lambda rest: rest.strip()) == "zqxw"


def test_an_english_query_is_embedded_in_the_reports_language(fake_searcher, monkeypatch) -> None:
    """The model embeds an English query's Chinese reading; a query with Chinese in it as typed."""
    seen: list[str] = []
    embed = fake_searcher.embedder.embed_query
    monkeypatch.setattr(fake_searcher.embedder, "embed_query", lambda text: seen.append(text) or embed(text))
    fake_searcher.search("legal aid", k=3)
    fake_searcher.search("行政复议 practice", k=3)
    assert seen == ["法律援助", "行政复议 practice"]


def test_an_english_querys_glossary_terms_are_its_own_words_for_bm25(fake_searcher, monkeypatch) -> None:
    """The terms an English query's phrases name are searched as its own words (full weight); their related terms
    go to the second search, whose scores count at the expansions' weight."""
    searched: list[list[str]] = []
    bm25 = fake_searcher.reader.bm25_search
    monkeypatch.setattr(fake_searcher.reader, "bm25_search", lambda toks, *a: searched.append(list(toks)) or bm25(toks, *a))
    direct, related = fake_searcher.glossary.expand_parts("legal aid")
    assert direct == ["法律援助"] and related
    fake_searcher.search("legal aid", k=3, mode="bm25")
    own, extra = searched
    assert "法律援助" in own and "法律援助" not in extra
    assert set(fake_searcher._term_tokens(related[0])) - set(own) <= set(extra)


def test_english_function_words_are_not_searched_for() -> None:
    """A modal or a pronoun carries no topic: "i" matched the i of a platform named 深i学, and the dictionary
    glosses "should" as one sense of 不足, so an egg-boiling question listed a subdistrict."""
    assert translate.is_function_word("i") and translate.is_function_word("should")
    assert not translate.is_function_word("court") and not translate.is_function_word("will")
    words = translate.translate("how long should I boil an egg", lambda ws: [1.0] * len(ws)).words
    assert "不足" not in words
