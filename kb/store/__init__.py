"""The on-disk index: versioned folders of plain files (vectors, FAISS, BM25, SQLite), swapped atomically."""

# Re-exports: every name callers import from kb.store. The tuning constants are not among them: each is read
# by the submodule that defines it (kb.store.dense, .layout, ...), so set or patch it there.
from kb.errors import IndexLoadError, IndexMissingError
from kb.store.bm25 import BM25_PARAMS, Bm25Index
from kb.store.dense import (
    DENSE_TYPES,
    HAS_INT8_CODES,
    DenseIndex,
    build_dense_index,
    choose_dense_spec,
    default_dense_spec,
    dense_search_rows,
    read_dense_index,
)
from kb.store.layout import (
    BM25_DIR,
    CURRENT,
    DENSE,
    FORMAT_VERSION,
    MANIFEST,
    REBUILD_HINT,
    SQLITE,
    VECTORS,
    current_version,
    list_versions,
    writer_lock,
)
from kb.store.reader import IndexReader, open_index
from kb.store.records import Records
from kb.store.vectors import VectorFile
from kb.store.writer import write_index
from kb.threads import WORKERS, worker_pool  # imported from kb.store before kb/threads.py existed

__all__ = [
    "BM25_DIR",
    "BM25_PARAMS",
    "CURRENT",
    "DENSE",
    "DENSE_TYPES",
    "FORMAT_VERSION",
    "HAS_INT8_CODES",
    "MANIFEST",
    "REBUILD_HINT",
    "SQLITE",
    "VECTORS",
    "WORKERS",
    "Bm25Index",
    "DenseIndex",
    "IndexLoadError",
    "IndexMissingError",
    "IndexReader",
    "Records",
    "VectorFile",
    "build_dense_index",
    "choose_dense_spec",
    "current_version",
    "default_dense_spec",
    "dense_search_rows",
    "list_versions",
    "open_index",
    "read_dense_index",
    "worker_pool",
    "write_index",
    "writer_lock",
]
