"""Hard-wrapped text (a PDF or an e-mail saved as text, every line cut at the same width) joined back into lines."""

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
