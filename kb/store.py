"""The on-disk index: versioned folders of plain files (vectors, FAISS, BM25, SQLite, manifest), swapped atomically."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import re
import secrets
import shutil
import sqlite3
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import bm25s
import faiss
import numpy as np
import scipy.sparse

try:  # the C loop behind csc_matrix @ x, called on one column's slices so nothing is copied (private API)
    from scipy.sparse._sparsetools import csc_matvec as _csc_matvec
except ImportError:  # pragma: no cover - other scipy layouts take the public path in _add_column
    _csc_matvec = None

from kb.model import KINDS, Chunk, Repair, Report, Section
from kb.tokens import TOKENIZER_ID

try:  # POSIX; on Windows writers are not serialized and stale temp folders are judged by age
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

FORMAT_VERSION = 1
REBUILD_HINT = "rebuild with `scripts/rebuild_index` or `kb build`"
CURRENT = "CURRENT"
MANIFEST = "manifest.json"
VECTORS = "vectors.npy"
DENSE = "dense.faiss"
BM25_DIR = "bm25"
SQLITE = "kb.sqlite"
KEEP_VERSIONS = 2
# Files above this size get a size check at load; their sha256 only with verify="full" (hashing 1.5 GB of
# vectors would cost seconds at every server start).
FULL_HASH_MAX_BYTES = 64 * 1024 * 1024
# Without fcntl a concurrent writer cannot be ruled out, so only old temp folders count as stale.
STALE_TMP_SECONDS = 6 * 3600
BM25_PARAMS = {"method": "lucene", "k1": 1.5, "b": 0.75}

# ---- dense index choice -------------------------------------------------------------------------------
# Measured on this machine (2 cores, AMD EPYC, faiss-cpu 1.15.1, one OpenMP thread per query, 384-d unit
# vectors; p50 latency of single queries as IndexReader runs them, recall@10 against exact search;
# kb.densebench.measure_dense_choices). "lowrank" data is a 24-d continuum plus noise, "clustered" a
# mixture of gaussians; uniform random vectors have no neighbourhoods at all (every approximate index
# scores recall 0.05-0.3 on them at 10^5) and say nothing about real embeddings.
#   flat          10^4: 0.44-0.51 ms · 1.5·10^4: 1.16 ms · 2·10^4: 1.75 ms · 10^5: 8.7-9.3 ms · 10^6: 97 ms
#   10^5 lowrank  HNSW-SQ8 M=32 efC=80 efS=128 +rerank: 0.81 ms, recall 0.999 (efS=64: 0.49 ms, 0.990)
#                 HNSW-Flat M=32 efC=80 efS=128: 0.75 ms, 0.999 (efS=64: 0.43 ms, 0.989); build 49-54 s
#                 IVF-Flat nlist=1264: nprobe 16 0.22 ms 0.58 · nprobe 64 0.60 ms 0.86 · nprobe 128 1.16 ms 0.95
#   10^5 clustered  HNSW efS=64 0.15 ms 0.995; IVF nprobe 8 0.15 ms 1.0 (clusters align with IVF lists)
#   10^6 lowrank  HNSW-SQ8 M=32 efC=80 efS=128 +rerank: 1.19 ms, recall 0.980, 656 B/row resident
#                 (mapped), build 25 min (efS=64: 0.83 ms, 0.951)
#                 IVF-SQ8 nlist=4000 +rerank: nprobe 32 0.92 ms 0.68 · nprobe 128 2.8 ms 0.93
# "Text-derived" data (scripts/bench: passages recombined from real sentences, vectors mixed from the real
# model's sentence vectors) is harder: sentences recur across thousands of passages, so a query's top 100
# lie within 0.003-0.006 of cosine and HNSW's greedy walk misses many of them:
#   10^5  HNSW-SQ8 M=32 efC=80: efS 128 0.35 ms 0.857 · efS 512 1.03 ms 0.968 (M=64 efC=200: efS 512 0.984)
#         IVF-SQ8 nlist=1264: nprobe 64 0.53 ms 0.946 · nprobe 128 0.97 ms 0.984
#         IVF over signed 8-bit codes, L2 (ivfi8) nlist=1264: nprobe 128 0.52 ms 0.985 · 160 0.59 ms 0.990
#   10^6  HNSW-SQ8 M=32 efC=80: efS 128 0.69 ms 0.695 · efS 512 2.03 ms 0.882
#         IVF-SQ8 nlist=4000: nprobe 64 1.48 ms 0.926 · nprobe 96 2.21 ms 0.950 · nprobe 128 2.79 ms 0.968
#         ivfi8 nlist=4000: nprobe 64 0.81 ms 0.919 · 96 1.13 ms 0.959 · 112 1.26 ms 0.965 · 128 1.39 ms
#         0.973; 392 B/row in memory, build 122 s
# So: exact search up to 10^4 rows (≤0.5 ms); above, IVF over signed 8-bit codes (unit vectors × 127/max|x|,
# scanned twice as fast as faiss's trained 8-bit codes), its top k·4 rescored exactly from vectors.npy;
# nprobe by size band from the text-derived rows above. Vectors that are not unit length get IVF-SQ8.
# (These figures are single-threaded; IVF search now scans half of the probed lists in a second thread,
# see _faiss_search.)
FLAT_MAX_ROWS = 10_000
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80  # 200 doubles build time for +0.004 recall at 10^5
HNSW_EF_SEARCH = 128
SQ8_RERANK = 4  # fetch k·4 (at most k+30) by the quantized scores, rescore exactly from vectors.npy
# At 10^6 text-derived rows (ivfi8, nprobe 96, k=60 as hybrid search asks): recall@60 against exact search was
# 0.889 rescoring only the top 60, 0.929 rescoring the top 90, and 0.929 still at 120, 160 and 240 — the lists
# probed set the limit, not the rescoring. Each rescored row is one read of vectors.npy.
SQ8_RERANK_MAX_EXTRA = 30
IVF_NPROBE = 32
IVF_SQ8_NPROBE = 32
IVF_TRAIN_POINTS_PER_LIST = 64  # k-means sample; faiss's default 256 would make 10^6 training ~20 min
IVF_TRAIN_NITER = 20
# Filtered dense search: exact scoring over the allowed rows when there are at most this many (gathering
# rows from the mapped vectors.npy + scoring, measured p50: 1024 rows 0.4 ms, 4096 1.4-1.6 ms, 8192
# 2.7-3.5 ms), else FAISS with over-fetch (see IndexReader.dense_search).
SUBSET_EXACT_MAX = 4096
# Lists probed by the automatic "ivfi8" index: (largest size of the band, nprobe), first match wins.
IVF_I8_NPROBE_BY_SIZE: tuple[tuple[int | None, int], ...] = ((300_000, 160), (None, 96))
HAS_INT8_CODES = hasattr(faiss.ScalarQuantizer, "QT_8bit_direct_signed")
IVF_TYPES = ("ivf", "ivfsq8", "ivfi8")
DENSE_TYPES = ("flat", "hnsw", "hnswsq8", *IVF_TYPES)


class IndexLoadError(Exception):
    """The index on disk cannot be used as it is (corrupt, incomplete, or built by another model)."""


class IndexMissingError(IndexLoadError):
    """There is no index at the given root."""


def _fail(problem: str, cls: type[IndexLoadError] = IndexLoadError) -> IndexLoadError:
    return cls(f"{problem}; {REBUILD_HINT}")


def _ivf_nlist(n: int) -> int:
    # ≈4·√n lists, but never fewer than 39 training points per list (faiss's k-means minimum).
    return max(1, min(int(4 * np.sqrt(max(n, 1))), n // 39))


def default_dense_spec(kind: str, n: int) -> dict[str, Any]:
    """Parameters for a dense index of `kind` over n rows."""
    if kind == "flat":
        return {"type": "flat"}
    if kind == "hnsw":
        return {
            "type": "hnsw",
            "M": HNSW_M,
            "efConstruction": HNSW_EF_CONSTRUCTION,
            "efSearch": HNSW_EF_SEARCH,
        }
    if kind == "hnswsq8":
        return {**default_dense_spec("hnsw", n), "type": "hnswsq8", "rerank": SQ8_RERANK}
    if kind == "ivf":
        return {"type": "ivf", "nlist": _ivf_nlist(n), "nprobe": IVF_NPROBE}
    if kind == "ivfsq8":
        return {"type": "ivfsq8", "nlist": _ivf_nlist(n), "nprobe": IVF_SQ8_NPROBE, "rerank": SQ8_RERANK}
    if kind == "ivfi8":
        return {"type": "ivfi8", "nlist": _ivf_nlist(n), "nprobe": ivf_i8_nprobe(n), "rerank": SQ8_RERANK}
    raise ValueError(f"unknown dense index type {kind!r}; valid: {', '.join(DENSE_TYPES)} or 'auto'")


def ivf_i8_nprobe(n: int) -> int:
    """Lists probed per query by the automatic IVF choice: the measured setting for the size band."""
    return next(nprobe for top, nprobe in IVF_I8_NPROBE_BY_SIZE if top is None or n <= top)


def choose_dense_spec(n: int) -> dict[str, Any]:
    """The automatic choice by size (see the measurements above FLAT_MAX_ROWS)."""
    if n <= FLAT_MAX_ROWS:
        return default_dense_spec("flat", n)
    return default_dense_spec("ivfi8" if HAS_INT8_CODES else "ivfsq8", n)


def _unit_rows(x: np.ndarray, tol: float = 1e-3) -> bool:
    """Whether every row has length 1 (or 0): L2 order then equals inner-product order."""
    norms = np.linalg.norm(x, axis=1)
    return bool(np.all((np.abs(norms - 1.0) <= tol) | (norms == 0.0)))


def _int8_codes(x: np.ndarray, scale: float) -> np.ndarray:
    return np.clip(np.rint(x * scale), -128, 127).astype(np.float32)


def _resolve_dense(dense: str | dict[str, Any] | None, n: int) -> dict[str, Any]:
    if dense is None or dense == "auto":
        return choose_dense_spec(n)
    wants_i8 = dense == "ivfi8" or (isinstance(dense, dict) and dense.get("type") == "ivfi8")
    if wants_i8 and not HAS_INT8_CODES:
        raise ValueError(f"this faiss ({faiss.__version__}) has no signed 8-bit codes; use 'ivfsq8'")
    if isinstance(dense, str):
        spec = default_dense_spec(dense, n)
    else:
        spec = {**default_dense_spec(str(dense.get("type")), n), **dense}
    if spec["type"] != "flat" and n == 0:
        return default_dense_spec("flat", n)
    if spec["type"] in IVF_TYPES:
        spec["nlist"] = max(1, min(int(spec["nlist"]), n))
    if spec["type"] == "ivfi8":  # its FAISS scores are L2 distances: only the exact rescoring gives scores
        spec["rerank"] = max(1, int(spec.get("rerank") or 1))
    return spec


def build_dense_index(
    vectors: np.ndarray, spec: dict[str, Any] | str | None = None
) -> tuple[Any, dict[str, Any]]:
    """A FAISS inner-product index over `vectors` (row i gets id i), and its full spec."""
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    n, d = x.shape
    full = _resolve_dense(spec, n)
    if full["type"] == "ivfi8" and not _unit_rows(x):
        if spec not in (None, "auto"):
            raise ValueError("the 'ivfi8' index needs unit-length vectors; use 'ivfsq8'")
        full = default_dense_spec("ivfsq8", n)  # inner product over 8-bit codes makes no such assumption
    full["metric"] = "inner_product"
    kind = full["type"]
    index: Any
    if kind == "flat":
        index = faiss.IndexFlatIP(d)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(d, int(full["M"]), faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = int(full["efConstruction"])
        index.hnsw.efSearch = int(full["efSearch"])
    elif kind == "hnswsq8":
        index = faiss.index_factory(d, f"HNSW{int(full['M'])},SQ8", faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = int(full["efConstruction"])
        index.hnsw.efSearch = int(full["efSearch"])
        index.train(x if n else np.zeros((1, d), dtype=np.float32))
    elif kind in ("ivf", "ivfsq8"):
        quantizer = faiss.IndexFlatIP(d)
        if kind == "ivf":
            index = faiss.IndexIVFFlat(quantizer, d, int(full["nlist"]), faiss.METRIC_INNER_PRODUCT)
        else:
            index = faiss.IndexIVFScalarQuantizer(
                quantizer, d, int(full["nlist"]), faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
            )
        _train_ivf(index, x, full)
    elif kind == "ivfi8":
        # Unit vectors times 127/max|x| stored as signed bytes, searched by L2 (the same order as inner
        # product for unit vectors): this faiss scans such codes twice as fast as trained 8-bit ones. Its
        # inner-product scan of them returns zeros, hence L2. The candidates are rescored exactly.
        peak = float(np.abs(x).max()) if n else 1.0
        full["scale"] = scale = 127.0 / (peak if peak > 0 else 1.0)
        index = faiss.IndexIVFScalarQuantizer(
            faiss.IndexFlatL2(d), d, int(full["nlist"]), faiss.ScalarQuantizer.QT_8bit_direct_signed, faiss.METRIC_L2
        )
        index.by_residual = False
        # faiss would sample nlist·IVF_TRAIN_POINTS_PER_LIST rows anyway; sampling first spares a scaled copy
        sample = np.random.default_rng(1234).permutation(n)[: int(full["nlist"]) * IVF_TRAIN_POINTS_PER_LIST]
        _train_ivf(index, x[np.sort(sample)] * scale, full)
        for start in range(0, n, 65536):  # converted a block at a time: a float copy of 10^6 rows is 1.5 GB
            index.add(_int8_codes(x[start : start + 65536], scale))
        return index, full
    else:  # pragma: no cover - _resolve_dense rejects unknown types
        raise ValueError(kind)
    if n:
        index.add(x)
    return index, full


def _train_ivf(index: Any, x: np.ndarray, spec: dict[str, Any]) -> None:
    """k-means for an IVF index's lists (bounded sample, fixed seed), then its search-time nprobe."""
    index.cp.max_points_per_centroid = IVF_TRAIN_POINTS_PER_LIST
    index.cp.niter = IVF_TRAIN_NITER
    index.cp.seed = 1234
    index.train(x)
    index.nprobe = int(spec["nprobe"])


def read_dense_index(path: str | Path, spec: dict[str, Any]) -> Any:
    """Load a FAISS index memory-mapped where its type allows, with the search-time params of `spec`."""
    kind = spec.get("type")
    index: Any  # read_index returns the concrete (downcast) index class
    if kind in IVF_TYPES:
        # IO_FLAG_MMAP turns IVF lists into OnDiskInvertedLists, measured 10x slower per query; IVF-SQ8
        # codes are small enough (~0.4 KB/row) to hold in memory.
        index = faiss.read_index(str(path))
    else:
        try:  # flat codes (also HNSW's storage) map zero-copy; the HNSW graph itself is read into memory
            index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY)
        except RuntimeError:
            index = faiss.read_index(str(path))
    if kind in ("hnsw", "hnswsq8"):
        index.hnsw.efSearch = int(spec["efSearch"])
    elif kind in IVF_TYPES:
        index.nprobe = int(spec["nprobe"])
    return index


def _top(rows: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k best (rows, scores), best first, ties by row (also at the k-th place: the lowest rows win, so
    the answer does not depend on which candidates were passed in)."""
    if len(rows) > k:
        kth = scores[np.argpartition(-scores, k - 1)[k - 1]]
        above = np.flatnonzero(scores > kth)
        tied = np.flatnonzero(scores == kth)
        tied = tied[np.argsort(rows[tied], kind="stable")[: k - len(above)]]
        part = np.concatenate((above, tied))
        rows, scores = rows[part], scores[part]
    order = np.lexsort((rows, -scores))
    return rows[order].astype(np.int64, copy=False), scores[order].astype(np.float32, copy=False)


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


def _scores(v: np.ndarray, q: np.ndarray) -> np.ndarray:
    # Not `v @ q`: a multi-threaded OpenBLAS matrix-vector product sometimes stalls ~8 ms on this 2-core
    # machine (measured), whatever its size; einsum uses no BLAS.
    return np.einsum("ij,j->i", v, q.reshape(-1))


@contextlib.contextmanager
def _one_omp_thread() -> Iterator[None]:
    """Run FAISS single-threaded in the calling thread (libgomp keeps the setting per thread).

    Splitting one query over both cores of a 2-core machine made a flat 10^4 scan take 16-32 ms instead
    of 0.4 ms (measured): whenever the other core is busy, the OpenMP barrier waits for a 4 ms scheduler
    tick. Batch work (training, adding) keeps all threads."""
    prev = faiss.omp_get_max_threads()
    if prev != 1:
        faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        if prev != 1:
            faiss.omp_set_num_threads(prev)


def _empty() -> tuple[np.ndarray, np.ndarray]:
    return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)


class VectorFile:
    """Rows of `vectors.npy` read with pread, by position: a random read of a few rows stays a few pages.

    A memory map of the same file kept most of it resident after a hundred queries at 10^6 rows (this
    kernel maps large page-cache chunks on every random access): 1,312 of 1,465 MiB, BENCHMARKS.md."""

    def __init__(self, path: Path) -> None:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            self._offset = f.tell()
        if fortran or len(shape) != 2:
            raise ValueError(f"expected a C-ordered 2-d array, got shape {shape}")
        self.shape: tuple[int, int] = (int(shape[0]), int(shape[1]))
        self.dtype = np.dtype(dtype)
        self.ndim = 2
        self._row_bytes = self.shape[1] * self.dtype.itemsize
        if path.stat().st_size < self._offset + self.shape[0] * self._row_bytes:
            raise ValueError(f"{path} is truncated")
        self._fd = os.open(path, os.O_RDONLY)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows: int | np.ndarray | Sequence[int]) -> np.ndarray:
        if isinstance(rows, (int, np.integer)):
            return self[[int(rows)]][0]
        ids: list[int] = np.asarray(rows, dtype=np.int64).reshape(-1).tolist()
        if ids and (min(ids) < 0 or max(ids) >= self.shape[0]):
            raise IndexError(f"rows {min(ids)}..{max(ids)} are out of range 0..{self.shape[0] - 1}")
        # One pread per run of consecutive rows (a document's passages are adjacent), runs found in plain
        # Python: for the 40-90 rows of a search, numpy's per-call overhead costs more than the reads.
        # Measured per 40 random rows: 69-81 µs, against 104-136 µs for preadv into slices of the output.
        runs: list[list[int]] = []
        for r in ids:
            if runs and r == runs[-1][0] + runs[-1][1]:
                runs[-1][1] += 1
            else:
                runs.append([r, 1])
        rb, fd, base = self._row_bytes, self._fd, self._offset
        parts = [os.pread(fd, c * rb, base + r * rb) for r, c in runs]
        for (r, c), part in zip(runs, parts, strict=True):
            if len(part) != c * rb:
                raise OSError(f"short read from the vectors file at row {r}")
        return np.frombuffer(b"".join(parts), dtype=self.dtype).reshape(len(ids), self.shape[1])

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)


_POOL_LOCK = threading.Lock()
_POOL: ThreadPoolExecutor | None = None
# IVF probes of one query are scanned in two halves from this many probed lists up (below, a thread handoff
# costs more than half a scan).
SPLIT_MIN_PROBES = 16
WORKERS = os.cpu_count() or 2


def worker_pool() -> ThreadPoolExecutor:
    """Threads for the second half of one query's work (the other half runs in the caller's thread), one per
    core, shared by every reader and searcher in the process, started on first use."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="kb-worker")
        return _POOL


def _faiss_search(index: Any, x: np.ndarray, fetch: int) -> tuple[np.ndarray, np.ndarray]:
    """index.search for one query; an IVF index scans every other probed list in a worker thread.

    Not FAISS's own intra-query threads (IndexIVF.parallel_mode): their OpenMP barrier waits a scheduler tick
    whenever the other core is busy (see _one_omp_thread). Here the caller scans its half, then takes back
    the other half if no worker has started it, so a busy machine costs no waiting. Measured at 10^6 rows
    (ivfi8, nprobe 96, IndexReader.dense_search with k=10, blocks of 100 queries alternating in one
    process): p50 1.66-1.79 ms in one thread, 1.37-1.51 ms in two."""
    nprobe = int(getattr(index, "nprobe", 0))
    if not isinstance(index, faiss.IndexIVF) or nprobe < SPLIT_MIN_PROBES:
        with _one_omp_thread():
            return index.search(x, fetch)
    with _one_omp_thread():
        dq, lists = index.quantizer.search(x, nprobe)
    odd = lists.copy()
    odd[:, ::2] = -1  # a list number of -1 is skipped by search_preassigned
    lists[:, 1::2] = -1
    other = worker_pool().submit(_scan_lists, index, x, fetch, odd, dq)
    d1, l1 = _scan_lists(index, x, fetch, lists, dq)
    d2, l2 = _scan_lists(index, x, fetch, odd, dq) if other.cancel() else other.result()
    d, lab = np.concatenate([d1[0], d2[0]]), np.concatenate([l1[0], l2[0]])
    # padding (-1 labels) carries the worst distance, so it sorts last either way
    order = np.argsort(-d if index.metric_type == faiss.METRIC_INNER_PRODUCT else d, kind="stable")[:fetch]
    return d[order][None], lab[order][None]


def _scan_lists(
    index: Any, x: np.ndarray, fetch: int, lists: np.ndarray, dq: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    with _one_omp_thread():
        return index.search_preassigned(x, fetch, lists, dq)


def dense_search_rows(
    index: Any, spec: dict[str, Any], vectors: np.ndarray | VectorFile, q: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """FAISS top-k for one query vector; -1 padding dropped; quantized indexes rescored exactly."""
    n = int(index.ntotal)
    if k <= 0 or n == 0:
        return _empty()
    rerank = int(spec.get("rerank", 0))
    fetch = min(n, min(k * rerank, k + SQ8_RERANK_MAX_EXTRA) if rerank > 1 else k)
    qq = q.reshape(1, -1) * np.float32(spec["scale"]) if "scale" in spec else q.reshape(1, -1)
    scores, labels = _faiss_search(index, np.ascontiguousarray(qq, dtype=np.float32), fetch)
    keep = (labels[0] >= 0) & (labels[0] < n)
    rows, sc = labels[0][keep].astype(np.int64), scores[0][keep]
    if rerank and len(rows):
        rows = np.sort(rows)  # sorted reads, in file order
        sc = _scores(vectors[rows], q)
    return _top(rows, sc, k)


# ---- writing ------------------------------------------------------------------------------------------

_SCHEMA = """
CREATE TABLE documents(
  doc_id TEXT PRIMARY KEY, source TEXT NOT NULL, sha256 TEXT NOT NULL, encoding TEXT,
  title TEXT, headline TEXT, locality TEXT, level TEXT, region TEXT, province TEXT, year INTEGER,
  published TEXT, meta TEXT NOT NULL, text TEXT NOT NULL, raw_text TEXT NOT NULL, sections TEXT NOT NULL);
CREATE TABLE chunks(
  "row" INTEGER PRIMARY KEY, chunk_id TEXT NOT NULL UNIQUE, doc_id TEXT NOT NULL REFERENCES documents(doc_id),
  ordinal INTEGER NOT NULL, section_path TEXT NOT NULL, kind TEXT NOT NULL, start INTEGER NOT NULL,
  "end" INTEGER NOT NULL, text TEXT NOT NULL, tokens TEXT NOT NULL);
CREATE TABLE repairs(
  doc_id TEXT NOT NULL REFERENCES documents(doc_id), seq INTEGER NOT NULL, kind TEXT NOT NULL,
  start INTEGER NOT NULL, "end" INTEGER NOT NULL, "before" TEXT NOT NULL, "after" TEXT NOT NULL,
  PRIMARY KEY (doc_id, seq));
CREATE INDEX chunks_doc ON chunks(doc_id, ordinal);
CREATE INDEX chunks_kind ON chunks(kind);
CREATE INDEX documents_locality ON documents(locality);
CREATE INDEX documents_year ON documents(year);
"""


def _no_stage(stage: str) -> None:
    """The default on_stage of write_index: nothing to report."""


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDWR)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # Windows cannot open directories; NTFS renames are journaled anyway
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)


@contextlib.contextmanager
def _writer_lock(root: Path) -> Iterator[None]:
    """Serializes writers on one root, so any temp folder seen while holding it is a dead build's."""
    if fcntl is None:  # pragma: no cover
        yield
        return
    with open(root / ".lock", "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def current_version(root: str | Path) -> str | None:
    """The version folder name that root/CURRENT names, or None."""
    try:
        name = (Path(root) / CURRENT).read_text(encoding="utf-8").strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return name or None


def list_versions(root: str | Path) -> list[str]:
    """Complete version folders under root, oldest first by name."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and p.name.startswith("v-"))


def _remove_tree(path: Path) -> None:
    # Rename first, so a kill during the slow delete never leaves a half-deleted v-… folder.
    trash = path.with_name(".del-" + path.name.lstrip("."))
    try:
        os.replace(path, trash)
    except OSError:
        trash = path
    shutil.rmtree(trash, ignore_errors=True)


def _collect_garbage(root: Path, keep: set[str]) -> list[str]:
    removed = []
    now = time.time()
    for p in root.iterdir():
        if not p.is_dir():
            continue
        if p.name.startswith("v-") and p.name not in keep:
            _remove_tree(p)
        elif p.name.startswith((".tmp-", ".del-")):
            if fcntl is None and now - p.stat().st_mtime < STALE_TMP_SECONDS:  # pragma: no cover
                continue
            shutil.rmtree(p, ignore_errors=True)
        else:
            continue
        removed.append(p.name)
    return removed


def _json(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


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


def _write_sqlite(
    path: Path, reports: Sequence[Report], chunks: Sequence[Chunk], tokens: Sequence[list[str]]
) -> int:
    con = sqlite3.connect(path)
    try:
        # No journal: atomicity comes from publishing the whole folder; durability from our fsync.
        con.execute("PRAGMA journal_mode=OFF")
        con.execute("PRAGMA synchronous=OFF")
        con.executescript(_SCHEMA)
        con.executemany(
            "INSERT INTO documents VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                (
                    r.doc_id,
                    r.source,
                    r.sha256,
                    r.encoding,
                    r.title,
                    r.headline,
                    r.locality,
                    r.level,
                    r.region,
                    r.province,
                    r.year,
                    r.published,
                    _json(r.summary()),
                    r.text,
                    r.raw_text,
                    _json([s.to_dict() for s in r.sections]),
                )
                for r in reports
            ),
        )
        con.executemany(
            "INSERT INTO chunks VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                (
                    i,
                    c.chunk_id,
                    c.doc_id,
                    c.ordinal,
                    _json(list(c.section_path)),
                    c.kind,
                    c.start,
                    c.end,
                    c.text,
                    _json(list(t)),
                )
                for i, (c, t) in enumerate(zip(chunks, tokens, strict=True))
            ),
        )
        n_repairs = 0
        for r in reports:
            con.executemany(
                "INSERT INTO repairs VALUES (?,?,?,?,?,?,?)",
                ((r.doc_id, j, p.kind, p.start, p.end, p.before, p.after) for j, p in enumerate(r.repairs)),
            )
            n_repairs += len(r.repairs)
        con.commit()
    finally:
        con.close()
    return n_repairs


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

    Row i of `vectors` and `tokens` belongs to chunks[i]. `dense` forces the FAISS index type ("flat",
    "hnsw", "ivf", "ivfsq8", or a spec dict); by default it is chosen by size. Old versions beyond the
    newest two, and temp folders of killed builds, are deleted afterwards. `on_stage(name)` is called after each
    step of the write ("tmp-created", "vectors", "dense", "bm25", "sqlite", "manifest", "renamed",
    "current-tmp", "current"): the benchmark times the stages with it, the tests kill a build there."""
    stage = on_stage or _no_stage
    root = Path(root)
    x = _validate_inputs(reports, chunks, vectors, tokens)
    n, dim = x.shape
    root.mkdir(parents=True, exist_ok=True)
    with _writer_lock(root):
        previous = current_version(root)
        # Holding the lock, every temp folder is a dead build's: free its disk before writing.
        _collect_garbage(root, keep=set(list_versions(root)))
        stamp = datetime.now(timezone.utc)
        suffix = f"{stamp:%Y%m%dT%H%M%S%fZ}-{secrets.token_hex(3)}"
        version = "v-" + suffix
        tmp = root / (".tmp-" + suffix)
        tmp.mkdir()
        try:
            stage("tmp-created")
            with open(tmp / VECTORS, "wb") as f:
                np.save(f, x)
                f.flush()
                os.fsync(f.fileno())
            stage("vectors")
            index, spec = build_dense_index(x, dense)
            faiss.write_index(index, str(tmp / DENSE))
            ntotal = int(index.ntotal)
            del index
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
            checksums = {
                p.relative_to(tmp).as_posix(): {"sha256": _sha256(p), "bytes": p.stat().st_size}
                for p in _files(tmp)
            }
            manifest = {
                "format_version": FORMAT_VERSION,
                "version": version,
                "model_id": model_id,
                "dim": int(dim),
                "counts": {
                    "documents": len(reports),
                    "chunks": len(chunks),
                    "vectors": int(n),
                    "faiss_ntotal": ntotal,
                    "repairs": n_repairs,
                },
                "checksums": checksums,
                "built_at": stamp.isoformat(timespec="seconds").replace("+00:00", "Z"),
                "dense": spec,
                "bm25": bm25_info,
                "tokenizer": TOKENIZER_ID,
                "software": {"faiss": faiss.__version__, "bm25s": bm25s.__version__, "numpy": np.__version__},
                "build_info": build_info,
            }
            with open(tmp / MANIFEST, "w", encoding="utf-8") as f:
                f.write(json.dumps(manifest, ensure_ascii=False, indent=2, default=str))
                f.flush()
                os.fsync(f.fileno())
            _fsync_dir(tmp)
            stage("manifest")
            final = root / version
            os.replace(tmp, final)
            _fsync_dir(root)
            stage("renamed")
        except Exception:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        cur_tmp = root / (CURRENT + ".tmp")
        with open(cur_tmp, "w", encoding="utf-8") as f:
            f.write(version + "\n")
            f.flush()
            os.fsync(f.fileno())
        stage("current-tmp")
        os.replace(cur_tmp, root / CURRENT)
        _fsync_dir(root)
        stage("current")
        keep = {version}
        if previous and (root / previous).is_dir():
            keep.add(previous)
        others = [v for v in list_versions(root) if v not in keep]
        while len(keep) < KEEP_VERSIONS and others:
            keep.add(others.pop())
        _collect_garbage(root, keep)
    return final


# ---- reading ------------------------------------------------------------------------------------------

_VERSION_RE = re.compile(r"^v-[0-9A-Za-z._-]+$")
# A chunk record is its row's columns plus its report's fields (held in memory by IndexReader).
_ROW_COLS = ("row", "chunk_id", "doc_id", "ordinal", "section_path", "kind", "start", "end", "text")
_ROW_SELECT = ", ".join(f'c."{c}"' for c in _ROW_COLS)
_DOC_COLS = ("source", "locality", "region", "province", "year", "level", "title")
_DOC_SELECT = ", ".join(f'"{c}"' for c in _DOC_COLS)


def _as_list(v: Any) -> list[Any]:
    return list(v) if isinstance(v, (list, tuple, set, frozenset)) else [v]


def open_index(
    root: str | Path, expected_model_id: str | None = None, *, verify: str = "auto", pool_size: int = 4
) -> IndexReader:
    """Open the current index version under root, verified (see IndexReader)."""
    return IndexReader(root, expected_model_id, verify=verify, pool_size=pool_size)


class IndexReader:
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
        self._pool: queue.Queue[sqlite3.Connection] = queue.Queue()
        self._conns: list[sqlite3.Connection] = []
        self._local = threading.local()  # per-thread scratch (the BM25 score array)
        self._filter_cache: dict[tuple[Any, ...], np.ndarray | None] = {}
        self._cache_lock = threading.Lock()
        version = current_version(self.root)
        if version is None:
            raise _fail(f"no index at {self.root} ({self.root / CURRENT} is missing)", IndexMissingError)
        if not _VERSION_RE.match(version):
            raise _fail(f"{self.root / CURRENT} names {version!r}, which is not a version folder name")
        self.version = version
        self.path = self.root / version
        if not self.path.is_dir():
            raise _fail(f"{self.root / CURRENT} names {version}, but {self.path} does not exist")
        self.manifest = self._read_manifest(expected_model_id)
        self._verify_files(verify)
        try:
            self._load(pool_size)
        except IndexLoadError:
            self.close()
            raise
        except Exception as e:
            self.close()
            raise _fail(f"cannot load index {self.path}: {type(e).__name__}: {e}") from e

    # -- loading

    def _read_manifest(self, expected_model_id: str | None) -> dict[str, Any]:
        mpath = self.path / MANIFEST
        try:
            manifest = json.loads(mpath.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise _fail(f"{mpath} is missing") from None
        except (OSError, ValueError) as e:
            raise _fail(f"{mpath} is unreadable: {e}") from e
        if not isinstance(manifest, dict):
            raise _fail(f"{mpath} is not a JSON object")
        fv = manifest.get("format_version")
        if fv != FORMAT_VERSION:
            raise _fail(f"{mpath} has format_version {fv!r}; this kb reads format_version {FORMAT_VERSION}")
        for key in ("model_id", "dim", "counts", "checksums", "dense", "tokenizer"):
            if key not in manifest:
                raise _fail(f"{mpath} lacks {key!r}")
        if expected_model_id is not None and manifest["model_id"] != expected_model_id:
            raise _fail(
                f"index {self.path} was built with model {manifest['model_id']!r}, "
                f"but the configured model is {expected_model_id!r}"
            )
        if manifest["tokenizer"] != TOKENIZER_ID:
            raise _fail(
                f"index {self.path} was tokenized with {manifest['tokenizer']!r}, "
                f"but this kb tokenizes with {TOKENIZER_ID!r}"
            )
        return manifest

    def _verify_files(self, verify: str) -> None:
        for rel, want in sorted(self.manifest["checksums"].items()):
            p = self.path / rel
            try:
                size = p.stat().st_size
            except FileNotFoundError:
                raise _fail(f"{p} is missing") from None
            if size != want["bytes"]:
                raise _fail(f"{p} has {size} bytes, the manifest says {want['bytes']}")
            if verify == "full" or (verify == "auto" and size <= FULL_HASH_MAX_BYTES):
                got = _sha256(p)
                if got != want["sha256"]:
                    raise _fail(
                        f"{p} is corrupt (sha256 {got[:12]}…, the manifest says {want['sha256'][:12]}…)"
                    )

    def _load(self, pool_size: int) -> None:
        m = self.manifest
        counts = m["counts"]
        self.model_id: str = m["model_id"]
        self.dim = int(m["dim"])
        self._dense_spec: dict[str, Any] = m["dense"]
        vpath = self.path / VECTORS
        try:
            self._vectors = VectorFile(vpath)
        except (OSError, ValueError) as e:
            raise _fail(f"{vpath} is unreadable: {e}") from e
        n = int(self._vectors.shape[0])
        if self._vectors.ndim != 2 or self._vectors.dtype != np.float32 or self._vectors.shape[1] != self.dim:
            raise _fail(
                f"{vpath} holds {self._vectors.dtype} {self._vectors.shape}, the manifest says float32 (n, {self.dim})"
            )
        if n != counts["vectors"] or n != counts["chunks"]:
            raise _fail(
                f"{vpath} has {n} rows, the manifest counts {counts['vectors']} vectors / {counts['chunks']} chunks"
            )
        self.n_chunks = n
        dpath = self.path / DENSE
        try:
            self._faiss = read_dense_index(dpath, self._dense_spec)
        except RuntimeError as e:
            raise _fail(f"{dpath} is unreadable: {str(e).strip().splitlines()[-1]}") from e
        if int(self._faiss.ntotal) != n or int(self._faiss.d) != self.dim:
            raise _fail(
                f"{dpath} holds {self._faiss.ntotal} vectors of dim {self._faiss.d}; expected {n} of dim {self.dim}"
            )
        self._bm25: Any = None
        self._bm25_n = 0
        if not m.get("bm25", {}).get("empty"):
            bpath = self.path / BM25_DIR
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    self._bm25 = bm25s.BM25.load(str(bpath), mmap=True, show_progress=False)
            except (OSError, ValueError) as e:
                raise _fail(f"{bpath} is unreadable: {e}") from e
            self._bm25_n = int(self._bm25.scores["num_docs"])
            if self._bm25_n != n:
                raise _fail(f"{bpath} indexes {self._bm25_n} chunks; expected {n}")
            sc = self._bm25.scores
            # bm25s's own memory-mapped arrays, a chunks × vocabulary matrix in CSC form: token t's postings
            # are rows indices[indptr[t]:indptr[t+1]] with precomputed scores data[...]
            self._bm25_postings: Any = (sc["data"], sc["indices"], np.asarray(sc["indptr"], dtype=np.int64))
        uri = (self.path / SQLITE).resolve().as_uri() + "?mode=ro&immutable=1"
        try:
            # Connections are opened now, not per thread later: once a newer build deletes this version
            # folder, the open files keep working but the path no longer does.
            for _ in range(max(1, pool_size)):
                con = sqlite3.connect(uri, uri=True, check_same_thread=False)
                con.row_factory = sqlite3.Row
                self._conns.append(con)
                self._pool.put(con)
            with self._db() as con:
                docs = con.execute("SELECT count(*) FROM documents").fetchone()[0]
                rows = con.execute(
                    'SELECT count(*), coalesce(min("row"), 0), coalesce(max("row"), -1) FROM chunks'
                ).fetchone()
                # The few fields of a report that every chunk record carries, held in memory (~0.3 KB a
                # report): a search's chunk lookups then skip the join, 2.2 → 1.3 ms for 120 rows at 10^6.
                self._doc_fields: dict[str, dict[str, Any]] = {
                    r[0]: dict(zip(_DOC_COLS, tuple(r)[1:], strict=True))
                    for r in con.execute(f"SELECT doc_id, {_DOC_SELECT} FROM documents")
                }
        except sqlite3.Error as e:
            raise _fail(f"{self.path / SQLITE} is unreadable: {e}") from e
        if docs != counts["documents"]:
            raise _fail(
                f"{self.path / SQLITE} has {docs} documents, the manifest counts {counts['documents']}"
            )
        if tuple(rows) != (n, 0, n - 1) and n:
            raise _fail(
                f"{self.path / SQLITE} has {rows[0]} chunk rows ({rows[1]}..{rows[2]}); expected 0..{n - 1}"
            )

    # -- plumbing

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        if self._closed:
            raise RuntimeError(f"index reader for {self.path} is closed")
        con = self._pool.get()
        try:
            yield con
        finally:
            self._pool.put(con)

    def close(self) -> None:
        """Release the SQLite connections and FAISS/BM25 data; the reader is unusable afterwards."""
        self._closed = True
        for con in self._conns:
            with contextlib.suppress(sqlite3.Error):
                con.close()
        self._conns.clear()
        self._faiss = None
        self._bm25 = None
        self._bm25_postings = None
        if getattr(self, "_vectors", None) is not None:
            self._vectors.close()

    def __enter__(self) -> IndexReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"IndexReader({str(self.path)!r}, chunks={getattr(self, 'n_chunks', '?')})"

    def is_current(self) -> bool:
        """Whether root/CURRENT still names this version (a server reopens when it does not)."""
        return current_version(self.root) == self.version

    def _allowed(self, rows: np.ndarray | Sequence[int]) -> np.ndarray:
        """rows as a sorted, duplicate-free int64 array of valid rows."""
        a = np.asarray(rows, dtype=np.int64).reshape(-1)
        if a.size > 1 and not np.all(a[1:] > a[:-1]):
            # Not np.unique: it took 7.7 ms for 40k rows here (numpy 2), sort + compare takes 0.5 ms.
            a = np.sort(a)
            a = a[np.concatenate(([True], a[1:] != a[:-1]))]
        if a.size and (a[0] < 0 or a[-1] >= self.n_chunks):
            a = a[(a >= 0) & (a < self.n_chunks)]
        return a

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
        if k <= 0 or self.n_chunks == 0:
            return _empty()
        if rows is None:
            return dense_search_rows(self._faiss, self._dense_spec, self._vectors, q, k)
        allowed = self._allowed(rows)
        if len(allowed) == 0:
            return _empty()
        n = self.n_chunks
        if len(allowed) > SUBSET_EXACT_MAX and len(allowed) * 64 >= n:
            fetch = min(n, 2 * k * -(-n // len(allowed)) + k)
            while True:
                cand, sc = dense_search_rows(self._faiss, self._dense_spec, self._vectors, q, fetch)
                pos = np.minimum(np.searchsorted(allowed, cand), len(allowed) - 1)
                keep = allowed[pos] == cand
                if keep.sum() >= k or fetch >= n:
                    break
                fetch = min(n, fetch * 4)
            if keep.sum() >= min(k, len(allowed)):
                return cand[keep][:k], sc[keep][:k]
        # Exact scoring over the subset; sorted rows are read in file order.
        sub = self._vectors[allowed]
        with _one_omp_thread():
            scores, pos = faiss.knn(
                q.reshape(1, -1), sub, min(k, len(allowed)), metric=faiss.METRIC_INNER_PRODUCT
            )
        ok = pos[0] >= 0
        return _top(allowed[pos[0][ok]], scores[0][ok], k)

    def bm25_search(
        self, query_tokens: Sequence[str], k: int, rows: np.ndarray | Sequence[int] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k chunk rows by BM25 (best first, score > 0 only); tokens unknown to the index are ignored."""
        if k <= 0 or self._bm25 is None:
            return _empty()
        vocab = self._bm25.vocab_dict
        ids = sorted({vocab[t] for t in query_tokens if t and t in vocab})
        if not ids:
            return _empty()
        data, indices, indptr = self._bm25_postings
        scores = self._score_buffer()
        for t in ids:
            a, b = int(indptr[t]), int(indptr[t + 1])
            _add_column(scores, indices[a:b], data[a:b])
        if rows is None:
            cand = _top_candidates(scores, k)
        else:
            allowed = self._allowed(rows)
            cand = allowed[scores[allowed] > 0]
        return _top(cand.astype(np.int64), scores[cand], k)

    def _score_buffer(self) -> np.ndarray:
        """A zeroed float32 array of n_chunks, one per thread, reused: a fresh np.zeros of 4 MB at 10^6 chunks
        costs its page faults on every query; refilling the same pages with zeros costs a third of that."""
        buf: np.ndarray | None = getattr(self._local, "scores", None)
        if buf is None:
            buf = self._local.scores = np.zeros(self.n_chunks, dtype=np.float32)
        else:
            buf.fill(0.0)
        return buf

    def vector(self, row: int) -> np.ndarray:
        """The stored vector of a chunk row (a copy)."""
        if not 0 <= int(row) < self.n_chunks:
            raise IndexError(f"row {row} is out of range 0..{self.n_chunks - 1}")
        return np.array(self._vectors[int(row)])  # pread returns a fresh read-only buffer; copy it

    # -- chunks and documents

    def chunks(self, rows: Sequence[int] | np.ndarray) -> list[dict[str, Any]]:
        """Chunk records in the order of `rows`: row, chunk_id, doc_id, ordinal, section_path (list), kind,
        start, end, text, and their document's source, locality, region, province, year, level, title."""
        rr = [int(r) for r in np.asarray(rows, dtype=np.int64).reshape(-1)]
        for r in rr:
            if not 0 <= r < self.n_chunks:
                raise IndexError(f"row {r} is out of range 0..{self.n_chunks - 1}")
        if not rr:
            return []
        with self._db() as con:
            got = con.execute(
                f'SELECT {_ROW_SELECT} FROM json_each(?) j JOIN chunks c ON c."row" = j.value ORDER BY j.key',
                (json.dumps(rr),),
            ).fetchall()
        return [self._chunk_record(r) for r in got]

    def _chunk_record(self, r: Sequence[Any]) -> dict[str, Any]:
        """A row selected as _ROW_SELECT, as a chunk record with its report's fields."""
        d = dict(zip(_ROW_COLS, r, strict=True))
        d["section_path"] = json.loads(d["section_path"])
        d.update(self._doc_fields[d["doc_id"]])
        return d

    def chunk_by_id(self, chunk_id: str) -> dict[str, Any] | None:
        """One chunk record (as chunks()) by chunk_id, or None."""
        with self._db() as con:
            r = con.execute(f"SELECT {_ROW_SELECT} FROM chunks c WHERE c.chunk_id = ?", (chunk_id,)).fetchone()
        return self._chunk_record(r) if r else None

    def doc_chunks(self, doc_id: str) -> list[dict[str, Any]]:
        """A document's chunk records in reading order."""
        with self._db() as con:
            got = con.execute(
                f"SELECT {_ROW_SELECT} FROM chunks c WHERE c.doc_id = ? ORDER BY c.ordinal", (doc_id,)
            ).fetchall()
        return [self._chunk_record(r) for r in got]

    def chunk_tokens(self, rows: Sequence[int] | np.ndarray) -> list[list[str]]:
        """The BM25 tokens stored for each row (lets an incremental build skip re-tokenizing)."""
        rr = [int(r) for r in np.asarray(rows, dtype=np.int64).reshape(-1)]
        with self._db() as con:
            got = dict(
                con.execute(
                    'SELECT c."row", c.tokens FROM json_each(?) j JOIN chunks c ON c."row" = j.value',
                    (json.dumps(rr),),
                ).fetchall()
            )
        return [json.loads(got[r]) for r in rr]

    def rows_where(
        self,
        locality: str | Sequence[str] | None = None,
        year: int | str | Sequence[int | str] | None = None,
        region: str | Sequence[str] | None = None,
        kind: str | Sequence[str] | None = None,
        doc_ids: Sequence[str] | None = None,
        level: str | Sequence[str] | None = None,
    ) -> np.ndarray | None:
        """Sorted chunk rows matching every given filter, or None when no filter is given.

        locality and region match as substrings (region also matches the province), so 阜沙 finds
        阜沙镇 and 广东 finds every 广东省 report; a list means any of its values; year, kind, level and
        doc_ids match exactly."""
        clauses: list[str] = []
        params: list[Any] = []

        def any_of(exprs: list[str], values: list[Any]) -> None:
            clauses.append("(" + " OR ".join(exprs) + ")")
            params.extend(values)

        if locality is not None:
            vals = [str(v) for v in _as_list(locality)]
            any_of(["instr(d.locality, ?) > 0"] * len(vals), vals)
        if region is not None:
            vals = [str(v) for v in _as_list(region)]
            any_of(
                ["(instr(d.region, ?) > 0 OR instr(d.province, ?) > 0)"] * len(vals),
                [v for v in vals for _ in (0, 1)],
            )
        if year is not None:
            years = []
            for y in _as_list(year):
                try:
                    years.append(int(y))
                except (TypeError, ValueError):
                    raise ValueError(f"year {y!r} is not a year (e.g. 2023)") from None
            any_of(["d.year = ?"] * len(years), years)
        if kind is not None:
            kinds = [str(v) for v in _as_list(kind)]
            for v in kinds:
                if v not in KINDS:
                    raise ValueError(f"kind {v!r} is not one of: {', '.join(KINDS)}")
            any_of(["c.kind = ?"] * len(kinds), kinds)
        if level is not None:
            levels = [str(v) for v in _as_list(level)]
            any_of(["d.level = ?"] * len(levels), levels)
        if doc_ids is not None:
            clauses.append("c.doc_id IN (SELECT value FROM json_each(?))")
            params.append(json.dumps([str(d) for d in _as_list(doc_ids)]))
        if not clauses:
            return None
        key = (tuple(clauses), tuple(params))
        with self._cache_lock:
            hit = self._filter_cache.get(key)
        if hit is not None:
            return hit
        with self._db() as con:
            got = con.execute(
                'SELECT c."row" FROM chunks c JOIN documents d ON d.doc_id = c.doc_id WHERE '
                + " AND ".join(clauses)
                + ' ORDER BY c."row"',
                params,
            ).fetchall()
        out = np.fromiter((r[0] for r in got), dtype=np.int64, count=len(got))
        out.setflags(write=False)
        with self._cache_lock:
            if len(self._filter_cache) >= 256:
                self._filter_cache.clear()
            self._filter_cache[key] = out
        return out

    def documents(self) -> list[dict[str, Any]]:
        """Every document's summary (Report.summary()), ordered by doc_id."""
        with self._db() as con:
            got = con.execute("SELECT meta FROM documents ORDER BY doc_id").fetchall()
        return [json.loads(r[0]) for r in got]

    def document(self, doc_id: str) -> dict[str, Any] | None:
        """A document's summary plus headline, encoding, sha256, text, sections (tree) and repair_log."""
        with self._db() as con:
            r = con.execute(
                "SELECT meta, headline, encoding, sha256, text, sections FROM documents WHERE doc_id = ?",
                (doc_id,),
            ).fetchone()
            if r is None:
                return None
            reps = con.execute(
                'SELECT kind, start, "end", "before", "after" FROM repairs WHERE doc_id = ? ORDER BY seq',
                (doc_id,),
            ).fetchall()
        out = json.loads(r["meta"])
        out.update(headline=r["headline"], encoding=r["encoding"], sha256=r["sha256"], text=r["text"])
        out["sections"] = json.loads(r["sections"])
        out["repair_log"] = [dict(x) for x in reps]
        return out

    def raw_text(self, doc_id: str) -> str | None:
        """The document's text as ingested, before cleaning."""
        with self._db() as con:
            r = con.execute("SELECT raw_text FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()
        return r[0] if r else None

    def report(self, doc_id: str) -> Report | None:
        """The stored Report, rebuilt (for incremental builds that keep unchanged documents)."""
        with self._db() as con:
            r = con.execute("SELECT * FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()
            if r is None:
                return None
            reps = con.execute(
                'SELECT kind, start, "end", "before", "after" FROM repairs WHERE doc_id = ? ORDER BY seq',
                (doc_id,),
            ).fetchall()

        def section(d: dict[str, Any]) -> Section:
            return Section(
                d["heading"], d["level"], d["kind"], d["start"], d["end"], [section(c) for c in d["children"]]
            )

        return Report(
            doc_id=r["doc_id"],
            source=r["source"],
            sha256=r["sha256"],
            encoding=r["encoding"],
            raw_text=r["raw_text"],
            text=r["text"],
            title=r["title"],
            headline=r["headline"],
            locality=r["locality"],
            level=r["level"],
            region=r["region"],
            province=r["province"],
            year=r["year"],
            published=r["published"],
            repairs=[Repair(x["kind"], x["start"], x["end"], x["before"], x["after"]) for x in reps],
            sections=[section(s) for s in json.loads(r["sections"])],
        )
