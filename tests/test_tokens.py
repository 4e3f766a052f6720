"""Keyword tokenization: jieba search mode, lowercased, without punctuation and stopwords."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from hypothesis import given, settings
from hypothesis import strategies as st

from kb.tokens import STOPWORDS, TOKENIZER_ID, add_words, added_words, tokenize, tokenize_many


def test_search_mode_keeps_word_and_parts():
    toks = tokenize("行政复议应诉")
    assert "行政复议" in toks or {"行政", "复议"} <= set(toks)
    assert {"行政", "复议"} <= set(toks)  # sub-words of the long word, for recall
    assert "应诉" in toks


def test_english_lowercased_and_stopwords_dropped():
    assert tokenize("How do towns handle Legal Aid for residents?") == [
        "towns",
        "handle",
        "legal",
        "aid",
        "residents",
    ]


def test_punctuation_and_whitespace_dropped():
    assert tokenize("，。！？、,.;:()《》“” \n\t\u3000 ...") == []
    toks = tokenize("法律援助,,、人民调解。 (社区) 2023年!")
    assert "法律援助" in toks and "人民调解" in toks and "社区" in toks and "2023" in toks
    assert all(any(ch.isalnum() for ch in t) for t in toks)
    assert all(t == t.strip() for t in toks)


def test_chinese_stopwords_dropped():
    toks = tokenize("进一步加强法治政府的建设和完善")
    assert "的" not in toks and "和" not in toks and "进一步" not in toks
    assert "法治" in toks and "政府" in toks


def test_stopwords_come_from_the_data_file():
    assert len(STOPWORDS) == 139
    assert {"的", "进一步", "一是", "十", "the", "be", "如何", "有没有", "吗"} <= STOPWORDS
    # compared with lowercased tokens, so kept in lowercase; the file's comment line is no stop word
    assert all(w == w.strip().lower() and not w.startswith("#") for w in STOPWORDS)


def test_empty():
    assert tokenize("") == []
    assert tokenize_many([]) == []


def test_add_words_keeps_domain_term_whole():
    term = "柒捌玖联动"  # not a word jieba knows
    if term not in added_words():
        assert term not in tokenize(f"推进{term}机制")
    add_words([term, "  ", term])
    assert term in tokenize(f"推进{term}机制")
    assert term in added_words()


def test_add_words_leaves_jiebas_global_dictionary_alone():
    import jieba

    term = "捌玖拾联动"
    add_words([term])
    assert term in tokenize(f"推进{term}机制")
    # the terms go into kb.tokens' own tokenizer: jieba's global one (and whoever reads it) never sees them
    assert term not in jieba.lcut(f"推进{term}机制", HMM=False)
    assert term not in jieba.dt.FREQ


def test_tokenize_many_matches_tokenize():
    texts = ["行政复议应诉", "Legal aid", "", "人民调解及时化解矛盾"]
    assert tokenize_many(texts, progress=True) == [tokenize(t) for t in texts]
    assert tokenize_many(iter(texts)) == [tokenize(t) for t in texts]


def test_thread_safe():
    texts = [f"第{i}次行政执法监督检查和法律顾问 review {i}" for i in range(200)]
    expected = [tokenize(t) for t in texts]
    with ThreadPoolExecutor(8) as ex:
        assert list(ex.map(tokenize, texts)) == expected


def test_tokenizer_id_is_recorded_string():
    assert isinstance(TOKENIZER_ID, str) and TOKENIZER_ID


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_tokenize_never_raises(text):
    toks = tokenize(text)
    assert isinstance(toks, list)
    for t in toks:
        assert t and t == t.strip()
        assert t == t.lower()
        assert t not in STOPWORDS
        assert any(ch.isalnum() for ch in t)


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.sampled_from("行政复议应诉法治政府建设人民调解的和与,。 AbC")))
def test_tokenize_chinese_mix_never_raises(text):
    assert all(tok for tok in tokenize(text))


def test_question_words_and_their_sub_words_are_neither_indexed_nor_searched() -> None:
    # how a question is asked says nothing of its topic; search mode's sub-words (没有 of 有没有) neither
    assert tokenize("如何化解基层矛盾纠纷") == tokenize("化解基层矛盾纠纷")
    assert "没有" not in tokenize("调解员有没有上门") and "调解员" in tokenize("调解员有没有上门")
    assert "没有" in tokenize("没有发生行政诉讼败诉案件")  # the word itself is not a question
    # every other word keeps jieba's search-mode sub-words
    assert tokenize("行政复议应诉") == ["行政", "复议", "行政复议", "应诉"]


def test_an_a_not_a_question_is_searched_as_its_a() -> None:
    # 懂不懂法 asks about 懂法: searched as 懂, never as a word no report writes
    assert tokenize("看不看他懂不懂法") == ["看", "他", "懂", "法"]
    assert "喜欢" in tokenize("老百姓喜欢不喜欢") and "不断" in tokenize("不断完善")  # not a repeat: kept
