"""HTML pieces built from offsets (highlights, passages, the document body, template helpers), all escaped."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flask import url_for
from markupsafe import Markup, escape

KIND_LABELS = {
    "preamble": ("概述", "Overview"),
    "achievements": ("成效", "Achievements"),
    "problems": ("问题", "Problems"),
    "plans": ("计划", "Plans"),
}
LEVEL_LABELS = {
    "town": "镇 town",
    "township": "乡 township",
    "subdistrict": "街道 subdistrict",
    "district": "区 district",
    "county": "县 county",
    "city": "市 city",
    "unknown": "未知 unknown",
}
# Repair kinds that occur by the hundred and say little one by one: listed collapsed.
BULK_REPAIRS = {"traditional", "pinyin_gloss", "punctuation", "whitespace", "unwrap"}
REPAIR_LABELS = {
    "traditional": "繁转简 traditional → simplified",
    "pinyin_gloss": "拼音注音 pinyin gloss removed",
    "punctuation": "标点 punctuation",
    "whitespace": "空白 whitespace",
    "unwrap": "断行合并 hard-wrapped line joined",
    "reline": "断行恢复 line break restored",
    "invisible": "不可见字符 invisible or control character removed",
    "mojibake": "乱码修复 GBK mojibake",
    "lost_char_restored": "缺字补回 lost character restored",
    "junk_gloss_dropped": "残留注音 junk gloss dropped",
    "chrome": "网页杂项 web page chrome",
    "header_title": "标题行 header title",
}


def highlight(text: str, spans: Iterable[Sequence[int]], cls: str | None = None) -> Markup:
    """`text` with each [start, end) span wrapped in <mark>; spans may be unsorted, overlapping or out of
    range."""
    n = len(text)
    clean: list[tuple[int, int]] = []
    for span in spans or ():
        try:
            s, e = int(span[0]), int(span[1])
        except (TypeError, ValueError, IndexError):
            continue
        s, e = max(0, min(s, n)), max(0, min(e, n))
        if e > s:
            clean.append((s, e))
    clean.sort()
    open_tag = Markup('<mark class="{}">').format(cls) if cls else Markup("<mark>")
    out: list[Markup] = []
    pos = 0
    for s, e in clean:
        s = max(s, pos)
        if e <= s:
            continue
        out.append(escape(text[pos:s]))
        out.append(open_tag + escape(text[s:e]) + Markup("</mark>"))
        pos = e
    out.append(escape(text[pos:]))
    return Markup("").join(out)


def snippet(text: str, spans: Sequence[Sequence[int]], width: int = 160) -> tuple[str, list[list[int]], bool, bool]:
    """A window of about `width` characters around the first highlight: (text, shifted spans, cut before, cut after)."""
    if len(text) <= width:
        return text, [list(s) for s in spans], False, False
    first = min((int(s[0]) for s in spans), default=0)
    start = max(0, min(first - width // 4, len(text) - width))
    end = start + width
    shifted = [[max(0, int(s) - start), min(width, int(e) - start)] for s, e in spans if e > start and s < end]
    return text[start:end], shifted, start > 0, end < len(text)


def passage_html(r: Mapping[str, Any], width: int | None = None, marks: bool = True) -> Markup:
    """A passage's text with its highlighted query and glossary terms, optionally cut to a snippet."""
    text, spans = r["text"], (r.get("highlights") or []) if marks else []
    before = after = False
    if width is not None:
        text, spans, before, after = snippet(text, spans, width)
    body = highlight(text, spans)
    return (Markup("…") if before else Markup("")) + body + (Markup("…") if after else Markup(""))


def doc_href(r: Mapping[str, Any]) -> str:
    """The link from a passage to its place in the report, marked and scrolled to."""
    return url_for("pages.doc_page", doc_id=r["doc_id"], hl=f"{r['start']}-{r['end']}") + f"#c-{r['start']}"


def bar_class(rel: Any) -> str:
    """The CSS class of a relevance bar (s0 … s100 in steps of 5; CSP allows no inline widths)."""
    try:
        v = float(rel)
    except (TypeError, ValueError):
        v = 0.0
    return f"s{int(round(max(0.0, min(1.0, v)) * 20)) * 5}"


def breadcrumb(section_path: Sequence[str]) -> str:
    return " › ".join(section_path) if section_path else "（正文开头 opening）"


_INVISIBLE = re.compile(r"[\s\x00-\x1f\x7f-\x9f\u00a0\u00ad\u2000-\u200f\u2028-\u202f\u205f-\u206f\u3000\ufeff]")


_CONTROL_NAMES = {"\n": "LINE FEED", "\r": "CARRIAGE RETURN", "\t": "CHARACTER TABULATION"}


def _codepoint(ch: str) -> Markup:
    name = unicodedata.name(ch, "") or _CONTROL_NAMES.get(ch, "control character")
    return Markup('<span class="cp" title="{}">U+{:04X}</span>').format(name, ord(ch))


def visible(s: str) -> Markup:
    """A repair's before/after text with invisible characters shown as U+XXXX and empty as ∅."""
    if not s:
        return Markup('<span class="empty" title="empty">∅</span>')
    out: list[Markup] = []
    pos = 0
    for m in _INVISIBLE.finditer(s):
        out.append(escape(s[pos : m.start()]))
        out.append(_codepoint(m.group()))
        pos = m.end()
    out.append(escape(s[pos:]))
    return Markup("").join(out)


@dataclass
class Para:
    start: int
    end: int
    html: Markup
    heading_level: int = 0
    has_hl: bool = False


@dataclass
class TocItem:
    heading: str
    start: int
    kind: str
    level: int
    children: list[TocItem] = field(default_factory=list)


def toc(sections: Sequence[dict[str, Any]], max_depth: int = 2, depth: int = 1) -> list[TocItem]:
    """The section tree for navigation, down to `max_depth` levels."""
    out = []
    for s in sections:
        kids = toc(s.get("children") or [], max_depth, depth + 1) if depth < max_depth else []
        out.append(TocItem(s["heading"], int(s["start"]), s.get("kind") or "", depth, kids))
    return out


def _walk(sections: Sequence[dict[str, Any]], depth: int = 1) -> Iterable[tuple[int, dict[str, Any]]]:
    for s in sections:
        yield depth, s
        yield from _walk(s.get("children") or [], depth + 1)


def render_document(
    text: str,
    sections: Sequence[dict[str, Any]],
    chunk_starts: Iterable[int] = (),
    hl: tuple[int, int] | None = None,
) -> list[Para]:
    """The cleaned text as paragraphs (one per line) with anchors — p-<start> on each paragraph, s-<start> at
    each section heading, c-<start> at each passage — headings set in bold, and the [start, end) range `hl`
    marked (split at paragraph ends)."""
    anchors: dict[int, list[str]] = {}
    bold: list[tuple[int, int]] = []
    heading_at: dict[int, int] = {}
    for depth, sec in _walk(sections):
        st = int(sec["start"])
        anchors.setdefault(st, []).append(f"s-{st}")
        head = sec.get("heading") or ""
        if head and text.startswith(head, st):
            bold.append((st, st + len(head)))
            heading_at.setdefault(st, depth)
    for c in chunk_starts:
        ids = anchors.setdefault(int(c), [])
        if f"c-{c}" not in ids:
            ids.append(f"c-{c}")
    paras: list[Para] = []
    pos = 0
    for line in text.split("\n"):
        start, end = pos, pos + len(line)
        pos = end + 1
        if not line.strip():
            continue
        cuts = {start, end}
        cuts.update(a for a in anchors if start <= a < end)
        for s, e in bold:
            cuts.update(x for x in (s, e) if start <= x <= end)
        if hl:
            cuts.update(x for x in hl if start <= x <= end)
        points = sorted(cuts)
        pieces: list[Markup] = []
        has_hl = False
        for a, b in zip(points, points[1:], strict=False):
            for ident in anchors.get(a, ()):
                pieces.append(Markup('<span class="anchor" id="{}"></span>').format(ident))
            seg = escape(text[a:b])
            if any(s <= a and b <= e for s, e in bold):
                seg = Markup("<strong>") + seg + Markup("</strong>")
            if hl and hl[0] <= a and b <= hl[1]:
                seg = Markup('<mark class="passage">') + seg + Markup("</mark>")
                has_hl = True
            pieces.append(seg)
        level = heading_at.get(start, 0) if any(s == start and e == end for s, e in bold) else 0
        paras.append(Para(start, end, Markup("").join(pieces), level, has_hl))
    return paras


def para_of(paras: Sequence[Para], offset: int) -> int | None:
    """The start of the paragraph holding `offset` (for linking a repair to its place)."""
    best = None
    for p in paras:
        if p.start <= offset:
            best = p.start
        else:
            break
    return best


def context(text: str, start: int, end: int, pad: int = 12) -> Markup:
    """A short excerpt of the cleaned text around [start, end) with that range marked."""
    n = len(text)
    start, end = max(0, min(start, n)), max(0, min(end, n))
    a, b = max(0, start - pad), min(n, end + pad)
    body = highlight(text[a:b], [[start - a, end - a]] if end > start else [])
    if end == start:
        body = escape(text[a:start]) + Markup('<span class="caret" title="here">‸</span>') + escape(text[start:b])
    body = Markup(body.replace("\n", " ⏎ "))
    return (Markup("…") if a > 0 else Markup("")) + body + (Markup("…") if b < n else Markup(""))
