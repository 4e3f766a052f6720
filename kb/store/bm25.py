"""BM25: the bm25s index written per version, and queries scored over its memory-mapped postings."""

from __future__ import annotations

import logging
import math
import os
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import bm25s
import numpy as np
import scipy.sparse

try:  # the C loop behind csc_matrix @ x, called on one column's slices so nothing is copied (private API)
    from scipy.sparse._sparsetools import csc_matvec as _csc_matvec
except ImportError:  # pragma: no cover - other scipy layouts take the public path in _add_column
    _csc_matvec = None

from kb.store.layout import _fail
from kb.store.rank import _allowed, _empty, _top

BM25_PARAMS = {"method": "lucene", "k1": 1.5, "b": 0.75}
log = logging.getLogger("kb.store")


def idf(df: int, n: int) -> float:
    """Lucene's BM25 idf, as bm25s scores with it: what a token of `df` passages in `n` says (df 0: the most)."""
    return math.log(1.0 + (n - df + 0.5) / (df + 0.5))


def _write_bm25(folder: Path, tokens: Sequence[list[str]], progress: bool) -> dict[str, Any]:
    folder.mkdir()
    info: dict[str, Any] = {**BM25_PARAMS, "num_docs": len(tokens)}
    if not any(tokens):
        # bm25s cannot index a corpus without a single token; the reader answers every query with nothing.
        info["empty"] = True
        return info
    retriever = bm25s.BM25(**BM25_PARAMS)
    retriever.index([list(t) for t in tokens], show_progress=progress)
    retriever.save(str(folder), show_progress=False)
    info["vocabulary"] = len(retriever.vocab_dict)
    return info


def _add_column(scores: np.ndarray, rows: np.ndarray, values: np.ndarray) -> None:
    """scores[rows] += values for one token's postings (rows distinct), without copying them.

    One C pass over the slices of the memory-mapped arrays: 1.8 ms p50 for the dev queries' postings at
    10^6 chunks, against 4.9 ms for summing the sliced columns of a scipy matrix (which copies them) and
    11 ms for numpy's fancy-index add (BENCHMARKS.md, "BM25")."""
    if _csc_matvec is not None and scores.dtype == values.dtype == np.float32 and len(rows):
        _csc_matvec(len(scores), 1, np.array([0, len(rows)], dtype=rows.dtype), rows, values, _ONE, scores)
    else:  # pragma: no cover - the public equivalent, one temporary array more
        scores += scipy.sparse.csc_matrix((values, rows, [0, len(rows)]), shape=(len(scores), 1)) @ _ONE


_ONE = np.ones(1, dtype=np.float32)
_SAMPLE_STRIDE = 16


def _top_candidates(scores: np.ndarray, k: int) -> np.ndarray:
    """Rows that include every row of the k best positive scores (a few hundred more at most, usually).

    A threshold from every 16th score, set so that about 2k + 256 rows reach it, replaces a partition of
    the whole array (1.4 ms at 10^6); it is exact because it is used only when at least k rows reach it."""
    n = len(scores)
    tiny = np.finfo(np.float32).tiny
    if k < n and n >= 64 * _SAMPLE_STRIDE:
        sample = scores[::_SAMPLE_STRIDE]
        rank = min(len(sample), 2 * k // _SAMPLE_STRIDE + 16)
        floor = float(np.partition(sample, len(sample) - rank)[len(sample) - rank])
        cand = np.flatnonzero(scores >= max(floor, tiny))
        if len(cand) >= k or floor <= tiny:
            return cand
    if k < n:
        floor = float(np.partition(scores, n - k)[n - k])
        return np.flatnonzero(scores >= max(floor, tiny))
    return np.flatnonzero(scores > 0)


# Past this a version's BM25 arrays are memory-mapped, not read: their memory is the page cache's to share and
# drop. A mapped file is then kept open and its size checked before each query (see _shrunk).
MMAP_MIN_BYTES = 64 * 1024 * 1024


class Bm25Index:
    """A version's bm25s index, memory-mapped; a query's scores are summed over its tokens' postings."""

    def __init__(self, folder: Path, info: dict[str, Any], n: int) -> None:
        self.n = n
        self._local = threading.local()  # per-thread scratch (the score array)
        self._retriever: Any = None
        self._postings: Any = None
        self._mapped: list[tuple[int, int, str]] = []  # (fd, bytes when loaded, name) of each mapped file
        if info.get("empty"):
            return
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                # Memory-mapped only when large: a mapped file truncated under a live server kills it with
                # SIGBUS, while arrays read into memory survive anything done to the file afterwards.
                big = sum(p.stat().st_size for p in folder.iterdir()) > MMAP_MIN_BYTES
                if big:
                    self._watch(folder)
                self._retriever = bm25s.BM25.load(str(folder), mmap=big, show_progress=False)
        except (OSError, ValueError) as e:
            self.close()
            raise _fail(f"{folder} is unreadable: {e}") from e
        indexed = int(self._retriever.scores["num_docs"])
        if indexed != n:
            raise _fail(f"{folder} indexes {indexed} chunks; expected {n}")
        sc = self._retriever.scores
        # bm25s's own memory-mapped arrays, a chunks × vocabulary matrix in CSC form: token t's postings
        # are rows indices[indptr[t]:indptr[t+1]] with precomputed scores data[...]
        self._postings = (sc["data"], sc["indices"], np.asarray(sc["indptr"], dtype=np.int64))

    def _watch(self, folder: Path) -> None:
        """Keep each array file open, so that its size can be checked before the mapping is read: the file
        under the mapping, whatever its name then points to (a file replaced by a new one is harmless)."""
        for p in sorted(folder.glob("*.npy")):
            fd = os.open(p, os.O_RDONLY)
            self._mapped.append((fd, os.fstat(fd).st_size, p.name))

    def _shrunk(self) -> str | None:
        """A mapped file that is now shorter than when it was mapped: reading its lost tail would be SIGBUS."""
        for fd, size, name in self._mapped:
            now = os.fstat(fd).st_size
            if now < size:
                return f"{name} was truncated from {size} to {now} bytes under the live index"
        return None

    def close(self) -> None:
        self._retriever = None
        self._postings = None
        for fd, _, _ in self._mapped:
            os.close(fd)
        self._mapped = []

    def search(
        self, query_tokens: Sequence[str], k: int, rows: np.ndarray | Sequence[int] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k rows by BM25 (best first, score > 0 only); tokens unknown to the index are ignored."""
        retriever, postings = self._live() if k > 0 else (None, None)
        if retriever is None or postings is None:
            return _empty()
        vocab = retriever.vocab_dict
        ids = sorted({vocab[t] for t in query_tokens if t and t in vocab})
        if not ids:
            return _empty()
        data, indices, indptr = postings
        scores = self._score_buffer()
        for t in ids:
            a, b = int(indptr[t]), int(indptr[t + 1])
            _add_column(scores, indices[a:b], data[a:b])
        if rows is None:
            cand = _top_candidates(scores, k)
        else:
            allowed = _allowed(rows, self.n)
            cand = allowed[scores[allowed] > 0]
        return _top(cand.astype(np.int64), scores[cand], k)

    def _live(self) -> tuple[Any, Any]:
        """The retriever and postings, or (None, None) once a mapped file has shrunk under them: read once, as
        another thread may turn them off. A few microseconds a call; it leaves only the window of one call's
        reads (no SIGBUS on every later query). BM25 is then off for this version; dense search still answers
        and /api/health says 503."""
        retriever, postings = self._retriever, self._postings
        shrunk = self._shrunk() if self._mapped and retriever is not None else None
        if shrunk:
            log.error("kb: %s; BM25 is off until the index is rebuilt", shrunk)
            self._retriever = self._postings = None
            return None, None
        return retriever, postings

    def doc_freqs(self, tokens: Sequence[str]) -> list[int]:
        """How many passages hold each token (0 for a token the index does not know)."""
        retriever, postings = self._live()
        if retriever is None or postings is None:
            return [0 for _ in tokens]
        vocab, indptr = retriever.vocab_dict, postings[2]
        return [int(indptr[vocab[t] + 1] - indptr[vocab[t]]) if t in vocab else 0 for t in tokens]

    def _score_buffer(self) -> np.ndarray:
        """A zeroed float32 array of n_chunks, one per thread, reused: a fresh np.zeros of 4 MB at 10^6 chunks
        costs its page faults on every query; refilling the same pages with zeros costs a third of that."""
        buf: np.ndarray | None = getattr(self._local, "scores", None)
        if buf is None:
            buf = self._local.scores = np.zeros(self.n, dtype=np.float32)
        else:
            buf.fill(0.0)
        return buf
