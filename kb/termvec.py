"""Glossary terms by meaning: each official term and its variants embedded once, a query matched to them and to everyday questions."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kb.embed import Embedder, EmbeddingCache, embed_with_cache
from kb.glossary import Glossary

FOLDER = "terms"  # in the index root, beside the versions: derived from the glossary and the model, not the reports
# A query names a term by meaning when its similarity to one of the term's phrasings stands this many standard
# deviations above its similarity to all phrasings (the raw cosines of the bundled model sit in 0.8–0.95 for any
# pair; only the contrast tells). At most MAX_TERMS terms a query. Measured on both dev sets at 3.5 / 4.0 / 4.5:
# BENCHMARKS.md "Glossary terms by meaning".
MIN_Z = 4.0
MAX_TERMS = 2
# The bundled model's vectors of the packaged glossary ship with the package (made by scripts/term_vectors), so a
# first build does not spend ~45 s on 6,800 phrasings; a file of another glossary or model is never picked up,
# its name holds the same key as the index's own file.
SHIPPED = Path(__file__).resolve().parent / "data"
SHIPPED_PREFIX = "glossary-terms-"


# Everyday questions on no topic of these reports (cooking, sport, phones, exams …; kb/data/everyday.txt), embedded
# beside the glossary's phrasings: a query nearer to them than to any phrasing is not about rule-of-law work
# (TermMatcher.domain), which no score of the reports' own passages tells apart (the bundled model rates some
# passage near any query). Their owner is EVERYDAY, never a term.
EVERYDAY_FILE = Path(__file__).resolve().parent / "data" / "everyday.txt"
EVERYDAY = ""
NEAREST = 3  # the phrasings (and everyday questions) a query's domain margin averages over


def everyday_questions() -> list[str]:
    return [line.strip() for line in EVERYDAY_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]


def phrasings(glossary: Glossary) -> tuple[list[str], list[str]]:
    """Every term and Chinese variant of the glossary, then the everyday questions, and the term each one belongs
    to (EVERYDAY for the questions)."""
    texts: list[str] = []
    owners: list[str] = []
    for entry in glossary.entries:
        for text in (entry.term, *entry.zh_variants):
            texts.append(text)
            owners.append(entry.term)
    questions = everyday_questions()
    return texts + questions, owners + [EVERYDAY] * len(questions)


def _key(glossary: Glossary, model_id: str) -> str:
    texts, owners = phrasings(glossary)
    return hashlib.sha256("\x1e".join([model_id, *texts, *owners]).encode("utf-8")).hexdigest()[:16]


def _path(root: Path, glossary: Glossary, model_id: str) -> Path:
    return Path(root) / FOLDER / f"{_key(glossary, model_id)}.npy"


def shipped_path(glossary: Glossary, model_id: str, folder: Path | None = None) -> Path:
    """Where the package keeps this glossary's vectors for this model (present for the bundled model only)."""
    return (folder or SHIPPED) / f"{SHIPPED_PREFIX}{_key(glossary, model_id)}.npy"


def _publish(path: Path, write: Callable[[Path], Any]) -> None:
    """Write a file through a temporary one beside it, so a reader never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp-{os.getpid()}.npy")
    write(tmp)
    os.replace(tmp, path)


def _save(path: Path, vectors: np.ndarray) -> None:
    _publish(path, lambda tmp: np.save(tmp, vectors.astype(np.float16)))  # half the size; 3 digits suffice


class _AsQueries:
    """An embedder seen through its query side, under its own cache key: a phrasing is matched query to query
    (as a passage, the model places it further from the questions that mean it)."""

    def __init__(self, embedder: Embedder) -> None:
        self.model_id = f"{embedder.model_id}#query"
        self.dim = embedder.dim
        self.batch_size = getattr(embedder, "batch_size", 32)
        self._embedder = embedder

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        many = getattr(self._embedder, "embed_queries", None)  # a batched query side, where the model has one
        if many is not None:
            return np.asarray(many(list(texts)), dtype=np.float32)
        return np.vstack([self._embedder.embed_query(t) for t in texts]).astype(np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self._embedder.embed_query(text)


def ensure_term_vectors(root: Path, glossary: Glossary, embedder: Embedder,
                        open_cache: Callable[[], EmbeddingCache] | None, progress: bool = True) -> tuple[Path, int]:
    """The file of the glossary's phrasing vectors for this model: copied from the package where it ships them,
    else embedded (through the cache `open_cache` opens, only then: every build calls this) when missing; and how
    many phrasings had to be embedded. Files of other glossaries or models are removed."""
    path = _path(root, glossary, embedder.model_id)
    embedded = 0
    shipped = shipped_path(glossary, embedder.model_id)
    if not path.exists() and shipped.exists():
        _publish(path, lambda tmp: shutil.copyfile(shipped, tmp))
    elif not path.exists():
        vectors, embedded = embed_phrasings(glossary, embedder, open_cache, progress)
        _save(path, vectors)
    for other in path.parent.glob("*.npy"):
        if other != path:
            other.unlink(missing_ok=True)
    return path, embedded


def embed_phrasings(glossary: Glossary, embedder: Embedder, open_cache: Callable[[], EmbeddingCache] | None,
                    progress: bool = True) -> tuple[np.ndarray, int]:
    """The glossary's phrasings embedded as queries (float32, one row each), and how many missed the cache."""
    texts, _ = phrasings(glossary)
    with open_cache() if open_cache is not None else contextlib.nullcontext() as cache:
        return embed_with_cache(_AsQueries(embedder), texts, cache, progress=progress, desc="glossary terms")


def write_shipped(glossary: Glossary, embedder: Embedder, folder: Path | None = None,
                  progress: bool = True) -> Path:
    """Embed the glossary for the package (scripts/term_vectors) and drop the file of any earlier glossary."""
    path = shipped_path(glossary, embedder.model_id, folder)
    _save(path, embed_phrasings(glossary, embedder, None, progress)[0])
    for old in path.parent.glob(f"{SHIPPED_PREFIX}*.npy"):
        if old != path:
            old.unlink()
    return path


class TermMatcher:
    """The glossary terms a query vector means: its nearest phrasings, contrasted with all of them."""

    def __init__(self, vectors: np.ndarray, owners: list[str]) -> None:
        is_term = np.array([o != EVERYDAY for o in owners], dtype=bool)
        self._vectors = vectors[is_term].astype(np.float32)
        self._owners = [o for o in owners if o != EVERYDAY]
        self._everyday = vectors[~is_term].astype(np.float32)

    @classmethod
    def load(cls, root: Path | None, glossary: Glossary, model_id: str) -> TermMatcher | None:
        """The matcher of an index root, or None when its build left no vectors of this glossary and model."""
        if root is None:
            return None
        path = _path(root, glossary, model_id)
        try:
            vectors = np.load(path)
        except (OSError, ValueError):
            return None
        _, owners = phrasings(glossary)
        return cls(vectors, owners) if vectors.shape[0] == len(owners) and vectors.ndim == 2 else None

    def domain(self, qvec: np.ndarray) -> float | None:
        """How much nearer the query is to the glossary's phrasings than to the everyday questions: the mean
        similarity of its NEAREST of each, subtracted (positive for both, higher for rule-of-law topics)."""
        if qvec.shape[0] != self._vectors.shape[1] or len(self._everyday) < NEAREST or len(self._vectors) < NEAREST:
            return None
        q = qvec.astype(np.float32)
        return float(_nearest(self._vectors @ q).mean() - _nearest(self._everyday @ q).mean())

    def match(self, qvec: np.ndarray, query: str) -> list[str]:
        """Up to MAX_TERMS terms whose phrasings the query is nearest to (contrast ≥ MIN_Z), best first; a term
        the query already holds is left out (a literal expansion is not: meant as well, it counts twice)."""
        if qvec.shape[0] != self._vectors.shape[1]:
            return []
        sims = self._vectors @ qvec.astype(np.float32)
        sd = float(sims.std())
        if sd <= 0:
            return []
        z = (sims - float(sims.mean())) / sd
        out: list[str] = []
        for i in np.argsort(-z)[: 20 * MAX_TERMS]:
            if z[i] < MIN_Z or len(out) == MAX_TERMS:
                break
            term = self._owners[i]
            if term not in out and term not in query:
                out.append(term)
        return out


def _nearest(sims: np.ndarray) -> np.ndarray:
    return np.partition(sims, len(sims) - NEAREST)[-NEAREST:]
