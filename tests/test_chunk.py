"""Chunking on made-up reports: heading lines are not passages of their own, a truncated tail is not a passage."""

from __future__ import annotations

from kb.chunk import FRAGMENT_CHARS, chunk_report
from kb.segment import segment

# a paragraph above MIN_CHARS, so that neighbouring passages are not joined as short ones
BODY = ("桐溪镇组织全镇干部参加法治培训三次,覆盖机关和村(社区)干部一百二十人,培训后开展闭卷考试,合格率达到百分之百。"
        "全年邀请律师开展专题讲座六场,编印学法手册八百册,发放到每一个村民小组和网格员手中。")


def _chunks(text: str):  # noqa: ANN202 - a list of kb.model.Chunk
    return chunk_report("d", text, segment(text))


def test_heading_line_is_in_the_path_not_a_passage() -> None:
    text = "\n".join([
        "一、主要举措",
        "(一)强化组织领导。",
        f"一是健全机制。{BODY}二是压实责任。{BODY}",
        "(二)深化普法宣传",
        BODY,
    ])
    chunks = _chunks(text)
    assert all(c.text.rstrip("。") not in ("一、主要举措", "(一)强化组织领导", "(二)深化普法宣传") for c in chunks)
    assert any(c.section_path[:2] == ["一、主要举措", "(一)强化组织领导"] and "健全机制" in c.text for c in chunks)
    assert any(c.section_path == ["一、主要举措", "(二)深化普法宣传"] and c.text == BODY for c in chunks)


def test_truncated_tail_joins_the_passage_before_it() -> None:
    # a page cut off after a new heading and two characters of its body ("(三)推进政务公开\n街道")
    text = "\n".join(["一、主要举措", "(一)强化组织领导", BODY, "(二)推进政务公开", "街道"])
    chunks = _chunks(text)
    assert all(len(c.text) >= FRAGMENT_CHARS for c in chunks)
    last = chunks[-1]
    assert last.text.endswith("街道") and BODY in last.text
    assert last.section_path == ["一、主要举措", "(一)强化组织领导"]
    assert text[last.start : last.end] == last.text


def test_a_heading_alone_with_nothing_else_is_kept() -> None:
    # a report that is nothing but its first heading still has one passage to find it by
    chunks = _chunks("一、2024年法治政府建设主要举措和成效")
    assert [c.text for c in chunks] == ["一、2024年法治政府建设主要举措和成效"]


def test_every_body_sentence_is_in_a_passage() -> None:
    text = "\n".join(["一、主要举措", "(一)强化组织领导。", f"一是健全机制。{BODY}", "(二)积"])
    joined = "".join(c.text for c in _chunks(text))
    assert BODY in joined and "(二)积" in joined
