"""Segmentation: the section tree of a cleaned report (一、 › (一) › 1. › inline 一是), each with a kind."""

from __future__ import annotations

import re

from kb.model import Section

_NUM = "一二三四五六七八九十"
_RANKED_HEADINGS = (
    (1, re.compile(rf"^[{_NUM}]{{1,3}}、")),
    (2, re.compile(rf"^\([{_NUM}]{{1,3}}\)")),
    (3, re.compile(r"^(\d{1,2}[.、](?!\d)|\(\d{1,2}\))")),
)
INLINE_RANK = 4
# Inline items open a paragraph or follow a sentence or clause end: "…。二是…", "…:一是…".
_INLINE = re.compile(rf"(?:^|(?<=[。;:!?]))([{_NUM}]{{1,2}})是")
_HEADING_MAX = 50

_PROBLEMS = re.compile(r"问题|不足|短板|差距|薄弱|困难和|挑战|有待(提高|加强|提升)")
_PLANS = re.compile(r"下一步|下一年|下步|工作打算|工作计划|工作安排|工作思路|主要安排|明年|今后|展望|(20\d\d)年.{0,6}(计划|安排|打算|思路|重点)")
_TEXT_PROBLEMS = re.compile(r"(存在|仍有|还有|面临)[^。]{0,16}(问题|不足|薄弱环节|短板|差距)")
_TEXT_PLANS = re.compile(r"(将重点|下一步|下一年度|20\d\d年(将|要|我镇将|我区将)|以下工作)")


def numeral_value(text: str) -> int | None:
    """Value of a Chinese numeral 一…九十九 as used in headings (十二 = 12, 二十 = 20)."""
    digits = {c: i + 1 for i, c in enumerate(_NUM[:9])}
    if not text or any(c not in _NUM for c in text):
        return None
    if text == "十":
        return 10
    if "十" in text:
        tens, _, ones = text.partition("十")
        return (digits.get(tens, 1) if tens else 1) * 10 + (digits.get(ones, 0) if ones else 0)
    return digits.get(text) if len(text) == 1 else None


def heading_kind(heading: str) -> str | None:
    """The kind a heading announces, if it announces one."""
    if _PLANS.search(heading):
        return "plans"
    if _PROBLEMS.search(heading):
        return "problems"
    return None


def text_kind(text: str, last: bool = False) -> str | None:
    """Kind announced inside running text, for reports that fold problems and plans into a paragraph:
    the first cue names a paragraph's kind; the last cue (last=True) names the items that follow it."""
    cues = [(m.start(), "plans") for m in _TEXT_PLANS.finditer(text)]
    cues += [(m.start(), "problems") for m in _TEXT_PROBLEMS.finditer(text)]
    if not cues:
        return None
    return max(cues)[1] if last else min(cues)[1]


def heading_text(line: str, inline: bool = False) -> str:
    """The heading part of a line: up to the first sentence end (or, for a long inline item, its first
    clause), capped for display."""
    m = re.search(r"[。;:!?]", line)
    head = line[: m.start()] if m else line
    if inline and len(head) > 30 and "," in head:
        head = head[: head.index(",")]
    return head if len(head) <= _HEADING_MAX else head[:_HEADING_MAX] + "…"


def _line_rank(line: str) -> int | None:
    for rank, pattern in _RANKED_HEADINGS:
        if pattern.match(line):
            return rank
    return None


def _inline_items(line: str, offset: int) -> list[tuple[int, int]]:
    """(start, end) of inline 一是/二是… items in a line, as an in-order run; a run starts with 一是 or
    (continuing the previous line's run) with any numeral at the start of the line."""
    spans: list[int] = []
    expected: int | None = None
    for m in _INLINE.finditer(line):
        value = numeral_value(m.group(1))
        if value is None:
            continue
        if expected is None:
            if value == 1 or m.start() == 0:
                spans.append(m.start())
                expected = value + 1
        elif value == expected:
            spans.append(m.start())
            expected += 1
    if not spans or (len(spans) == 1 and spans[0] != 0):
        return []
    ends = spans[1:] + [len(line)]
    return [(offset + s, offset + e) for s, e in zip(spans, ends, strict=True)]


def segment(text: str) -> list[Section]:
    """Build the section tree; offsets index `text`; kinds come from headings, inherited downwards."""
    roots: list[Section] = []
    stack: list[Section] = []
    pos = 0
    for line in text.split("\n"):
        start, end = pos, pos + len(line)
        pos = end + 1
        rank = _line_rank(line)
        if rank is not None:
            while stack and stack[-1].level >= rank:
                stack.pop()
            kind = heading_kind(heading_text(line)) or (stack[-1].kind if stack else "achievements")
            node = Section(heading_text(line), rank, kind, start, end)
            (stack[-1].children if stack else roots).append(node)
            stack.append(node)
        parent = stack[-1] if stack else None
        items = _inline_items(line, start)
        intro = line[: items[0][0] - start] if items else ""
        item_kind = text_kind(intro, last=True) if intro else None
        for s, e in items:
            item_text = text[s:e]
            base = item_kind or (parent.kind if parent else "preamble")
            heading = heading_text(item_text, inline=True)
            node = Section(heading, INLINE_RANK, heading_kind(heading) or base, s, e)
            if parent is not None:
                parent.children.append(node)
            else:
                roots.append(node)
        for node in stack:
            node.end = end
    return roots


def walk(sections: list[Section], path: tuple[Section, ...] = ()) -> list[tuple[tuple[Section, ...], Section]]:
    """Every section with the path of its ancestors, in document order."""
    out = []
    for s in sections:
        out.append((path, s))
        out.extend(walk(s.children, (*path, s)))
    return out
