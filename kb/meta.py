"""Metadata inferred from a cleaned report's text: title, locality and its level, parent region, years."""

from __future__ import annotations

import re
import threading
import warnings
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

from kb.locality import Locality
from kb.locality import find_locality as locate
from kb.patterns import DATE_LINE, Header, iso_date

# Administrative suffix → level; longest first so that 街道 wins over a bare 道.
_SUFFIX_LEVEL = {"街道": "subdistrict", "镇": "town", "乡": "township", "区": "district", "县": "county"}
# Words ending in an administrative suffix that are not place names.
_NOT_NAMES = set(
    ["城区", "辖区", "社区", "园区", "景区", "片区", "小区", "新区", "高新区", "管理区", "开发区", "示范区", "试验区", "保护区", "自贸区", "街区", "校区", "城镇", "乡镇", "村镇", "集镇", "建制镇", "重点镇", "中心镇", "卫生镇", "特色镇", "强镇", "名镇", "百强镇", "城乡", "下乡", "家乡", "之乡", "各街道", "全街道", "本街道", "该街道"]
)
# Characters that never occur inside the place names we look for (function words, admin units); numerals
# do (三里屯, 十八里店).
_STOP_CHARS = set("的在和与及对为是了将把从向于以其各全我本该个等省市区县镇乡村街道委府会中上下内外年度第")
_CN_CHAR = r"[\u4e00-\u9fff]"
# Name endings of non-places: 依法治区, 上天梯管理区, 经济开发区, 高新区 …
_BAD_ENDING = re.compile(r"(治|管理|开发|示范|试验|保护|高新|自贸|工业|产业|物流|商务|旅游|风景|实验|先行)$")


@dataclass(frozen=True)
class Meta:
    """Inferred metadata of one report; unknown values are None (level 'unknown')."""

    title: str
    headline: str | None
    locality: str | None
    level: str
    region: str | None
    province: str | None
    year: int | None
    published: str | None
    place: Locality = Locality(None, "unknown", "unnamed")


def infer_meta(text: str, header: Header) -> Meta:
    """Infer a report's metadata from its cleaned text and the header lines cleaning removed."""
    head_text = "\n".join(filter(None, [header.title, header.headline, *header.place_lines]))
    place = locate(text, head_text)
    if place.status == "unnamed":
        # a name the table does not know (renamed, merged, or a typo) is shown, flagged unverified
        written, lvl = find_locality(text, "\n".join(filter(None, [head_text, _opening(text)])))
        if written:
            place = Locality(written, lvl, "unverified")
    locality, level = place.written, place.level
    region: str | None
    province: str | None
    if place.chain:
        region, province = "".join(place.chain[1:-1]) or None, place.chain[0]
    else:
        region, province = find_region(text + "\n" + head_text, locality, level)
    published = find_published(text, header)
    year = find_year(text, header.title, published)
    title = header.title or generated_title(region, locality, year)
    return Meta(title, header.headline, locality, level, region, province, year, published, place)


# The subject of the first sentence: "2023年,某某镇坚持…", "2022年以来,某某街道…".
_OPENING_SUBJECT = re.compile(
    r"^\s*(?:20\d\d\s*年(?:度|以来|来)?\s*[,，]?\s*)?(?:在[^,，。]{2,30}[,，]\s*)?([\u4e00-\u9fff]{2,6}?(?:街道|镇|乡))(?=[\u4e00-\u9fff])"
)


def _opening(text: str) -> str:
    """The name the report's first sentence opens with, if it is a township-level one."""
    m = _OPENING_SUBJECT.match(text.lstrip()[:160])
    return m.group(1) if m else ""


def generated_title(region: str | None, locality: str | None, year: int | None) -> str:
    place = (region or "") + (locality or "")
    return f"{place or '(地区不详)'}{f'{year}年' if year else ''}法治政府建设年度报告"


def _name_candidates(text: str) -> Counter[tuple[str, str]]:
    """(name, suffix) pairs for every suffix occurrence, with 2–4 character names before it."""
    counts: Counter[tuple[str, str]] = Counter()
    for suffix in _SUFFIX_LEVEL:
        for m in re.finditer(suffix, text):
            for n in (2, 3, 4):
                start = m.start() - n
                if start < 0:
                    break
                name = text[start : m.start()]
                if not re.fullmatch(f"{_CN_CHAR}{{{n}}}", name) or set(name) & _STOP_CHARS:
                    break  # a longer name would contain the same bad character
                if name + suffix in _NOT_NAMES or _BAD_ENDING.search(name):
                    continue
                counts[(name, suffix)] += 1
    return counts


def find_locality(text: str, head_text: str = "") -> tuple[str | None, str]:
    """The locality a regex reads from title lines, then from the body (used only where the gazetteer has
    no candidate: a name it does not know is returned flagged unverified)."""
    if head_text:
        cands = _name_candidates(head_text)
        # the last administrative unit in "汕头市龙湖区龙祥街道2023年…" is the reporting one
        def end_and_length(ns: tuple[str, str]) -> tuple[int, int]:
            at = head_text.rfind(ns[0] + ns[1])
            return at + len(ns[0] + ns[1]), len(ns[0])

        best = max(cands, key=end_and_length, default=None)
        if best:
            return best[0] + best[1], _SUFFIX_LEVEL[best[1]]
    return None, "unknown"


_cpca_lock = threading.Lock()


_NO_PLACE = frozenset({"县", "市辖区", "省直辖县级行政区划", "自治区直辖县级行政区划"})


@lru_cache(maxsize=4096)
def resolve_admin(place: str) -> tuple[str | None, str | None, str | None]:
    """(province, city, county) for a place string such as 江门市蓬江区 or 平桥区, via the cpca gazetteer."""
    with _cpca_lock, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import cpca

        row = cpca.transform([place]).iloc[0]

    def val(key: str) -> str | None:
        v = row.get(key)
        # cpca's placeholders for "no such level" (重庆市's counties sit under a city named 县) name no place
        return v if isinstance(v, str) and v and v not in _NO_PLACE else None

    if row.get("市") == "县" and val("区") is None:
        return None, None, None  # cpca's answer for any unknown "…县": 重庆市's placeholder, not a place
    return val("省"), val("市"), val("区")


@lru_cache(maxsize=1)
def _gazetteer_name_counts() -> Counter[str]:
    from importlib.resources import files

    lines = files("cpca").joinpath("resources/adcodes.csv").read_text(encoding="utf-8").splitlines()[1:]
    return Counter(line.split(",")[1] for line in lines if line.count(",") >= 1)


def _ambiguous(place: str) -> bool:
    """A bare county-level name that several cities share, with no city in the text to tell them apart."""
    if "市" in place or "省" in place:
        return False
    return _gazetteer_name_counts().get(place, 0) > 1


def find_region(text: str, locality: str | None, level: str) -> tuple[str | None, str | None]:
    """The parent region of the locality (city, or city+district for towns) and its province."""
    if not locality:
        return None, None
    prefixes: Counter[str] = Counter()
    admin = rf"(?:{_CN_CHAR}{{2,3}}?省)?(?:{_CN_CHAR}{{2,4}}?市)?(?:{_CN_CHAR}{{2,3}}?[区县])?"
    for m in re.finditer(rf"({admin}){re.escape(locality)}", text):
        if m.group(1):
            prefixes[m.group(1)] += 1
    for m in re.finditer(rf"(?:隶属|隶属于|位于|地处)({admin})", text):
        if m.group(1):
            prefixes[m.group(1)] += 1
    place = max(prefixes, key=lambda p: (len(p) > 0, prefixes[p], len(p)), default="")
    if not place and level not in ("district", "county"):
        return None, None  # the gazetteer knows counties, not towns: a bare town name would be a guess
    if _ambiguous(place or locality):
        return place or None, None  # 朝阳区 is in Beijing and in Changchun: say only what the text says
    province, city, county = resolve_admin(place or locality)
    if level in ("district", "county"):
        # a district's region is its city; the gazetteer knows it even when the text does not say
        return city, province
    parts = [p for p in (city, county) if p]
    if county and place and county[:-1] not in place:
        parts = [city] if city else []
    return ("".join(parts) or None), province


_YEAR = re.compile(r"(20\d\d)\s*年")


def find_published(text: str, header: Header) -> str | None:
    """Publication date: a date in the page header, else the signature date at the end of the report."""
    if header.dates:
        return header.dates[0]
    for line in reversed(text.rstrip().split("\n")[-4:]):
        m = DATE_LINE.match(line.strip())
        if m:
            return iso_date(m)
    return None


# A span such as 2021—2025年 (the outline's period) or a "today is …" widget names no report year.
_YEAR_SPAN = re.compile(r"20\d\d\s*(?:年\s*)?[—–\-~～至到]+\s*(20\d\d)\s*年")
_TODAY = re.compile(r"今天是[^\n]{0,30}")


_REPORTS_ON = re.compile(r"现将[^。;\n]{0,30}?(20\d\d)\s*年(?!\d)[^。;\n]{0,40}?(报告|汇报|总结)如下")
SCAN_OPENING = 1500  # the "现将…报告如下" sentence closes a report's preamble


def find_year(text: str, title: str | None, published: str | None) -> int | None:
    """The year reported on: from the title, else the opening sentence, else the year the body names most
    (20XX年度 twice; outline spans, page dates and years after publication not at all)."""
    if title:
        m = _YEAR.search(title)
        if m:
            return int(m.group(1))
    # the report says which year it reports on: "现将我镇2024年法治政府建设情况报告如下" (the opening also cites
    # other years: "在2023年工作基础上")
    m = _REPORTS_ON.search(text[:SCAN_OPENING])
    if m:
        return int(m.group(1))
    first = text.lstrip()[:40]
    m = re.match(r"\s*(20\d\d)\s*年(?!\d)", first) or re.search(r"(20\d\d)年(以来|度|,|全年)", first)
    if m:
        return int(m.group(1))
    limit = int(published[:4]) if published else None
    body = _TODAY.sub("", _YEAR_SPAN.sub("", text))
    years: Counter[int] = Counter()
    for y in _YEAR.finditer(body):
        year = int(y.group(1))
        if limit is None or year <= limit:
            years[year] += 2 if body.startswith("度", y.end()) else 1
    if years:
        return years.most_common(1)[0][0]
    if published:
        return int(published[:4]) - 1 if int(published[5:7]) <= 6 else int(published[:4])
    return None
