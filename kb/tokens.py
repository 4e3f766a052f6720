"""Keyword tokenization for BM25: jieba search mode, the same for passages and queries."""

from __future__ import annotations

import logging
import math
import re
import threading
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

with warnings.catch_warnings():
    # jieba 0.42 imports pkg_resources, which warns about its own deprecation on every import.
    warnings.simplefilter("ignore")
    import jieba

# Recorded in the index manifest: an index is only searchable with the tokenizer that built it.
# Bump when anything below changes what tokenize() returns.
TOKENIZER_ID = "jieba-search-hmm0-v3"

# HMM new-word discovery is off: it segments an unknown run differently in a short query than in a
# long passage, so query and corpus would disagree; dictionary-only cuts fall back to single
# characters, which still match.
_HMM = False

# Words never indexed or searched for. Editing the file changes what tokenize() returns: bump TOKENIZER_ID.
STOPWORDS: frozenset[str] = frozenset(
    line.strip()
    for line in (Path(__file__).parent / "data" / "stopwords.txt").read_text(encoding="utf-8").splitlines()
    if line.strip() and not line.startswith("#")
)

_lock = threading.Lock()
_tokenizer: jieba.Tokenizer | None = None
_added: set[str] = set()


def _jieba() -> jieba.Tokenizer:
    """This module's own jieba tokenizer, built on first use. Domain terms go into it and never into
    jieba's global dictionary, which cleaning's word statistics or the host application may read."""
    global _tokenizer
    if _tokenizer is None:
        with _lock:
            if _tokenizer is None:
                jieba.setLogLevel(logging.WARNING)
                tokenizer = jieba.Tokenizer()
                tokenizer.initialize()
                _tokenizer = tokenizer
    return _tokenizer


def add_words(words: Iterable[str]) -> None:
    """Register domain terms (e.g. 行政复议, 府院联动) so the tokenizer keeps them whole; idempotent."""
    tokenizer = _jieba()
    with _lock:
        for w in words:
            w = w.strip()
            if w and w not in _added:
                tokenizer.add_word(w)
                _added.add(w)


def added_words() -> list[str]:
    """The domain terms registered in this process, sorted (for recording in a manifest)."""
    with _lock:
        return sorted(_added)


# The A-not-A question (懂不懂, 看不看, 喜欢不喜欢) asks whether A: it is searched and weighed as A, not as a
# word no report writes (unseen, so it weighed most of all in what a passage had to hold to mention the query).
_A_NOT_A = re.compile(r"^([\u4e00-\u9fff]{1,2})[不没]\1$")


def _asked(word: str) -> str:
    m = _A_NOT_A.match(word)
    return m.group(1) if m else word


def _keep(tok: str) -> bool:
    # Drops whitespace and punctuation runs (CJK characters count as alphanumeric).
    return any(ch.isalnum() for ch in tok) and tok not in STOPWORDS


def tokenize(text: str) -> list[str]:
    """Search-mode tokens of normalized text: words plus the sub-words of long words, lowercased."""
    if not text:
        return []
    tokenizer = _jieba()
    out: list[str] = []
    for word in tokenizer.cut(text, HMM=_HMM):
        word = _asked(word)
        if word.strip().lower() in STOPWORDS:
            continue  # and its sub-words: 没有 of 有没有 asks nothing either
        for tok in [*_sub_words(word, tokenizer.FREQ), word]:
            tok = tok.strip().lower()
            if tok and _keep(tok):
                out.append(tok)
    return out


def _sub_words(word: str, freq: dict[str, int]) -> list[str]:
    """The dictionary's words of two and three characters inside a longer word, as jieba's search mode adds
    them (its cut_for_search, with the word's own stopword test first)."""
    grams = [word[i:i + 2] for i in range(len(word) - 1)] if len(word) > 2 else []
    grams += [word[i:i + 3] for i in range(len(word) - 2)] if len(word) > 3 else []
    return [g for g in grams if freq.get(g)]


def words(text: str) -> list[str]:
    """Whole words of normalized text (jieba's precise mode), for deciding what a passage mentions."""
    if not text:
        return []
    return [t for t in (_asked(w).strip().lower() for w in _jieba().cut(text, HMM=_HMM)) if t and _keep(t)]


# A word jieba's dictionary lacks (an unknown name, a run it cuts into characters) weighs as one it saw
# three times, the count its dictionary gives its rarest words: rare, so it weighs much.
_UNSEEN_COUNT = 3


def word_weight(word: str) -> float:
    """How much a word says about a topic: −log of its share of jieba's dictionary counts (general Chinese
    text), so 推荐 and 比赛 weigh little and 韩剧 or a domain term such as 合法性审查 much. The counts are the
    tokenizer's own, already in memory (a separate IDF table cost 53 MB)."""
    tokenizer = _jieba()
    count = tokenizer.FREQ.get(word) or _UNSEEN_COUNT
    return math.log(max(tokenizer.total, count) / count)


def tokenize_many(
    texts: Sequence[str] | Iterable[str], progress: bool = False, **tqdm_kw: Any
) -> list[list[str]]:
    """tokenize() over many texts, with an optional tqdm bar."""
    _jieba()  # load the dictionary before the bar starts timing
    total = len(texts) if isinstance(texts, Sequence) else None
    it = tqdm(texts, total=total, desc="tokenize", unit="chunk", disable=not progress, **tqdm_kw)
    return [tokenize(t) for t in it]
