"""write_index: a new index version written into a temp folder, fsynced, published by renames."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import bm25s
import faiss
import numpy as np

from kb.errors import IndexLoadError
from kb.model import Chunk, Report
from kb.store.bm25 import _write_bm25
from kb.store.dense import build_dense_index
from kb.store.layout import (
    BM25_DIR,
    DENSE,
    FORMAT_VERSION,
    KEEP_VERSIONS,
    SQLITE,
    VECTORS,
    _collect_garbage,
    _files,
    _fsync_dir,
    _fsync_file,
    _sha256,
    _writer_lock,
    current_version,
    list_versions,
    publish_version,
    replace_current,
)
from kb.store.records import _write_sqlite
from kb.tokens import TOKENIZER_ID


def _no_stage(stage: str) -> None:
    """The default on_stage of write_index: nothing to report."""


def _validate_inputs(
    reports: Sequence[Report], chunks: Sequence[Chunk], vectors: np.ndarray, tokens: Sequence[list[str]]
) -> np.ndarray:
    x = np.asarray(vectors)
    if x.ndim != 2 or x.shape[1] == 0:
        raise ValueError(f"vectors must be a 2-d array (n, dim); got shape {x.shape}")
    if not (len(chunks) == x.shape[0] == len(tokens)):
        raise ValueError(
            f"row counts differ: {len(chunks)} chunks, {x.shape[0]} vector rows, {len(tokens)} token lists"
        )
    x = np.ascontiguousarray(x, dtype=np.float32)
    if not np.isfinite(x).all():
        bad = int(np.flatnonzero(~np.isfinite(x).all(axis=1))[0])
        raise ValueError(f"vector row {bad} (chunk {chunks[bad].chunk_id!r}) is not finite")
    doc_ids = [r.doc_id for r in reports]
    if len(set(doc_ids)) != len(doc_ids):
        dup = next(d for d in doc_ids if doc_ids.count(d) > 1)
        raise ValueError(f"duplicate doc_id {dup!r} in reports")
    known = set(doc_ids)
    seen: set[str] = set()
    for c in chunks:
        if c.doc_id not in known:
            raise ValueError(
                f"chunk {c.chunk_id!r} belongs to doc_id {c.doc_id!r}, which is not among the reports"
            )
        if c.chunk_id in seen:
            raise ValueError(f"duplicate chunk_id {c.chunk_id!r}")
        seen.add(c.chunk_id)
    return x


def write_index(
    root: str | Path,
    reports: Sequence[Report],
    chunks: Sequence[Chunk],
    vectors: np.ndarray,
    tokens: Sequence[list[str]],
    model_id: str,
    build_info: dict[str, Any],
    *,
    dense: str | dict[str, Any] | None = None,
    progress: bool = False,
    on_stage: Callable[[str], None] | None = None,
) -> Path:
    """Write a complete new index version under root and make it current; returns its folder.

    Row i of `vectors` and `tokens` belongs to chunks[i]. `dense` forces the FAISS index type ("flat", "hnsw",
    "hnswsq8", "ivf", "ivfsq8", "ivfi8", or a spec dict); by default it is chosen by size. Old versions beyond
    the newest two, and temp folders of killed builds, are deleted afterwards. `on_stage(name)` is called after
    each step of the write ("tmp-created", "vectors", "dense", "bm25", "sqlite", "manifest", "renamed",
    "current-tmp", "current"): the benchmark times the stages with it, the tests kill a build there."""
    stage = on_stage or _no_stage
    root = Path(root)
    x = _validate_inputs(reports, chunks, vectors, tokens)
    root.mkdir(parents=True, exist_ok=True)
    with _writer_lock(root):
        try:
            previous = current_version(root)
        except IndexLoadError:  # a garbled CURRENT: this write is what repairs it
            previous = None
        # Holding the lock, every temp folder is a dead build's: free its disk before writing.
        _collect_garbage(root, keep=set(list_versions(root)))
        stamp = datetime.now(timezone.utc)
        suffix = f"{stamp:%Y%m%dT%H%M%S%fZ}-{secrets.token_hex(3)}"
        version = "v-" + suffix
        tmp = root / (".tmp-" + suffix)
        tmp.mkdir()
        try:
            stage("tmp-created")
            parts = _write_parts(tmp, reports, chunks, x, tokens, dense, progress, stage)
            manifest = {
                "format_version": FORMAT_VERSION,
                "version": version,
                "model_id": model_id,
                "dim": int(x.shape[1]),
                "counts": {
                    "documents": len(reports),
                    "chunks": len(chunks),
                    "vectors": int(x.shape[0]),
                    "faiss_ntotal": parts["ntotal"],
                    "repairs": parts["repairs"],
                },
                "checksums": {
                    p.relative_to(tmp).as_posix(): {"sha256": _sha256(p), "bytes": p.stat().st_size}
                    for p in _files(tmp)
                },
                "built_at": stamp.isoformat(timespec="seconds").replace("+00:00", "Z"),
                "dense": parts["dense"],
                "bm25": parts["bm25"],
                "tokenizer": TOKENIZER_ID,
                "software": {"faiss": faiss.__version__, "bm25s": bm25s.__version__, "numpy": np.__version__},
                "build_info": build_info,
            }
            final = publish_version(root, tmp, version, manifest, stage)
        except Exception:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        replace_current(root, version, lambda: stage("current-tmp"))
        _fsync_dir(root)
        stage("current")
        _collect_garbage(root, _versions_to_keep(root, version, previous))
    return final


def _write_parts(
    tmp: Path,
    reports: Sequence[Report],
    chunks: Sequence[Chunk],
    x: np.ndarray,
    tokens: Sequence[list[str]],
    dense: str | dict[str, Any] | None,
    progress: bool,
    stage: Callable[[str], None],
) -> dict[str, Any]:
    """vectors.npy, the FAISS index, BM25 and SQLite written into tmp, each fsynced before the next starts;
    what the manifest records of them."""
    with open(tmp / VECTORS, "wb") as f:
        np.save(f, x)
        f.flush()
        os.fsync(f.fileno())
    stage("vectors")
    index, spec = build_dense_index(x, dense)
    faiss.write_index(index, str(tmp / DENSE))
    ntotal = int(index.ntotal)
    del index  # its memory is needed for BM25
    _fsync_file(tmp / DENSE)
    stage("dense")
    bm25_info = _write_bm25(tmp / BM25_DIR, tokens, progress)
    for p in (tmp / BM25_DIR).iterdir():
        _fsync_file(p)
    _fsync_dir(tmp / BM25_DIR)
    stage("bm25")
    n_repairs = _write_sqlite(tmp / SQLITE, reports, chunks, tokens)
    _fsync_file(tmp / SQLITE)
    stage("sqlite")
    return {"dense": spec, "ntotal": ntotal, "bm25": bm25_info, "repairs": n_repairs}


def _versions_to_keep(root: Path, version: str, previous: str | None) -> set[str]:
    """The new version, the one it replaced (a server may still read it), then the newest others up to
    KEEP_VERSIONS."""
    keep = {version}
    if previous and (root / previous).is_dir():
        keep.add(previous)
    others = [v for v in list_versions(root) if v not in keep]
    while len(keep) < KEEP_VERSIONS and others:
        keep.add(others.pop())
    return keep
