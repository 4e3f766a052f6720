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
# A government page's metadata block, however it is laid out: "索引号: …", "索 引 号: | … | 公开目录: | … |",
# "| [ 主题分类 ] | 公安、安全 | [ 发布日期 ] | 2026-02-11 |". Read with the layout characters taken out.
_LAYOUT = re.compile(r"[\s|\[\]【】•·●◆■▪*/-]")
_META_LABEL = re.compile(
    r"^(索引号|主题分类|体裁分类|服务对象分类|组配分类|发布机构|发文机关|发文字号|文号|成文日期|发布日期|生效日期|废止日期"
    r"|有效性|备注|公开目录|公开方式|公开范围|主题词|信息来源|来源|名称|标题|所属机构|信息分类|公文生成日期|内容概述)"
)
# Site navigation: a row of short menu items ("首页 政务公开 政务服务 政民互动 …"), or the accessibility and
# portal links over it (关怀版, 无障碍, 中国政府网 | …人民政府网).
_NAV_ITEM = re.compile(r"^(首页|政务公开|政务服务|政民互动|互动交流|信息公开|网站地图|新闻中心|走进\S{1,6}|魅力\S{1,6}|数据发布"
                       r"|招商引资|部门街镇|专题专栏|办事服务|公众参与|政策文件|政府信息公开)$")
_PORTAL = re.compile(r"^(关怀版|长者版|适老版|无障碍(浏览|阅读)?|简体版?|繁体版?|English)$|政府网$|门户网站$")
_CONTROL = re.compile(r"^[\[【]*(打印(本页|此页)?|关闭(窗口|本页)?|字[体号][:：]?|[大中小]|默认|收藏|分享(到)?|返回顶部)[\]】]*$")
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
        if any(p.search(s) for p in _CHROME) or is_page_furniture(s):
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


def is_page_furniture(line: str) -> bool:
    """A metadata-block row, a navigation row or a portal link line: no report says these."""
    if re.search(r"[。;!?]", line):
        return False
    bare = _LAYOUT.sub("", line)
    label = _META_LABEL.match(bare)
    # the label with its colon, or set off as a table cell or list item ("| [ 主题分类 ] |", "• 索 引 号")
    if label and (bare[label.end():label.end() + 1] in (":", "：") or bare != line.replace(" ", "")):
        return True
    items = [i for i in re.split(r"[\s|]+", line) if i]
    if not items or len(line) > 80:
        return False
    if all(_PORTAL.search(i) or _NAV_ITEM.match(i) or _CONTROL.match(i) for i in items):
        return True
    return len(items) >= 4 and sum(bool(_NAV_ITEM.match(i)) for i in items) * 2 >= len(items)


def header_done(header: Header, content_lines: int) -> bool:
    """The header ends with the first line of body text."""
    return content_lines > 0


def _is_title_like(line: str) -> bool:
    if len(line) > 60 or _HEADING_START.match(line):
        return False
    if re.search(r"[。;:!?]", line) or line.count(",") > 1:
        return False
    return bool(re.search(r"[\u4e00-\u9fff]{4}", line))
