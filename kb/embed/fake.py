"""A deterministic, model-free test double: character-bigram hashing."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np


def _l2_normalize(mat: np.ndarray) -> np.ndarray:
    """Row-normalize to float32; all-zero rows stay zero instead of becoming NaN."""
    mat = np.asarray(mat, dtype=np.float32)
    norms = np.linalg.norm(mat, axis=-1, keepdims=True)
    return (mat / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)



class HashEmbedder:
    """Deterministic, model-free stand-in: signed character-bigram hashing into ``dim`` buckets.

    Texts sharing bigrams get similar vectors, which is enough for tests of plumbing and ranking glue.
    """

    def __init__(self, dim: int = 64) -> None:
        if dim < 1:
            raise ValueError(f"dim must be >= 1, got {dim!r}")
        self.dim = dim
        self.model_id = f"fake:hash-{dim}"
        self.batch_size = 256

    def _vector(self, text: str) -> np.ndarray:
        vec = np.zeros(self.dim, dtype=np.float32)
        # Unigrams too, so one-character texts are not all identical; crc32 because hash() is salted per run.
        grams = list(text) + [text[i : i + 2] for i in range(len(text) - 1)]
        for gram in grams:
            h = zlib.crc32(gram.encode("utf-8"))
            vec[h % self.dim] += 1.0 if (h >> 31) & 1 else -1.0
        if not vec.any():  # empty text (or signs that cancel): still return a unit vector
            vec[0] = 1.0
        return _l2_normalize(vec)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) == 0:
            return np.empty((0, self.dim), dtype=np.float32)
        return np.vstack([self._vector(t) for t in texts])

    def embed_query(self, text: str) -> np.ndarray:
        return self._vector(text)
