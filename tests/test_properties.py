"""Property tests: segmentation, chunking and query parsing hold their invariants on arbitrary input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kb.chunk import MAX_CHARS, chunk_report
from kb.clean import clean
from kb.errors import UsageError
from kb.model import KINDS
from kb.search import has_content, normalize_query, parse_k
from kb.segment import segment, walk

_LINES = st.sampled_from(
    [
        "一、主要成效",
        "二、存在的问题",
        "三、下一步工作计划",
        "(一)加强组织领导",
        "(二)规范行政执法",
        "(十二)其他",
        "1.完善制度",
        "(3)强化监督",
        "一是加强学习。二是完善制度。三是强化落实。",
        "二是继续推进。",
        "2023年,我镇扎实推进法治政府建设,取得明显成效。",
        "开展普法宣传活动20场次,发放资料5000份;调解矛盾纠纷45起。" * 3,
        "",
        "   ",
        "一、",
        "(一)",
        "?。ㄒ唬┥钊胴瀼芈",
    ]
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_LINES, max_size=40))
def test_section_tree_and_chunks_are_consistent(lines: list[str]) -> None:
    text = clean("\n".join(lines)).text
    sections = segment(text)
    for path, sec in walk(sections):
        assert 0 <= sec.start <= sec.end <= len(text)
        assert sec.kind in KINDS
        for parent in path:
            assert parent.start <= sec.start and sec.end <= parent.end
    chunks = chunk_report("d", text, sections)
    assert len({c.chunk_id for c in chunks}) == len(chunks)
    for c in chunks:
        assert text[c.start : c.end] == c.text and c.text.strip()
        assert len(c.text) <= MAX_CHARS
        assert c.kind in KINDS
    starts = [c.start for c in chunks]
    assert starts == sorted(starts)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=2000))
def test_segmentation_never_raises(text: str) -> None:
    cleaned = clean(text).text
    chunks = chunk_report("d", cleaned, segment(cleaned))
    for c in chunks:
        assert cleaned[c.start : c.end] == c.text


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_query_normalization_is_total_and_idempotent(q: str) -> None:
    norm = normalize_query(q)
    assert normalize_query(norm) == norm
    assert norm == norm.strip() and "\x00" not in norm
    assert isinstance(has_content(norm), bool)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=20), st.integers(), st.floats(allow_nan=True), st.none()))
def test_parse_k_accepts_only_whole_numbers_in_range(value: object) -> None:
    try:
        k = parse_k(value)
    except UsageError as exc:
        assert "k must" in str(exc)
        return
    assert 1 <= k <= 100


def test_report_without_headings_is_one_preamble_stretch() -> None:
    text = clean("2022年,某某镇持续推进法治建设。\n全年开展普法活动12场。\n调解纠纷30起。").text
    sections = segment(text)
    assert sections == []
    chunks = chunk_report("d", text, sections)
    assert chunks and all(c.kind == "preamble" and c.section_path == [] for c in chunks)


@pytest.mark.parametrize("line", ["十一、其他工作", "(十一)加强监督", "二十、附则"])
def test_large_numerals_are_headings(line: str) -> None:
    (sec,) = segment(line)
    assert sec.heading == line


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(min_value=5, max_value=300), min_size=1, max_size=30), st.integers(0, 50))
def test_long_sections_split_at_sentence_ends_within_the_span(lengths: list[int], offset: int) -> None:
    from kb.chunk import split_span

    body = "".join("法" * n + "。" for n in lengths)
    text = "前" * offset + body + "后" * 7
    start, end = offset, offset + len(body)
    pieces = split_span(text, start, end)
    assert pieces[0][0] >= start and pieces[-1][1] <= end
    for (_, e), (s2, _) in zip(pieces, pieces[1:], strict=False):
        assert e <= s2
    for s, e in pieces:
        assert 0 < e - s <= MAX_CHARS
        # a piece ends at a sentence end unless one sentence alone was longer than MAX_CHARS
        assert text[e - 1] == "。" or max(lengths) + 1 > MAX_CHARS or e == end


@settings(max_examples=200, deadline=None)
@given(st.sets(st.text(alphabet="甲乙丙丁镇街道", min_size=1, max_size=4), max_size=40), st.data())
def test_unmatched_localities_are_scope_less_matched(names, data):
    from kb.search import _without

    scope = sorted(names)
    drop = data.draw(st.sets(st.sampled_from(scope + ["外地镇"]) if scope else st.just("外地镇"), max_size=10))
    assert _without(scope, drop) == [n for n in scope if n not in drop]
