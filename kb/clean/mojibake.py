"""GBK byte-shift mojibake: re-decode `?`-led garbled runs and recover lost characters from their glosses."""

from __future__ import annotations

import contextlib
import re
from functools import lru_cache

from kb.clean import lexicon
from kb.clean.edits import Edit

LOST_MARK = "〓"  # the typesetter's mark for a character that could not be recovered

_HAS_TONE = re.compile(rf"[{lexicon.TONE_VOWELS}]")
# A lost character whose gloss survived without its opening parenthesis: `?shí)`.
_ORPHAN_GLOSS = re.compile(rf"\?({lexicon.PINYIN})\)")
# Full-width punctuation that scraped pages fold to ASCII; unfolded again to re-encode mojibake as GBK.
_UNFOLD = {",": "，", "(": "（", ")": "）", ":": "：", ";": "；", "!": "！"}


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


@lru_cache(maxsize=4096)
def _split_candidates(ch: str) -> tuple[tuple[str, str], ...]:
    """Character pairs x y that `ch` = [lead(x), trail(y)] stands for, had the undecodable middle pair
    [trail(x), lead(y)] been dropped by the page's decoder (which shifted GBK text does now and then)."""
    raw = ch.encode("gbk", errors="replace")
    if len(raw) != 2:
        return ()
    return tuple(
        (x, y)
        for t, x in _chars_with_lead(raw[0]).items()
        for lead, y in _chars_with_trail(raw[1]).items()
        if _undecodable(t, lead)
    )


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
    left_of, right_of = _Scores(left, ""), _Scores("", right)
    for x, y in cands:
        a = left_of(x)
        if a <= best_score:  # min(a, …) cannot beat the best: the pair-dependent score is not needed
            continue
        sc = min(a, max(right_of(y), lexicon.context_score(y, x, "")))
        if sc > best_score:
            best, best_score = x + y, sc
    return best


class _Scores:
    """lexicon.context_score of characters against one fixed context, each character scored once: the
    candidates of one position are thousands of pairs over a few hundred distinct characters."""

    def __init__(self, left: str, right: str) -> None:
        self.left, self.right, self.memo = left, right, dict[str, int]()

    def __call__(self, ch: str) -> int:
        got = self.memo.get(ch)
        if got is None:
            got = self.memo[ch] = lexicon.context_score(ch, self.left, self.right)
        return got


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
            left_of, right_of = _Scores(left, ""), _Scores("", right)
            for x, y in _split_candidates(out[i]):
                sc = min(left_of(x), right_of(y))
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
