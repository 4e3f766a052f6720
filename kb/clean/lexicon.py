"""Character and word statistics (jieba's bundled dictionary, as shipped) and pinyin readings, for judging repairs."""

from __future__ import annotations

import math
import threading
import warnings
from functools import lru_cache

import opencc

_lock = threading.Lock()
_T2S = opencc.OpenCC("t2s")

TONE_VOWELS = "āáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜ"
# One pinyin syllable as scraped pages write glosses: lowercase, tone-marked or not.
PINYIN = rf"[a-zü{TONE_VOWELS}ê]{{1,7}}"


def to_simplified(text: str) -> str:
    """Traditional → simplified Chinese (OpenCC t2s, phrase-aware)."""
    return str(_T2S.convert(text))


@lru_cache(maxsize=1)
def word_freq() -> dict[str, int]:
    """The word → frequency table of jieba's bundled dictionary as shipped (prefix entries left out).

    Read through a jieba tokenizer of its own, never jieba's global one: words other code adds there
    would make a repair depend on what ran in the process before cleaning.
    """
    with _lock, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # jieba 0.42 imports pkg_resources, which warns of its own deprecation
        import jieba

        jieba.setLogLevel(60)
        dictionary = jieba.Tokenizer()
        dictionary.initialize()
        return {w: f for w, f in dictionary.FREQ.items() if f > 0}


@lru_cache(maxsize=1)
def _char_freq() -> dict[str, int]:
    freq: dict[str, int] = {}
    for word, f in word_freq().items():
        for ch in word:
            freq[ch] = freq.get(ch, 0) + f
    return freq


def char_logfreq(ch: str) -> float:
    """How common a character is in Chinese text (log scale; 0 for unknown, punctuation counts as common)."""
    if ch in "　、。·—…‘’“”《》〈〉「」『』【】〔〕（），：；！？":
        return 12.0
    f = _char_freq().get(to_simplified(ch), 0)
    return math.log1p(f)


def plausibility(text: str) -> float:
    """Mean log-frequency of the characters: real Chinese scores high, GBK mojibake scores low."""
    if not text:
        return 0.0
    return sum(char_logfreq(c) for c in text) / len(text)


@lru_cache(maxsize=4096)
def readings(ch: str) -> frozenset[str]:
    """Tone-marked pinyin readings of a character (all heteronyms), empty if unknown."""
    from pypinyin import Style, pinyin

    got = pinyin(ch, style=Style.TONE, heteronym=True, errors="ignore")
    return frozenset(got[0]) if got else frozenset()


@lru_cache(maxsize=1)
def _chars_by_reading() -> dict[str, list[str]]:
    from pypinyin.pinyin_dict import pinyin_dict

    table: dict[str, list[str]] = {}
    for code, value in pinyin_dict.items():
        for syllable in value.split(","):
            table.setdefault(syllable, []).append(chr(code))
    return table


def is_syllable(syllable: str) -> bool:
    """Whether a tone-marked string is exactly one pinyin syllable."""
    return syllable in _chars_by_reading()


def chars_with_reading(syllable: str) -> list[str]:
    """Characters that can be read as this tone-marked syllable."""
    return _chars_by_reading().get(syllable, [])


def best_in_context(candidates: list[str], left: str, right: str) -> tuple[str | None, int]:
    """The candidate that forms the most frequent dictionary word with its neighbours, and that frequency."""
    freqs = word_freq()
    best: str | None = None
    best_f = 0
    for cand in candidates:
        simp = to_simplified(cand)
        for word in _words_around(simp, to_simplified(left[-3:]), to_simplified(right[:3])):
            f = freqs.get(word, 0)
            if f > best_f:
                best, best_f = simp, f
    return best, best_f


def context_score(ch: str, left: str, right: str) -> int:
    """Frequency of the most frequent dictionary word that `ch` forms with its neighbours (0 if none)."""
    freqs = word_freq()
    simp = to_simplified(ch)
    words = _words_around(simp, to_simplified(left[-3:]), to_simplified(right[:3]))
    return max((freqs.get(w, 0) for w in words), default=0)


def _words_around(ch: str, left: str, right: str) -> list[str]:
    words = []
    for i in range(len(left)):
        words.append(left[i:] + ch)
    for j in range(1, len(right) + 1):
        words.append(ch + right[:j])
    if left and right:
        words.append(left[-1] + ch + right[0])
    return words


def bridges_word(left: str, right: str) -> bool:
    """Whether the text on both sides of a gap joins into a dictionary word (so nothing is missing there)."""
    freqs = word_freq()
    left, right = to_simplified(left[-3:]), to_simplified(right[:3])
    for i in range(len(left)):
        for j in range(1, len(right) + 1):
            if freqs.get(left[i:] + right[:j], 0) > 0:
                return True
    return False
