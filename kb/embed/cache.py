"""A content-keyed SQLite cache of embeddings, and embedding through it."""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from kb.embed import Embedder

log = logging.getLogger("kb.embed")


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _text_key(text: str) -> bytes:
    # sha256 of the exact UTF-8 text: any edit (even whitespace) is a different passage, hence a miss.
    return hashlib.sha256(text.encode("utf-8")).digest()


def _vector(blob: bytes, dim: int | None) -> np.ndarray | None:
    """A cached entry as a vector, or None when it cannot be one of `dim` finite values."""
    if len(blob) % 4 or (dim is not None and len(blob) != 4 * dim):
        return None
    vec = np.frombuffer(blob, dtype=np.float32).copy()  # copy: frombuffer views are read-only
    return vec if dim is None or np.isfinite(vec).all() else None


class EmbeddingCache:
    """SQLite store of vectors keyed by (model_id, sha256(text)); safe to kill mid-write (WAL, one commit per put)."""

    # SQLite caps bound parameters per statement (999 in old builds); 500 keys + model_id stays far below.
    LOOKUP_CHUNK = 500

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # timeout: a concurrent reader/writer waits instead of failing with "database is locked".
        self._conn = sqlite3.connect(self.path, timeout=30.0)
        # WAL: a killed writer leaves only an uncommitted tail that is discarded on next open; readers don't
        # block the writer. synchronous=NORMAL is still crash-safe for a killed process (only a power cut can
        # lose the last commits), and avoids an fsync per batch.
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        with self._conn:
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS embeddings ("
                " model_id TEXT NOT NULL, text_sha256 BLOB NOT NULL, vector BLOB NOT NULL,"
                " PRIMARY KEY (model_id, text_sha256)) WITHOUT ROWID"
            )

    def get_many(self, model_id: str, texts: Sequence[str], dim: int | None = None) -> dict[int, np.ndarray]:
        """Index into ``texts`` → cached vector, for the texts that are cached (duplicates all get it). With
        `dim`, an entry that is not `dim` finite float32s (a damaged or foreign cache) is a miss, with a
        warning: embedded again and overwritten, never handed on into an index."""
        positions: dict[bytes, list[int]] = {}
        for i, text in enumerate(texts):
            positions.setdefault(_text_key(text), []).append(i)
        keys = list(positions)
        hits: dict[int, np.ndarray] = {}
        bad: list[int] = []  # the byte sizes of entries that are no vector of this model
        for start in range(0, len(keys), self.LOOKUP_CHUNK):
            chunk = keys[start : start + self.LOOKUP_CHUNK]
            rows = self._conn.execute(
                "SELECT text_sha256, vector FROM embeddings WHERE model_id = ? AND text_sha256 IN "
                f"({','.join('?' * len(chunk))})",
                [model_id, *chunk],
            )
            for key, blob in rows:
                vec = _vector(blob, dim)
                if vec is None:
                    bad.append(len(blob))
                    continue
                for i in positions[bytes(key)]:
                    hits[i] = vec
        if bad:
            want = f"{dim} finite float32s" if dim else "float32 vectors"
            log.warning(
                "kb: %d cached vectors of %s in %s are not %s (sizes %s bytes); embedding those passages again",
                len(bad), model_id, self.path, want, sorted(set(bad))[:5],
            )
        return hits

    def put_many(self, model_id: str, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Store one vector per text and commit, so everything put so far survives a kill."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(texts):
            raise ValueError(f"need one row per text: {len(texts)} texts, vectors of shape {vectors.shape}")
        rows = [
            (model_id, _text_key(t), np.ascontiguousarray(v).tobytes())
            for t, v in zip(texts, vectors, strict=True)
        ]
        with self._conn:  # one transaction per call: commits on success, rolls back on error
            self._conn.executemany(
                "INSERT OR REPLACE INTO embeddings (model_id, text_sha256, vector) VALUES (?, ?, ?)", rows
            )

    def __len__(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0])

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def cached_vectors(
    embedder: Embedder, texts: Sequence[str], cache: EmbeddingCache | None
) -> tuple[np.ndarray, dict[str, list[int]]]:
    """The vectors of ``texts`` in order with the cached ones filled in, and each distinct missing text with its
    positions (in first-seen order): what is left to embed, wherever it is embedded."""
    texts = list(texts)
    out = np.empty((len(texts), embedder.dim), dtype=np.float32)
    hits = cache.get_many(embedder.model_id, texts, embedder.dim) if cache is not None else {}
    todo: dict[str, list[int]] = {}
    for i, text in enumerate(texts):
        vec = hits.get(i)
        if vec is not None:
            out[i] = vec
        else:
            todo.setdefault(text, []).append(i)
    return out, todo


def store_batch(
    embedder: Embedder, cache: EmbeddingCache | None, batch: Sequence[str], vecs: np.ndarray,
    out: np.ndarray, todo: dict[str, list[int]],
) -> None:
    """One embedded batch: its shape checked, written to the cache at once (a killed build resumes there) and
    into every position of its texts in ``out``."""
    if vecs.shape != (len(batch), embedder.dim):
        raise ValueError(f"{embedder.model_id} returned shape {vecs.shape} for {len(batch)} texts")
    if cache is not None:
        cache.put_many(embedder.model_id, batch, vecs)
    for text, vec in zip(batch, vecs, strict=True):
        out[todo[text]] = vec


def embed_with_cache(
    embedder: Embedder,
    texts: Sequence[str],
    cache: EmbeddingCache | None,
    progress: bool = True,
    desc: str = "embedding",
    *,
    batch_size: int | None = None,
) -> tuple[np.ndarray, int]:
    """Vectors for ``texts`` in order, plus how many distinct texts had to be embedded (cache misses).

    Each distinct missing text is embedded once; every batch is written to the cache as soon as it is done,
    so a build that is killed resumes where it stopped. ``batch_size`` defaults to the embedder's own.
    """
    out, todo = cached_vectors(embedder, texts, cache)
    unique = list(todo)
    size = batch_size or getattr(embedder, "batch_size", None) or 32
    from tqdm import tqdm  # lazy: only builds need it

    with tqdm(
        total=len(unique), desc=desc, unit="text", file=sys.stderr, disable=not progress or not unique
    ) as bar:
        for batch in _chunks(unique, size):
            store_batch(embedder, cache, batch, np.asarray(embedder.embed_passages(batch), dtype=np.float32), out, todo)
            bar.update(len(batch))
    return out, len(unique)
