"""Page chrome and header lines: removed from the text, their title, dates and places kept in a Header."""

from __future__ import annotations

import re

from kb.clean.edits import Edit
from kb.patterns import DATE_IN_LINE, DATE_LINE, PLACE_LINE, Header, iso_date

_CHROME = [
    re.compile(p)
    for p in (
        r"^(您|你)?(当前|现在)?(的)?(所在)?位置[:：]",
        r"^首页\s*>",
        r"^字[体号][:：]?\s*[\[【(]?\s*[大中小]",
        r"^[\[【]?\s*字[体号]",
        r"^扫一扫",
        r"^(用)?手机(扫码|扫描|打开|浏览)",
        r"^站长统计$",
        r"^(相关)?附件[:：]?$",
        r"^相关附件",
        r"^[\[【]?\s*(打印(本页|此页)?|关闭(窗口|本页)?|返回顶部|收藏|分享到?)\s*[\]】]?(\s*[\[【]?\s*(打印(本页|此页)?|关闭(窗口|本页)?|返回顶部|收藏)\s*[\]】]?)*$",
        r"^分享到",
        r"^(上|下)一篇[:：]",
        r"^(浏览|访问|阅读)(次数|量)[:：]?\s*\d*",
        r"^(责任)?编辑[:：]",
        r"^(索引号|发文机关|主题分类|发布机构|文号|成文日期|发布日期|信息来源|来源)[:：]",
        r"^【?(当前位置|网站地图|联系我们|版权所有|主办单位|承办单位)",
        r"^Copyright",
    )
]
_HEADING_START = re.compile(r"^([一二三四五六七八九十]+[、.]|\([一二三四五六七八九十]+\)|\d+[.、])")
# Only the first lines of a page hold a title, a date or a place line.
HEADER_LINES = 6


def strip_chrome(text: str, header: Header) -> list[Edit]:
    """Remove web-page chrome and repeated header lines; keep the title, dates and places in `header`."""
    edits: list[Edit] = []
    pos = 0
    seen_header: set[str] = set()
    content_lines = 0
    for line in text.split("\n"):
        span = (pos, pos + len(line) + 1)
        pos += len(line) + 1
        s = line.strip()
        if not s:
            continue
        in_header = content_lines < HEADER_LINES and not header_done(header, content_lines)
        if any(p.search(s) for p in _CHROME):
            for m in DATE_IN_LINE.finditer(s):
                d = iso_date(m)
                if d:
                    header.dates.append(d)
            edits.append(Edit(span[0], min(span[1], len(text)), "", "chrome"))
            continue
        if in_header and s in seen_header:
            edits.append(Edit(span[0], min(span[1], len(text)), "", "duplicate_line"))
            continue
        if in_header and DATE_LINE.match(s):
            d = iso_date(DATE_LINE.match(s))  # type: ignore[arg-type]
            if d:
                header.dates.append(d)
            seen_header.add(s)
            edits.append(Edit(span[0], min(span[1], len(text)), "", "header_date"))
            continue
        if in_header and PLACE_LINE.match(s) and len(s) <= 24:
            header.place_lines.append(s)
            seen_header.add(s)
            edits.append(Edit(span[0], min(span[1], len(text)), "", "header_place"))
            continue
        if in_header and header.title is None and header.headline is None and _is_title_like(s):
            if "报告" in s or "总结" in s or "情况" in s:
                header.title = s
            else:
                header.headline = s
            seen_header.add(s)
            edits.append(Edit(span[0], min(span[1], len(text)), "", "header_title"))
            continue
        content_lines += 1
    return edits


def header_done(header: Header, content_lines: int) -> bool:
    """The header ends with the first line of body text."""
    return content_lines > 0


def _is_title_like(line: str) -> bool:
    if len(line) > 60 or _HEADING_START.match(line):
        return False
    if re.search(r"[。;:!?]", line) or line.count(",") > 1:
        return False
    return bool(re.search(r"[\u4e00-\u9fff]{4}", line))
