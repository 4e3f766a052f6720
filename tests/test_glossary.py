"""Tests for the packaged domain glossary and the query expander."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kb.glossary import DEFAULT_PATH, Entry, Glossary, load_glossary

HEADER = "term\tzh_variants\ten\trelated\n"


@pytest.fixture(scope="module")
def glossary() -> Glossary:
    return load_glossary()


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "glossary.tsv"
    path.write_text(body, encoding="utf-8")
    return path


def test_packaged_file_loads_and_is_cached(glossary: Glossary) -> None:
    assert DEFAULT_PATH.is_file()
    assert load_glossary() is glossary
    assert len(glossary) == len(glossary.entries) >= 300
    assert all(isinstance(e, Entry) for e in glossary.entries)


def test_terms_unique_and_rows_complete(glossary: Glossary) -> None:
    terms = [e.term for e in glossary.entries]
    assert len(terms) == len(set(terms))
    for entry in glossary.entries:
        assert entry.en, entry.term
        assert all(p == p.lower() for p in entry.en), entry.term
        assert entry.term not in entry.related


def test_related_terms_are_glossary_terms(glossary: Glossary) -> None:
    for entry in glossary.entries:
        for term in entry.related:
            assert glossary.get(term) is not None, (entry.term, term)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("legal aid for residents", "法律援助"),
        ("free legal help", "法律援助"),
        ("administrative reconsideration", "行政复议"),
        ("petitions from villagers", "信访"),
        ("law enforcement supervision", "执法监督"),
        ("cutting red tape", "放管服改革"),
        ("business environment", "营商环境"),
        ("rule-of-law education", "普法"),
        ("training for officials", "法治培训"),
        ("如何化解基层矛盾纠纷", "矛盾纠纷排查化解"),
        ("民告官", "行政诉讼"),
        ("免费请律师", "法律援助"),
    ],
)
def test_expand_examples(glossary: Glossary, query: str, expected: str) -> None:
    assert expected in glossary.expand(query)


def test_word_boundaries(glossary: Glossary) -> None:
    assert "法律援助" not in glossary.expand("said")
    assert "法律援助" not in glossary.expand("he said the paid staff were afraid")


def test_longest_match_wins(tmp_path: Path) -> None:
    rows = "行政管理\t行政\tadministrative\t\n行政复议\t对行政不服\tadministrative reconsideration\t\n"
    g = load_glossary(write(tmp_path, HEADER + rows))
    assert g.expand("administrative reconsideration") == ["行政复议"]
    assert g.expand("administrative matters") == ["行政管理"]
    assert g.expand("对行政不服怎么办") == ["行政复议"]


def test_packaged_longest_match(glossary: Glossary) -> None:
    assert glossary.expand("administrative reconsideration")[0] == "行政复议"
    assert glossary.expand("comprehensive administrative law enforcement")[0] == "综合行政执法"


def test_matched_terms_come_before_related(glossary: Glossary) -> None:
    result = glossary.expand("legal aid and mediation")
    assert result.index("人民调解") < result.index("法律援助中心")


def test_terms_in_query_not_repeated(glossary: Glossary) -> None:
    result = glossary.expand("行政复议案件办理情况")
    assert "行政复议" not in result
    assert "行政应诉" in result


def test_expand_is_stable(glossary: Glossary) -> None:
    query = "法律援助 and administrative litigation"
    assert glossary.expand(query) == glossary.expand(query)


def test_tiny_glossary(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + "法律援助\t免费请律师\tlegal aid|free legal help\t公共法律服务\n")
    g = load_glossary(path)
    assert len(g) == 1
    assert g.entries[0].zh_variants == ("免费请律师",)
    assert g.expand("legal aids") == ["法律援助", "公共法律服务"]
    assert g.expand("unpaid") == []


@pytest.mark.parametrize(
    ("body", "line"),
    [
        (HEADER + "法律援助\tlegal aid\n", 2),
        (HEADER + "法律援助\t\tlegal aid\t\n行政复议\t复议\t\t\n", 3),
        (HEADER + "法律援助\t\tlegal aid\t\n\n法律援助\t\tfree legal help\t\n", 4),
        ("term\ten\n法律援助\t\tlegal aid\t\n", 1),
    ],
)
def test_malformed_file_names_line(tmp_path: Path, body: str, line: int) -> None:
    path = write(tmp_path, body)
    with pytest.raises(ValueError, match=rf"glossary\.tsv:{line}\b"):
        load_glossary(path)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_expand_never_raises_and_has_no_duplicates(text: str) -> None:
    g = load_glossary()
    result = g.expand(text)
    assert len(result) == len(set(result))
    assert all(g.get(term) is not None for term in result)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["legal", "aid", "said", "行政", "复议", "调解", " ", "-", "s", "法律援助"])))
def test_expand_on_glossary_fragments(parts: list[str]) -> None:
    query = "".join(parts)
    result = load_glossary().expand(query)
    assert len(result) == len(set(result))
    assert not any(term in query for term in result)
