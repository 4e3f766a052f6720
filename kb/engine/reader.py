"""MilvusReader: an index version whose chunks, vectors and BM25 live in a Milvus collection, behind the
calls the Searcher makes of IndexReader; the reports for the document pages stay in the version's kb.sqlite."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kb.engine import connect, disconnect, milvus_uri
from kb.engine.schema import _SAFE_ID, CHUNK_FIELDS, DOC_FREQS, Scope, bm25_scale, engine_token, filter_expr
from kb.errors import IndexLoadError
from kb.store.bm25 import idf
from kb.store.layout import (
    _VERSION_RE,
    CURRENT,
    VersionReader,
    _fail,
    current_version,
    read_manifest,
    verify_files,
)
from kb.store.records import Records, _filter_sql

log = logging.getLogger("kb.engine")
QUERY_MAX = 16384  # Milvus's limit on a query's or a search's result count


def _empty() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)


class MilvusReader(VersionReader):
    """A loaded index version on Milvus, searchable from many threads (the client is thread-safe)."""

    def __init__(self, root: Path, version: str, manifest: dict[str, Any], pool_size: int = 4) -> None:
        self.root, self.version, self.manifest = Path(root), version, manifest
        self.path = self.root / version
        self.model_id: str = manifest["model_id"]
        self.dim = int(manifest["dim"])
        self.n_chunks = int(manifest["counts"]["chunks"])
        info = manifest.get("milvus") or {}
        self.collection: str = info.get("collection", "")
        self._df: dict[str, int] | None = None  # read on first use
        self._records = Records(self.path, 0, manifest["counts"]["documents"], pool_size)
        try:
            self._uri = milvus_uri(self.root, info.get("uri"))
            self._client = connect(self._uri)
            self._check()
        except IndexLoadError:
            self.close()
            raise
        except Exception as e:
            self.close()
            raise _fail(f"cannot open Milvus collection {self.collection!r} of {self.path}: {type(e).__name__}: {e}") from e
        self._search_params = dict(manifest.get("dense", {}).get("search", {}))

    def _check(self) -> None:
        if not self._client.has_collection(self.collection):
            raise _fail(f"{self.path} names Milvus collection {self.collection!r}, which does not exist")
        self._client.load_collection(self.collection)
        got = self._query("", ["count(*)"])[0]["count(*)"]
        if got != self.n_chunks:
            raise _fail(f"collection {self.collection} holds {got} chunks, the manifest counts {self.n_chunks}")

    def close(self) -> None:
        if hasattr(self, "_records"):
            self._records.close()
        client = getattr(self, "_client", None)
        if client is not None:
            self._client = None
            disconnect(client, self._uri)

    def __repr__(self) -> str:
        return f"MilvusReader({str(self.path)!r}, collection={self.collection!r}, chunks={self.n_chunks})"

    def _query(self, expr: str, fields: list[str], limit: int | None = None) -> list[dict[str, Any]]:
        kw: dict[str, Any] = {"limit": limit} if limit is not None else {}
        return list(self._client.query(self.collection, filter=expr, output_fields=fields, **kw))

    # -- search

    def _search(self, data: Any, field: str, metric: str, k: int, scope: Any, params: dict[str, Any]
                ) -> tuple[np.ndarray, np.ndarray]:
        limit = min(int(k), QUERY_MAX, self.n_chunks)
        if limit <= 0 or (scope is not None and not len(scope)):
            return _empty()
        got = self._client.search(
            self.collection, data=[data], anns_field=field, limit=limit, filter=_expr(scope),
            search_params={"metric_type": metric, "params": params}, output_fields=[],
        )[0]
        rows = np.fromiter((h["id"] for h in got), dtype=np.int64, count=len(got))
        scores = np.fromiter((h["distance"] for h in got), dtype=np.float32, count=len(got))
        return rows, scores

    def dense_search(self, qvec: np.ndarray, k: int, scope: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k chunk rows by inner product with qvec (best first), optionally within a scope."""
        q = np.asarray(qvec, dtype=np.float32).reshape(-1)
        if q.shape[0] != self.dim:
            raise ValueError(f"query vector has dimension {q.shape[0]}; the index ({self.model_id}) has {self.dim}")
        return self._search(q.tolist(), "vector", "IP", k, scope, self._search_params)

    def bm25_search(self, query_tokens: Sequence[str], k: int, scope: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k chunk rows by BM25 on kb's scale (best first, score > 0 only); each distinct token once."""
        toks = list(dict.fromkeys(engine_token(t) for t in query_tokens if t and t.strip()))
        if not toks:
            return _empty()
        rows, scores = self._search(" ".join(toks), "sparse", "BM25", k, scope, {})
        keep = scores > 0
        return rows[keep], scores[keep] / np.float32(bm25_scale())

    def token_idf(self, tokens: Sequence[str]) -> list[float]:
        """BM25's idf of each token, from the build's passage counts (Milvus does not return them)."""
        if self._df is None:
            try:
                self._df = json.loads((self.path / DOC_FREQS).read_text(encoding="utf-8"))["df"]
            except (OSError, ValueError, KeyError):  # a version built before the counts were written
                log.warning("kb: %s has no readable %s; rebuild the index (`kb build --full`) for the listing"
                            " rule's BM25 signal", self.path, DOC_FREQS)
                self._df = {}
        return [idf(int(self._df.get(engine_token(t), 0)), self.n_chunks) for t in tokens]

    # -- scopes (filters passed down, never materialized as rows)

    def scope_where(self, **filters: Any) -> Scope | None:
        """The scope of kb's filters (IndexReader.rows_where's), or None when none is given."""
        filters = {"locality": None, "year": None, "region": None, "kind": None, "doc_ids": None, "level": None,
                   **filters}
        clauses, params = _filter_sql(**filters)
        if not clauses:
            return None
        with self._records._db() as con:
            got = con.execute(
                "SELECT DISTINCT d.doc_id FROM documents d JOIN doc_kinds c ON c.doc_id = d.doc_id WHERE "
                + " AND ".join(clauses), params,
            ).fetchall()
        doc_ids = frozenset(r[0] for r in got)
        return Scope(filter_expr(filters, doc_ids), doc_ids)

    def scope_empty(self, scope: Any) -> bool:
        return scope is not None and not len(scope)

    def scope_doc_ids(self, scope: Any) -> set[str]:
        return set(scope.doc_ids) if scope is not None else {d["doc_id"] for d in self.documents()}

    def rows_where(self, **filters: Any) -> np.ndarray | None:
        """Sorted chunk rows matching the filters (for callers that need rows; search passes scopes)."""
        scope = self.scope_where(**filters)
        if scope is None:
            return None
        if not len(scope):
            return np.zeros(0, dtype=np.int64)
        it = self._client.query_iterator(self.collection, batch_size=QUERY_MAX // 2, filter=scope.expr,
                                         output_fields=["row"])
        rows: list[int] = []
        while batch := it.next():
            rows += [r["row"] for r in batch]
        it.close()
        return np.array(sorted(rows), dtype=np.int64)

    # -- chunks and vectors

    def _by_rows(self, rows: Sequence[int] | np.ndarray, fields: list[str]) -> list[dict[str, Any]]:
        rr = [int(r) for r in np.asarray(rows, dtype=np.int64).reshape(-1)]
        for r in rr:
            if not 0 <= r < self.n_chunks:
                raise IndexError(f"row {r} is out of range 0..{self.n_chunks - 1}")
        got: dict[int, dict[str, Any]] = {}
        for at in range(0, len(rr), QUERY_MAX):
            part = sorted(set(rr[at : at + QUERY_MAX]))
            for rec in self._query(f"row in {part}", ["row", *fields], limit=len(part)):
                got[int(rec["row"])] = rec
        return [got[r] for r in rr]

    def _record(self, rec: dict[str, Any]) -> dict[str, Any]:
        return self._records._chunk_record([rec[f] for f in CHUNK_FIELDS])

    def chunks(self, rows: Sequence[int] | np.ndarray) -> list[dict[str, Any]]:
        """Chunk records in the order of `rows` (as IndexReader.chunks)."""
        return [self._record(r) for r in self._by_rows(rows, list(CHUNK_FIELDS[1:]))]

    def chunk_by_id(self, chunk_id: str) -> dict[str, Any] | None:
        if not isinstance(chunk_id, str) or not _SAFE_ID.match(chunk_id):
            return None  # ids are URL-safe; anything else names no chunk (and never reaches an expression)
        got = self._query(f'chunk_id == "{chunk_id}"', list(CHUNK_FIELDS), limit=1)
        return self._record(got[0]) if got else None

    def doc_chunks(self, doc_id: str) -> list[dict[str, Any]]:
        if not isinstance(doc_id, str) or not _SAFE_ID.match(doc_id):
            return []
        got = self._query(f'doc_id == "{doc_id}"', list(CHUNK_FIELDS), limit=QUERY_MAX)
        return [self._record(r) for r in sorted(got, key=lambda r: r["ordinal"])]

    def chunk_tokens(self, rows: Sequence[int] | np.ndarray) -> list[list[str]]:
        return [r["tokens"].split() for r in self._by_rows(rows, ["tokens"])]

    def vector(self, row: int) -> np.ndarray:
        return self.vectors([row])[0]

    def vectors(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        got = self._by_rows(rows, ["vector"])
        return np.array([r["vector"] for r in got], dtype=np.float32).reshape(len(got), self.dim)

    # documents(), document(), raw_text(), report(): VersionReader's, from the version's kb.sqlite


def _expr(scope: Any) -> str:
    return scope.expr if isinstance(scope, Scope) else ""


def open_milvus(root: str | Path, expected_model_id: str | None, verify: str, pool_size: int) -> MilvusReader:
    """The current version under root, whose manifest says engine "milvus", checked as IndexReader checks."""
    root = Path(root)
    version = current_version(root)
    if version is None or not _VERSION_RE.match(version):
        raise _fail(f"{root / CURRENT} names no version folder")
    manifest = read_manifest(root / version, expected_model_id)
    if not isinstance(manifest.get("milvus"), dict):
        raise _fail(f"{root / version} is a Milvus version without its collection's name")
    verify_files(root / version, manifest, verify)
    return MilvusReader(root, version, manifest, pool_size)

