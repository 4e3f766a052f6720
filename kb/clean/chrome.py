"""Page chrome and header lines: removed from the text, their title, dates and places kept in a Header."""

from __future__ import annotations

import re

from kb.clean.edits import Edit
from kb.patterns import DATE_IN_LINE, DATE_LINE, PLACE_LINE, Header, iso_date

_CHROME = [
    re.compile(p)
    for p in (
        r"^(您|你)?(当前|现在)?(所在)?(的)?(当前)?(所在)?位置[:：]",  # 您当前的位置, 您所在的位置, 当前位置
        r"^首页\s*>",
        r"^(>>?|»|›)\s*\S",  # a breadcrumb's continuation (">> 政务公开 >> 法治政府工作报告")
        r"^[^。,;>»›]{1,20}(\s*(>>?|»|›)\s*[^。,;>»›]{1,20}){2,}$",  # 政务公开 > 法治政府建设 > 乡镇街道
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
        r"^(本|该|此)?(文件|政策|文档)?(已失效|已废止|已过期|失效|废止|现行有效|有效)$",  # a disclosure page's validity badge
        # an aggregator's cuts: "……(开头部分已省略650字)", "仅展示628字,全文共2002字"
        r"^[.…]*\s*[(（]?\s*(开头|前面|中间|以上|以下|后面)?部分(内容)?已省略\s*\d*\s*字?\s*[)）]?$",
        r"^(仅|只)(展示|显示|预览)(了)?\s*\d+\s*字",
    )
]
# A government page's metadata block, however it is laid out: "索引号: …", "索 引 号: | … | 公开目录: | … |",
# "| [ 主题分类 ] | 公安、安全 | [ 发布日期 ] | 2026-02-11 |". Read with the layout characters taken out.
_LAYOUT = re.compile(r"[\s|\[\]【】•·●◆■▪*/-]")
_LABELS = (r"(信息索引号|审核程序|公开时限|公开形式|责任部门|责任科室|文件编号|索引号|主题分类|体裁分类|服务对象分类|组配分类|发布机构|发文机关|发文字号|文号|成文日期|发文日期|印发日期|公开日期"
           r"|发布日期|生效日期|废止日期"
           r"|有效性|时效性|备注|公开目录|公开方式|公开范围|主题词|信息来源|来源|名称|标题|所属机构|信息分类|公文生成日期|内容概述)")
_META_LABEL = re.compile("^" + _LABELS)
_ANY_LABEL = re.compile(_LABELS)
# Labels no report sentence starts with: a row that glues its value on ("发布机构屏边县新华乡人民政府", "时效性有效")
_GLUED_LABEL = re.compile(r"^(索引号|主题分类|体裁分类|发布机构|发文机关|发文字号|文号|成文日期|发文日期|印发日期|公开日期|发布日期"
                          r"|生效日期|废止日期|有效性"
                          r"|时效性|公开方式|公开范围|所属机构|公文生成日期)")
# The issuing body a metadata block names: kept as a place line, the block's only word on where the report is from.
_ISSUER = re.compile(r"(发布机构|发文机关|所属机构)[:：]?")
# Site navigation: a row of short menu items ("首页 政务公开 政务服务 政民互动 …"), or the accessibility and
# portal links over it (关怀版, 无障碍, 中国政府网 | …人民政府网).
_NAV_ITEM = re.compile(r"^(首页|政务公开|政务服务|政民互动|互动交流|\S{0,6}信息公开(目录|专栏)?|网站地图|新闻中心|走进\S{1,6}"
                       r"|魅力\S{1,6}|数据发布|招商引资|部门街镇|专题专栏|办事服务|公众参与|政策文件"
                       r"|搜索|站内搜索|高级搜索|全文检索|检索|搜索位置|匹配度|排序|标题|正文|全文|内容"  # the site's search form
                       r"|联系我们|联络我们|关于我们|网站声明|免责声明|隐私政策|友情链接|相关链接|相关文章|相关阅读|推荐阅读"
                       r"|相关词条|热门词条|热点推荐|热门文章)$")  # and the footer's links
_PORTAL = re.compile(r"^(关怀版|长者版|适老版|无障碍(浏览|阅读)?|简体版?|繁体版?|English)$|政府网$|门户网站$")
_CONTROL = re.compile(r"^[\[【]*(打印(本页|此页)?|关闭(窗口|本页)?|字[体号][:：]?|[大中小]|默认|收藏|分享(到)?|返回顶部"
                      r"|发送(至|到)邮箱|推荐给(朋友|好友)|纠错)[\]】]*$")
# A page's byline row, label first: "日期:2023年05月11日 作者:… 来源:… 点击:[]", "浏览:5072次 时间:2022-12-07 来源:本站",
# "文章来源:司法局 更新时间:2021/03/29". Its date is the page's.
_BYLINE = re.compile(r"^(文章|信息)?(来源|出处|日期|时间|发布时间|更新时间|发表时间|作者|点击|点击数|点击量|浏览|浏览量|浏览次数"
                     r"|阅读|阅读量|阅读数|访问量|发布人|发布者|供稿|撰稿)[:：]")
# The site's "today is" widget: the day the page was saved, not a date of the report (今天是:2019年10月31日 星期三,
# 某某区人民政府 2019年12月3日星期二): removed, its date not kept.
_TODAY_WIDGET = re.compile(r"^(今天是|今日是|当前时间)|20\d\d\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日\s*(星期|周)[一二三四五六日天]")
# A list marker a page puts before its chrome ("- 分享到 :", "• 索 引 号"), read past when matching it.
# A line holding a sentence: report text, never page furniture.
_SENTENCE = re.compile(r"[。;!?]")
_LIST_MARK = re.compile(r"^[-•·*▪◆■●]+\s*")
_HEADING_START = re.compile(r"^([一二三四五六七八九十]+[、.]|\([一二三四五六七八九十]+\)|\d+[.、])")
# A speech's dateline, on one line or two, under the title of a report made to a people's congress:
# "2025年3月17日在某某县第十六届人民代表大会" / "常务委员会第二十四次会议上". Its date is the report's.
_DATELINE = re.compile(rf"^(({DATE_IN_LINE.pattern})\s*在[^。;!?:]{{2,60}}|[^。;!?:,]{{2,40}}会议上)$")
_DOC_FILE = re.compile(r"\.(docx?|wps|pdf|txt)$", re.IGNORECASE)
# Only the first lines of a page hold a title, a date or a place line.
HEADER_LINES = 6


def _keep_facts(line: str, header: Header) -> None:
    """What a chrome line says of the report: its dates, and the issuing body a metadata row names."""
    for m in DATE_IN_LINE.finditer(line):
        d = iso_date(m)
        if d:
            header.dates.append(d)
    issuer = issuer_of(line)
    if issuer:
        header.place_lines.append(issuer)


def _empty_label(line: str) -> str | None:
    """A metadata label whose value the page sets on the next line ("• 发布机构:" then "澧浦镇")."""
    bare = _LAYOUT.sub("", line)
    m = _META_LABEL.match(bare)
    return m.group(0) if m and bare[m.end():] in (":", "：") else None


def _is_label_value(line: str) -> bool:
    """A short line that can be a label's value: no sentence, no label, no report title (报告, 总结)."""
    return (len(line) <= 40 and not _SENTENCE.search(line) and not _META_LABEL.match(_LAYOUT.sub("", line))
            and "报告" not in line and "总结" not in line)


def strip_chrome(text: str, header: Header) -> list[Edit]:
    """Remove web-page chrome and repeated header lines; keep the title, dates and places in `header`."""
    edits: list[Edit] = []
    pos = 0
    seen_header: set[str] = set()
    header_lines = 0  # lines kept before the body, which ends the header
    body = False
    place_before = ""
    after_headline = False  # the line before was taken as the headline
    pending: str | None = None  # a metadata label whose value is on the next line
    for line in text.split("\n"):
        span = (pos, pos + len(line) + 1)
        pos += len(line) + 1
        s = line.strip()
        if not s:
            continue
        label, pending = pending, None
        if label and _is_label_value(s):
            _keep_facts(f"{label}:{s}", header)
            edits.append(Edit(span[0], min(span[1], len(text)), "", "chrome"))
            continue
        # the line just before, when it was a place or issuing body ("" after any other line, chrome included)
        prev_place, place_before = place_before, ""
        headline_before, after_headline = after_headline, False
        in_header = not body and header_lines < HEADER_LINES
        if in_header and _TODAY_WIDGET.search(s) and not _SENTENCE.search(s) and len(s) <= 40:
            edits.append(Edit(span[0], min(span[1], len(text)), "", "chrome"))
            continue
        bare = _DOC_FILE.sub("", _LIST_MARK.sub("", s))  # a document-sharing page's file name: its title
        # a line of marks only ("-"), or in the header a bare ASCII word (the page template's "Document")
        stray = not re.search(r"\w", s) or (in_header and bare.isascii() and not re.search(r"\d", bare) and len(bare) <= 30)
        if stray or any(p.search(bare) for p in _CHROME) or is_page_furniture(s):
            _keep_facts(s, header)
            pending = _empty_label(s)
            edits.append(Edit(span[0], min(span[1], len(text)), "", "chrome"))
            continue
        body = body or is_body_line(s)  # chrome aside ("【字体:" ends with a colon too)
        in_header = in_header and not body
        if in_header and s in seen_header:
            edits.append(Edit(span[0], min(span[1], len(text)), "", "duplicate_line"))
            continue
        if in_header and (DATE_LINE.match(s) or _DATELINE.match(s)):
            _keep_facts(s, header)
            seen_header.add(s)
            edits.append(Edit(span[0], min(span[1], len(text)), "", "header_date"))
            continue
        if in_header and PLACE_LINE.match(s) and len(s) <= 24:
            header.place_lines.append(s)
            seen_header.add(s)
            edits.append(Edit(span[0], min(span[1], len(text)), "", "header_place"))
            place_before = s
            continue
        # the end of a title broken inside a phrase ("关于某某区2025年度法治政府" / "建设情况的报告"), too short alone
        tail = headline_before and len(bare) < 8
        if in_header and header.title is None and _is_title_like(bare) and (len(bare) >= 8 or tail):
            if "报告" in s or "总结" in s or "情况" in s:
                # a title set on two lines: the issuing body, then "2022年度…报告" (or "关于…")
                if tail:
                    header.title, header.headline = f"{header.headline}{bare}", None
                else:
                    header.title = prev_place + bare if prev_place and re.match(r"(20\d\d|关于)", bare) else bare
            elif header.headline is None:
                header.headline = bare
                after_headline = True
            else:
                header_lines += 1
                continue
            seen_header.add(s)
            edits.append(Edit(span[0], min(span[1], len(text)), "", "header_title"))
            continue
        if in_header and _is_title_like(bare) and len(bare) >= 8 and ("报告" in bare or "总结" in bare):
            # the title again, worded differently (a page's heading, then the document's own title line)
            seen_header.add(s)
            edits.append(Edit(span[0], min(span[1], len(text)), "", "duplicate_line"))
            continue
        header_lines += 1
    return edits


def issuer_of(line: str) -> str | None:
    """The issuing body a metadata row names (发布机构: 某某县某某乡人民政府), when it is a place or a government."""
    bare = _LAYOUT.sub("", line)
    m = _ISSUER.search(bare)
    if m is None:
        return None
    rest = bare[m.end():].lstrip(":：")
    nxt = _ANY_LABEL.search(rest)
    value = rest[: nxt.start()] if nxt else rest
    return value if PLACE_LINE.match(value) and len(value) <= 24 else None


def is_page_furniture(line: str) -> bool:
    """A metadata-block row, a navigation row or a portal link line: no report says these."""
    if _SENTENCE.search(line):
        return False
    bare = _LAYOUT.sub("", line)
    if _BYLINE.match(bare) and len(line) <= 100:
        return True
    label = _META_LABEL.match(bare)
    # the label with its colon, or set off as a table cell or list item ("| [ 主题分类 ] |", "• 索 引 号")
    if label and (bare[label.end():label.end() + 1] in (":", "：") or bare != line.replace(" ", "")):
        return True
    if _GLUED_LABEL.match(bare) and len(bare) <= 40:
        return True
    items = [i for i in re.split(r"[\s|]+", line) if re.search(r"\w", i)]  # list marks ("-", "•") aside
    if not items or len(line) > 80:
        return False
    if all(_PORTAL.search(i) or _NAV_ITEM.match(i) or _CONTROL.match(i) for i in items):
        return True
    return len(items) >= 4 and sum(bool(_NAV_ITEM.match(i)) for i in items) * 2 >= len(items)


def is_body_line(line: str) -> bool:
    """A line of the report's body, which ends the header: a sentence, a numbered heading, an addressee line
    (区委、区政府:) or a long line. A short line of the page (a section label, a site name) does not."""
    return (len(line) > 60 or bool(_SENTENCE.search(line)) or bool(_HEADING_START.match(line))
            or line.endswith((":", "：")))


def _is_title_like(line: str) -> bool:
    if len(line) > 60 or _HEADING_START.match(line):
        return False
    if re.search(r"[。;:!?]", line) or line.count(",") > 1:
        return False
    return bool(re.search(r"[\u4e00-\u9fff]{4}", line))
