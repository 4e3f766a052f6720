"""Line breaks a page lost or gained: hard-wrapped text joined back into lines, a flattened report split again."""

from __future__ import annotations

import re
from collections import Counter

from kb.clean.edits import Edit
from kb.patterns import SENTENCE_END

# The report's numbered structure (一、 › (一) › 一是 / 1.): a line starting with it after a finished sentence
# begins a new paragraph even where the line before reaches the margin.
_HEADING = re.compile(r"^([一二三四五六七八九十]+[、.]|[(（][一二三四五六七八九十\d]+[)）]|\d+[.、]|[一二三四五六七八九十]+是"
                      r"|第[一二三四五六七八九十]+[章节部分])")
# A text is hard-wrapped when this share of its longer lines end within SLACK columns of one width: a typed
# report's paragraphs are of every length, a wrapped one's lines all stop at the margin but a paragraph's last.
MIN_SHARE = 0.5
MIN_LINES = 4
MIN_WIDTH = 24  # columns (a Chinese character is two): narrower is a list, not a wrap
SLACK = 2


def _width(line: str) -> int:
    """Display columns as the tool that wrapped the text counted them: a Latin letter, a digit or a space takes
    one, anything else two (Chinese, and punctuation, which cleaning has folded from its full-width form)."""
    return sum(1 if (c.isascii() and (c.isalnum() or c == " ")) else 2 for c in line)


def wrap_width(lines: list[str]) -> int | None:
    """The width the text was wrapped at, or None when it was not hard-wrapped."""
    long = [(w, ln.rstrip()) for ln in lines if (w := _width(ln.rstrip())) >= MIN_WIDTH]
    if len(long) < MIN_LINES:
        return None
    counts = Counter(w for w, _ in long)
    # the margin: the widest width that many lines reach (a line stops a column short when a wide character
    # would not fit)
    for width in sorted(counts, reverse=True):
        near = [ln for w, ln in long if width - SLACK <= w <= width]
        # a wrap cuts sentences anywhere; lines that all end a sentence are paragraphs of a similar length
        cut = sum(ln[-1:] not in SENTENCE_END for ln in near)
        if len(near) >= max(MIN_SHARE * len(long), MIN_LINES) and cut * 2 > len(near):
            return width
    return None


def join_wrapped_lines(text: str) -> list[Edit]:
    """Remove the line breaks a fixed-width wrap put inside paragraphs: after a line that reaches the margin,
    unless it ends a sentence and the next line starts a numbered heading (as PDF lines are joined)."""
    lines = text.split("\n")
    width = wrap_width(lines)
    if width is None:
        return []
    edits: list[Edit] = []
    pos = 0
    for line, nxt in zip(lines, lines[1:], strict=False):
        pos += len(line) + 1
        s = line.rstrip()
        heading = s[-1:] in SENTENCE_END and bool(_HEADING.match(nxt.lstrip()))
        if _width(s) >= width - SLACK and nxt.strip() and not heading:
            # Chinese runs on without a space; a Latin word broken at the margin keeps one
            sep = " " if re.search(r"[A-Za-z]$", s) and re.match(r"\s*[A-Za-z0-9]", nxt) else ""
            edits.append(Edit(pos - 1, pos, sep, "unwrap"))
    return edits


# A page that lost its line breaks sets the report's parts apart with spaces on one line ("…汇报如下: 一、主要措施
#和成效 (一)强化组织引领,…"): a space before a numbered heading (一、, (一), 第一章, 1. before a word) is where a
# line began.
_FLAT_MARK = re.compile(r" (?=[一二三四五六七八九十]+、|\([一二三四五六七八九十]+\)|第[一二三四五六七八九十]+[章节部分]"
                        r"|\d{1,2}[.、][\u4e00-\u9fff])")
# A line is flattened when it is this long and holds this many such spaces: a typed paragraph holds none.
FLAT_CHARS = 200
FLAT_MARKS = 2
# On a flattened line, before its first sentence: the title and addressee lines ("…的报告 中共海宁市委、海宁市人民
# 政府: 2024年,…"), each a run of words without a sentence's punctuation, ended by a space.
_FLAT_HEAD = re.compile(r"[^ 。,;!?]{4,80}(?= )")


def split_flattened_lines(text: str) -> list[Edit]:
    """Put back the line breaks of a report flattened onto one line: before each numbered heading, and after
    the title and addressee runs it starts with."""
    edits: list[Edit] = []
    pos = 0
    for line in text.split("\n"):
        marks = list(_FLAT_MARK.finditer(line))
        if len(line) >= FLAT_CHARS and len(marks) >= FLAT_MARKS:
            cuts = {m.start() for m in marks}
            start = 0
            while (head := _FLAT_HEAD.match(line, start)) and head.end() < marks[0].start():
                cuts.add(head.end())
                start = head.end() + 1
            edits += [Edit(pos + c, pos + c + 1, "\n", "reline") for c in sorted(cuts)]
        pos += len(line) + 1
    return edits
