"""IndexReader: the current index version opened and verified, searched and read through its three parts."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kb.errors import IndexLoadError, IndexMissingError
from kb.store.bm25 import Bm25Index, idf
from kb.store.dense import DenseIndex
from kb.store.layout import (
    _VERSION_RE,
    BM25_DIR,
    CURRENT,
    MANIFEST,
    VersionReader,
    _fail,
    current_version,
    read_manifest,
    verify_files,
)
from kb.store.records import Records


def open_index(
    root: str | Path, expected_model_id: str | None = None, *, verify: str = "auto", pool_size: int = 4
) -> IndexReader:
    """Open the current index version under root, verified (see IndexReader); a version whose manifest says
    engine "milvus" opens as a kb.engine MilvusReader, which answers the same calls."""
    if _engine_of(Path(root)) == "milvus":
        from kb.engine.reader import open_milvus  # the milvus extra, imported only for such an index

        return open_milvus(root, expected_model_id, verify, pool_size)  # type: ignore[return-value]
    return IndexReader(root, expected_model_id, verify=verify, pool_size=pool_size)


def _engine_of(root: Path) -> str:
    """The engine the current version's manifest names ("local" when none, or when unreadable: then
    IndexReader says what is wrong)."""
    version = current_version(root)
    try:
        manifest = json.loads((root / str(version) / MANIFEST).read_text(encoding="utf-8")) if version else {}
    except (OSError, ValueError):
        return "local"
    return str(manifest.get("engine", "local")) if isinstance(manifest, dict) else "local"


class IndexReader(VersionReader):
    """A loaded, verified index version: FAISS + BM25 + SQLite, searchable from many threads.

    verify="auto" checks every file's size and the sha256 of files under FULL_HASH_MAX_BYTES;
    "full" hashes everything; "sizes" hashes nothing."""

    def __init__(
        self,
        root: str | Path,
        expected_model_id: str | None = None,
        *,
        verify: str = "auto",
        pool_size: int = 4,
    ) -> None:
        if verify not in ("auto", "full", "sizes"):
            raise ValueError(f"verify={verify!r}; valid: 'auto', 'full', 'sizes'")
        self.root = Path(root)
        self._closed = False
        version = current_version(self.root)
        if version is None:
            raise _fail(f"no index at {self.root} ({self.root / CURRENT} is missing)", IndexMissingError)
        if not _VERSION_RE.match(version):
            raise _fail(f"{self.root / CURRENT} names {version!r}, which is not a version folder name")
        self.version = version
        self.path = self.root / version
        if not self.path.is_dir():
            raise _fail(f"{self.root / CURRENT} names {version}, but {self.path} does not exist")
        self.manifest = read_manifest(self.path, expected_model_id)
        verify_files(self.path, self.manifest, verify)
        try:
            self._load(pool_size)
        except IndexLoadError:
            self.close()
            raise
        except Exception as e:
            self.close()
            raise _fail(f"cannot load index {self.path}: {type(e).__name__}: {e}") from e

    def _load(self, pool_size: int) -> None:
        m = self.manifest
        self.model_id: str = m["model_id"]
        self.dim = int(m["dim"])
        self._dense = DenseIndex(self.path, m)
        self.n_chunks = self._dense.n
        self._bm25 = Bm25Index(self.path / BM25_DIR, m.get("bm25", {}), self.n_chunks)
        self._records = Records(self.path, self.n_chunks, m["counts"]["documents"], pool_size)

    def close(self) -> None:
        """Release the SQLite connections and FAISS/BM25 data; the reader is unusable afterwards."""
        self._closed = True
        for part in ("_records", "_dense", "_bm25"):  # a failed load has only some of them
            if hasattr(self, part):
                getattr(self, part).close()

    def __repr__(self) -> str:
        return f"IndexReader({str(self.path)!r}, chunks={getattr(self, 'n_chunks', '?')})"

    # -- search

    def dense_search(
        self, qvec: np.ndarray, k: int, rows: np.ndarray | Sequence[int] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k chunk rows by inner product with qvec (best first), optionally only among `rows`."""
        q = np.ascontiguousarray(np.asarray(qvec, dtype=np.float32).reshape(-1))
        if q.shape[0] != self.dim:
            raise ValueError(
                f"query vector has dimension {q.shape[0]}; the index ({self.model_id}) has {self.dim}"
            )
        return self._dense.search(q, k, rows)

    def bm25_search(
        self, query_tokens: Sequence[str], k: int, rows: np.ndarray | Sequence[int] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k chunk rows by BM25 (best first, score > 0 only); tokens unknown to the index are ignored."""
        return self._bm25.search(query_tokens, k, rows)

    def token_idf(self, tokens: Sequence[str]) -> list[float]:
        """BM25's idf of each token in this index (a token it does not know: the highest)."""
        return [idf(df, self.n_chunks) for df in self._bm25.doc_freqs(tokens)]

    def vector(self, row: int) -> np.ndarray:
        """The stored vector of a chunk row (a copy)."""
        return self._dense.vector(row)

    def vectors(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        """The stored vectors of chunk rows, one per row (an engine answers them in one call)."""
        return np.stack([self._dense.vector(int(r)) for r in rows]) if len(rows) else np.zeros((0, self.dim), np.float32)

    # -- scopes: what filters leave searchable, passed back unchanged to dense_search and bm25_search. Here it
    # is the sorted row array of rows_where; an engine's reader passes a filter expression down instead.

    def scope_where(self, **filters: Any) -> np.ndarray | None:
        """The scope of rows_where's filters, or None when none is given."""
        return self.rows_where(**filters)

    def scope_empty(self, scope: np.ndarray | None) -> bool:
        return scope is not None and len(scope) == 0

    def scope_doc_ids(self, scope: np.ndarray | None) -> set[str]:
        """The documents with a chunk in scope."""
        if scope is None:
            return {d["doc_id"] for d in self.documents()}
        return {c["doc_id"] for c in self.chunks(scope)} if len(scope) else set()

    # -- chunks and documents

    def chunks(self, rows: Sequence[int] | np.ndarray) -> list[dict[str, Any]]:
        """Chunk records in the order of `rows`: row, chunk_id, doc_id, ordinal, section_path (list), kind,
        start, end, text, and their document's source, locality, region, province, year, level, title."""
        return self._records.chunks(rows)

    def chunk_by_id(self, chunk_id: str) -> dict[str, Any] | None:
        """One chunk record (as chunks()) by chunk_id, or None."""
        return self._records.chunk_by_id(chunk_id)

    def doc_chunks(self, doc_id: str) -> list[dict[str, Any]]:
        """A document's chunk records in reading order."""
        return self._records.doc_chunks(doc_id)

    def chunk_tokens(self, rows: Sequence[int] | np.ndarray) -> list[list[str]]:
        """The BM25 tokens stored for each row (lets an incremental build skip re-tokenizing)."""
        return self._records.chunk_tokens(rows)

    def rows_where(
        self,
        locality: str | Sequence[str] | None = None,
        year: int | str | Sequence[int | str] | None = None,
        region: str | Sequence[str] | None = None,
        kind: str | Sequence[str] | None = None,
        doc_ids: Sequence[str] | None = None,
        level: str | Sequence[str] | None = None,
        province: str | Sequence[str] | None = None,
    ) -> np.ndarray | None:
        """Sorted chunk rows matching every given filter, or None when no filter is given.

        locality and region match as substrings (region also matches the province), so 阜沙 finds
        阜沙镇 and 广东 finds every 广东省 report; a list means any of its values; year, kind, level and
        doc_ids match exactly."""
        return self._records.rows_where(
            locality=locality, year=year, region=region, kind=kind, doc_ids=doc_ids, level=level,
            province=province,
        )

    def problems(self) -> list[str]:
        """What is wrong with the files under a live version, cheaply (sizes, and the SQLite file answering a
        query): a file changed in place after loading, which /api/health reports instead of "ok"."""
        out = []
        for rel, want in sorted(self.manifest["checksums"].items()):
            try:
                size = (self.path / rel).stat().st_size
            except OSError as exc:
                out.append(f"{rel}: {exc.strerror}")
                continue
            if size != want["bytes"]:
                out.append(f"{rel} has {size} bytes, the manifest says {want['bytes']}")
        try:
            self._records.count_check()
        except sqlite3.DatabaseError as exc:
            out.append(f"kb.sqlite: {exc}")
        return out

