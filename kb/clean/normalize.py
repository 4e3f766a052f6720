"""Normalization passes: invisible characters, pinyin glosses, traditional → simplified, punctuation, spaces,
blank lines."""

from __future__ import annotations

import re
import unicodedata

from kb.clean import lexicon
from kb.clean.edits import Edit

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_GLOSS = re.compile(rf"(?<=[{_CJK}])\(({lexicon.PINYIN})\)")
_ODD_SPACES = re.compile(r"[\u00a0\u1680\u2000-\u200b\u202f\u205f\u3000\ufeff\t]+")


# Characters that show nothing but change what is shown or matched: zero-width spaces and joiners, the
# left-to-right and right-to-left marks, the bidi embeddings, overrides and isolates (a title's RLO reverses
# the rest of its table cell: HTML elements do not isolate bidi), a byte-order mark (decoding took the file's
# own, so any left is stray: pasted pieces, concatenated files) and the C0 control characters (NUL …) but
# tab and line feed (CR is a line feed by now). A report has no use for any of them: ZWJ only matters inside
# emoji sequences, which reports do not have.
_INVISIBLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]+")
# ... of which vertical tab, form feed and the file, group and record separators end a line (a PDF's page
# break is a form feed): they become one, lest the words on either side run together.
_BREAKS = re.compile(r"[\x0b\x0c\x1c-\x1e]")


def drop_invisible(text: str) -> list[Edit]:
    """Remove invisible and control characters (a line-ending one becomes a line feed); logged as `invisible`."""
    return [
        Edit(m.start(), m.end(), "\n" if _BREAKS.search(m.group()) else "", "invisible")
        for m in _INVISIBLE.finditer(text)
    ]


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


def drop_blank_lines(text: str) -> list[Edit]:
    """One paragraph per line: blank lines and edge newlines go (not logged, they carry nothing)."""
    return [
        Edit(m.start(), m.end(), "\n" if m.group(1) else "", "")
        for m in re.finditer(r"\A\n+|\n+\Z|(\n)\n+", text)
    ]
