"""Cleaning: a pure function from a scraped report's text to clean text, a repair log and header facts."""

from __future__ import annotations

import contextlib
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache

from kb import lexicon
from kb.model import Repair
from kb.textedit import Edit, EditableText

LOST_MARK = "〓"  # the typesetter's mark for a character that could not be recovered

_TONE_VOWELS = "āáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜ"
_PINYIN = rf"[a-zü{_TONE_VOWELS}ê]{{1,7}}"
_HAS_TONE = re.compile(rf"[{_TONE_VOWELS}]")
_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_GLOSS = re.compile(rf"(?<=[{_CJK}])\(({_PINYIN})\)")
# A lost character whose gloss survived without its opening parenthesis: `?shí)`.
_ORPHAN_GLOSS = re.compile(rf"\?({_PINYIN})\)")
# Full-width punctuation that scraped pages fold to ASCII; unfolded again to re-encode mojibake as GBK.
_UNFOLD = {",": "，", "(": "（", ")": "）", ":": "：", ";": "；", "!": "！"}
_ODD_SPACES = re.compile(r"[\u00a0\u1680\u2000-\u200b\u202f\u205f\u3000\ufeff\t]+")


@dataclass
class Header:
    """Facts found in the page chrome and header lines before they were removed from the text."""

    title: str | None = None
    headline: str | None = None
    dates: list[str] = field(default_factory=list)
    place_lines: list[str] = field(default_factory=list)


@dataclass
class Cleaned:
    """The result of cleaning: text, the log of repairs (offsets into text) and header facts."""

    text: str
    repairs: list[Repair]
    header: Header


def clean(raw: str) -> Cleaned:
    """Repair a scraped report: mojibake, pinyin glosses, traditional characters, punctuation, spaces, chrome."""
    doc = EditableText(raw.replace("\r\n", "\n").replace("\r", "\n"))
    doc.apply(repair_mojibake(doc.text))
    doc.apply(remove_glosses(doc.text))
    doc.apply(simplify(doc.text))
    doc.apply(fold_punctuation(doc.text))
    doc.apply(fix_punctuation_runs(doc.text))
    doc.apply(normalize_spaces(doc.text))
    header = Header()
    doc.apply(strip_chrome(doc.text, header))
    doc.apply(drop_blank_lines(doc.text))
    return Cleaned(doc.text, doc.repairs, header)


# --- GBK byte-shift mojibake ------------------------------------------------------------------------


def _is_run_char(ch: str) -> bool:
    if ch in _UNFOLD:
        return True
    if ord(ch) < 128 or ch == LOST_MARK:
        return False
    try:
        ch.encode("gbk")
    except UnicodeEncodeError:
        return False
    return True


def _gbk(text: str) -> bytes:
    return "".join(_UNFOLD.get(c, c) for c in text).encode("gbk")


_GAP_BASE = 0xF0000  # private-use code points stand for a byte pair the page's decoder dropped
_MAX_GAPS = 3


def _decode_shifted(lead: int, body: bytes) -> tuple[str, int | None] | None:
    """Decode lead+body as GBK; return (text, dangling last lead byte or None), or None if it is not GBK.
    A pair that is no GBK character becomes a gap marker: the page dropped the two bytes between its
    halves, and `_fill_dropped_pairs` works out what they were."""
    data = bytes([lead]) + body
    out: list[str] = []
    gaps = 0
    i = 0
    while i < len(data):
        b = data[i]
        if b < 0x80:
            out.append(chr(b))
            i += 1
            continue
        if i + 1 >= len(data):
            return "".join(out), b
        try:
            out.append(data[i : i + 2].decode("gbk"))
        except UnicodeDecodeError:
            gaps += 1
            if gaps > _MAX_GAPS or data[i + 1] < 0x40:
                return None
            out.append(chr(_GAP_BASE + (b << 8 | data[i + 1])))
        i += 2
    return "".join(out), None


def _lost_byte_candidates() -> list[int]:
    # The byte lost before a shifted run is most often the first half of CJK punctuation (row A1:
    # ideographic space, 、 。 “ ” …); other lead bytes are tried after it.
    return [0xA1, 0xA3, *[b for b in range(0x81, 0xFF) if b not in (0xA1, 0xA3)]]


def _restore_lost(dangling: int | None, syllable: str, left: str, right: str) -> str | None:
    """Recover a character of which at most its GBK lead byte survived, from its pinyin gloss and context."""
    if dangling is not None:
        cands = []
        for trail in range(0x40, 0xFF):
            try:
                ch = bytes([dangling, trail]).decode("gbk")
            except UnicodeDecodeError:
                continue
            if syllable in lexicon.readings(ch):
                cands.append(ch)
        if len(cands) == 1:
            return cands[0]
    else:
        cands = lexicon.chars_with_reading(syllable)
    best, freq = lexicon.best_in_context(cands, left, right)
    return best if freq > 0 else None


def repair_mojibake(text: str) -> list[Edit]:
    """Find `?`-led GBK byte-shift runs, re-decode them and restore lost characters from surviving glosses."""
    edits: list[Edit] = []
    i = 0
    while True:
        p = text.find("?", i)
        if p < 0:
            return edits
        edit = _repair_run_at(text, p) or _repair_orphan_gloss_at(text, p)
        if edit is None:
            i = p + 1
            continue
        edits.append(edit)
        i = edit.end


def _repair_run_at(text: str, p: int) -> Edit | None:
    j = p + 1
    while j < len(text) and _is_run_char(text[j]):
        j += 1
    run = text[p + 1 : j]
    if not run:
        return None
    only_punct = all(c in _UNFOLD for c in run)
    body = _gbk(run)
    decodings = []
    for rank, lead in enumerate(_lost_byte_candidates()):
        decoded = _decode_shifted(lead, body)
        if decoded is not None:
            gaps = sum(1 for c in decoded[0] if ord(c) >= _GAP_BASE)
            decodings.append((gaps, rank, decoded))
    for _, _, (fixed, dangling) in sorted(decodings)[:3]:
        end = j
        if dangling is not None and j < len(text) and 0x40 <= ord(text[j]) <= 0x7E and text[j] not in "?()":
            # the run's last lead byte pairs with an ASCII byte that was printed as a letter: `七M` → 進
            try:
                fixed += bytes([dangling, ord(text[j])]).decode("gbk")
                dangling, end = None, j + 1
            except UnicodeDecodeError:
                pass
        if only_punct and end == j:
            continue  # a real `?` before a comma or bracket, unless a letter completes a character: `?,F`
        fixed = _fill_dropped_pairs(fixed)
        if fixed.startswith("\u3000）"):
            # the opening bracket and the numeral went with dropped pairs; the heading shape survives
            fixed = "\u3000（" + LOST_MARK + fixed[1:]
        kind = "lost_char" if LOST_MARK in fixed else "mojibake"
        if dangling is not None:
            m = _ORPHAN_GLOSS.match(text, end)
            if m:
                restored = _restore_lost(dangling, m.group(1), fixed, text[m.end() : m.end() + 3])
                fixed += restored or LOST_MARK
                end = m.end()
                kind = "mojibake" if restored else "lost_char"
            else:
                if end < len(text) and text[end] == "?":
                    end += 1  # the lost character's second byte and the next byte printed as `?`
                fixed += LOST_MARK
                kind = "lost_char"
        if lexicon.plausibility(fixed.strip(LOST_MARK)) <= lexicon.plausibility(run) + 1.0:
            continue
        return Edit(p, end, fixed, kind)
    return None


_NUMERALS = "一二三四五六七八九十"


@lru_cache(maxsize=1)
def _decodable_pairs() -> frozenset[int]:
    ok = set()
    for a in range(0x81, 0xFF):
        for b in range(0x40, 0xFF):
            try:
                bytes([a, b]).decode("gbk")
            except UnicodeDecodeError:
                continue
            ok.add(a << 8 | b)
    return frozenset(ok)


def _undecodable(t: int, lead: int) -> bool:
    return (t << 8 | lead) not in _decodable_pairs()


@lru_cache(maxsize=256)
def _chars_with_lead(lead: int) -> dict[int, str]:
    out = {}
    for t in range(0x40, 0xFF):
        with contextlib.suppress(UnicodeDecodeError):
            out[t] = bytes([lead, t]).decode("gbk")
    return out


@lru_cache(maxsize=256)
def _chars_with_trail(trail: int) -> dict[int, str]:
    out = {}
    for lead in range(0x81, 0xFF):
        with contextlib.suppress(UnicodeDecodeError):
            out[lead] = bytes([lead, trail]).decode("gbk")
    return out


def _split_candidates(ch: str) -> list[tuple[str, str]]:
    """Character pairs x y that `ch` = [lead(x), trail(y)] stands for, had the undecodable middle pair
    [trail(x), lead(y)] been dropped by the page's decoder (which shifted GBK text does now and then)."""
    raw = ch.encode("gbk", errors="replace")
    if len(raw) != 2:
        return []
    return [
        (x, y)
        for t, x in _chars_with_lead(raw[0]).items()
        for lead, y in _chars_with_trail(raw[1]).items()
        if _undecodable(t, lead)
    ]


def _gap_candidates(code: int) -> list[tuple[str, str]]:
    lead, trail = code >> 8, code & 0xFF
    return [
        (x, y)
        for t, x in _chars_with_lead(lead).items()
        for first, y in _chars_with_trail(trail).items()
        if _undecodable(t, first)
    ]


def _best_pair(cands: list[tuple[str, str]], left: str, right: str) -> str | None:
    """The pair of characters that fits the heading shape `（N）` or joins words on both sides."""
    if re.search(f"（[{_NUMERALS}]$", left):
        closing = [y for x, y in cands if x == "）"]
        if closing:
            return "）" + max(closing, key=lambda y: lexicon.context_score(y, "", right))
    best, best_score = None, 0
    for x, y in cands:
        sc = min(
            lexicon.context_score(x, left, ""),
            max(lexicon.context_score(y, "", right), lexicon.context_score(y, x, "")),
        )
        if sc > best_score:
            best, best_score = x + y, sc
    return best


def _fill_dropped_pairs(fixed: str) -> str:
    """Undo dropped byte pairs inside a re-decoded run, where the heading shape or the dictionary says so."""
    out = list(fixed)
    i = 0
    while i < len(out):
        left = "".join(out[max(0, i - 3) : i])
        right = "".join(out[i + 1 : i + 4])
        if ord(out[i]) >= _GAP_BASE:
            pair = _best_pair(_gap_candidates(ord(out[i]) - _GAP_BASE), left, right)
            out[i : i + 1] = list(pair) if pair else [LOST_MARK]
            i += len(pair) if pair else 1
            continue
        is_cjk = "\u4e00" <= out[i] <= "\u9fff"
        if left.endswith("（") and is_cjk:
            if out[i] in _NUMERALS:
                i += 1
                continue
            cands = _split_candidates(out[i])
            heading = [x + y for x, y in cands if x in _NUMERALS and y == "）"]
            if heading:
                out[i : i + 1] = list(heading[0])
                i += 2
                continue
        if is_cjk and right and lexicon.context_score(out[i], left, right) == 0:
            # only a character that joins no word with its neighbours is suspect; its split must join both
            best, best_score = None, 0
            for x, y in _split_candidates(out[i]):
                sc = min(lexicon.context_score(x, left, ""), lexicon.context_score(y, "", right))
                if sc > best_score:
                    best, best_score = x + y, sc
            if best:
                out[i : i + 1] = list(best)
                i += 2
                continue
        i += 1
    return "".join(out)


def _repair_orphan_gloss_at(text: str, p: int) -> Edit | None:
    m = _ORPHAN_GLOSS.match(text, p)
    if not m or not _HAS_TONE.search(m.group(1)):
        return None
    # earlier lost characters in the same stretch are not context
    left = _ORPHAN_GLOSS.sub("", text[max(0, p - 24) : p])[-4:]
    nxt = _ORPHAN_GLOSS.match(text, m.end())
    right_start = nxt.end() if nxt else m.end()
    right = text[right_start : right_start + 3]
    restored = _restore_lost(None, m.group(1), left, right)
    if restored:
        return Edit(p, m.end(), restored, "lost_char_restored")
    if nxt:
        # the next lost character may complete the word on its own: judge this one after it is known
        after = _restore_lost(None, nxt.group(1), left, right)
        if after and lexicon.bridges_word(left, after):
            return Edit(p, m.end(), "", "junk_gloss_dropped")
    elif lexicon.bridges_word(left, right):
        return Edit(p, m.end(), "", "junk_gloss_dropped")
    return Edit(p, m.end(), LOST_MARK, "lost_char")


# --- glosses, script, punctuation, spaces -------------------------------------------------------------


def remove_glosses(text: str) -> list[Edit]:
    """Drop `(pinyin)` glosses written after a character, keeping real parentheses such as `(一)`."""
    edits = []
    for m in _GLOSS.finditer(text):
        syllable = m.group(1)
        prev = text[m.start() - 1]
        readings = lexicon.readings(prev)
        # the reading of the character before it, or (for a character repaired into another one) at
        # least one valid tone-marked syllable — never a word like (zhífǎ)
        if syllable in readings or syllable in {_strip_tone(r) for r in readings} or lexicon.is_syllable(syllable):
            edits.append(Edit(m.start(), m.end(), "", "pinyin_gloss"))
    return edits


def _strip_tone(syllable: str) -> str:
    decomposed = unicodedata.normalize("NFD", syllable)
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if unicodedata.category(c) != "Mn"))


def simplify(text: str) -> list[Edit]:
    """Traditional → simplified, one edit per run of changed characters."""
    simp = lexicon.to_simplified(text)
    if simp == text:
        return []
    if len(simp) != len(text):
        return _diff_edits(text, simp, "traditional")
    edits = []
    i = 0
    while i < len(text):
        if text[i] == simp[i]:
            i += 1
            continue
        j = i
        while j < len(text) and text[j] != simp[j]:
            j += 1
        edits.append(Edit(i, j, simp[i:j], "traditional"))
        i = j
    return edits


def _diff_edits(old: str, new: str, kind: str) -> list[Edit]:
    import difflib

    sm = difflib.SequenceMatcher(None, old, new, autojunk=False)
    return [Edit(i1, i2, new[j1:j2], kind) for op, i1, i2, j1, j2 in sm.get_opcodes() if op != "equal"]


_FULLWIDTH = re.compile(r"[\uff01-\uff5e]")


def fold_punctuation(text: str) -> list[Edit]:
    """Full-width ASCII forms (，（）：１Ａ) → ASCII, the corpus's canonical form for headings like `(一)`."""
    return [
        Edit(m.start(), m.end(), unicodedata.normalize("NFKC", m.group()), "punctuation")
        for m in _FULLWIDTH.finditer(text)
    ]


# `,,` `,、` `,。` and longer runs: the scraper doubled a comma into each mark, so the other mark wins
# (`一,、` is the heading `一、`); among several other marks the strongest is kept.
_PUNCT_RUN = re.compile(r"[,、。;:!?]{2,}")
_STRENGTH = {"?": 6, "!": 6, "。": 5, ";": 4, ":": 3, ",": 2, "、": 1}


def fix_punctuation_runs(text: str) -> list[Edit]:
    """Collapse doubled or mixed punctuation to the one mark that was meant."""
    edits = []
    for m in _PUNCT_RUN.finditer(text):
        run = m.group()
        if set(run) <= {"?", "!"} or run in ("...", "。。。"):
            continue  # emphatic ?! runs are the author's, not damage
        others = [c for c in run if c != ","]
        keep = max(others, key=lambda c: _STRENGTH[c]) if others else ","
        edits.append(Edit(m.start(), m.end(), keep, "punctuation"))
    return edits


def normalize_spaces(text: str) -> list[Edit]:
    """NBSP, ideographic and other odd spaces → one ASCII space inside a line, nothing at its ends."""
    edits: list[Edit] = []
    pos = 0
    for line in text.split("\n"):
        new = re.sub(" {2,}", " ", _ODD_SPACES.sub(" ", line)).strip(" ")
        if new != line:
            edits += [Edit(pos + e.start, pos + e.end, e.after, e.kind) for e in _diff_edits(line, new, "whitespace")]
        pos += len(line) + 1
    return edits


# --- page chrome ------------------------------------------------------------------------------------

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
_DATE_IN_LINE = re.compile(r"(20\d\d|19\d\d)\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?")
DATE_LINE = re.compile(r"^(20\d\d|19\d\d)\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$")
_HEADING_START = re.compile(r"^([一二三四五六七八九十]+[、.]|\([一二三四五六七八九十]+\)|\d+[.、])")
PLACE_LINE = re.compile(r"^[\u4e00-\u9fff]{2,24}(省|市|区|县|镇|乡|街道|街道办事处|人民政府|委员会)$")
# Only the first lines of a page hold a title, a date or a place line.
HEADER_LINES = 6


def iso_date(m: re.Match[str]) -> str | None:
    year, month, day = int(m.group(1)), int(m.group(2)), int(m.group(3))
    if 1 <= month <= 12 and 1 <= day <= 31:
        return f"{year:04d}-{month:02d}-{day:02d}"
    return None


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
            for m in _DATE_IN_LINE.finditer(s):
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


def drop_blank_lines(text: str) -> list[Edit]:
    """One paragraph per line: blank lines and edge newlines go (not logged, they carry nothing)."""
    return [
        Edit(m.start(), m.end(), "\n" if m.group(1) else "", "")
        for m in re.finditer(r"\A\n+|\n+\Z|(\n)\n+", text)
    ]
