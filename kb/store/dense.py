"""Dense search: the FAISS index type chosen by size, its build and load, top-k with exact rescoring."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from kb.store.layout import DENSE, VECTORS, _fail
from kb.store.rank import _allowed, _empty, _top
from kb.store.scan import _faiss_search, _one_omp_thread
from kb.store.vectors import VectorFile

# Exact search up to 10^4 rows (≤0.5 ms); above, IVF over signed 8-bit codes with its top k·4 rescored
# exactly from vectors.npy, nprobe by size band (measured on text-derived vectors: BENCHMARKS.md, "Dense
# index choice").
FLAT_MAX_ROWS = 10_000
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80  # 200 doubles build time for +0.004 recall at 10^5
HNSW_EF_SEARCH = 128
SQ8_RERANK = 4  # fetch k·4 (at most k+30) by the quantized scores, rescore exactly from vectors.npy
# Rescoring more than k+30 did not raise recall at 10^6 (the lists probed set the limit, BENCHMARKS.md), and
# each rescored row is one read of vectors.npy.
SQ8_RERANK_MAX_EXTRA = 30
IVF_NPROBE = 32
IVF_SQ8_NPROBE = 32
IVF_TRAIN_POINTS_PER_LIST = 64  # k-means sample; faiss's default 256 would make 10^6 training ~20 min
IVF_TRAIN_NITER = 20
# Filtered dense search: exact scoring over the allowed rows when there are at most this many (gathering
# rows from the mapped vectors.npy + scoring, measured p50: 1024 rows 0.4 ms, 4096 1.4-1.6 ms, 8192
# 2.7-3.5 ms), else FAISS with over-fetch (see DenseIndex.search).
SUBSET_EXACT_MAX = 4096
# Lists probed by the automatic "ivfi8" index: (largest size of the band, nprobe), first match wins. Above
# 3·10^5, 96 met recall@10 0.95 on the bench's queries until they grew with the glossary (0.962 → 0.948 on the
# same index); 144 reaches 0.971 at 0.92 ms, 128 sits between (BENCHMARKS.md, "Dense index choice").
IVF_I8_NPROBE_BY_SIZE: tuple[tuple[int | None, int], ...] = ((300_000, 160), (None, 128))
HAS_INT8_CODES = hasattr(faiss.ScalarQuantizer, "QT_8bit_direct_signed")
IVF_TYPES = ("ivf", "ivfsq8", "ivfi8")
DENSE_TYPES = ("flat", "hnsw", "hnswsq8", *IVF_TYPES)


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
    """The automatic choice by size (see the note above FLAT_MAX_ROWS)."""
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


def _scores(v: np.ndarray, q: np.ndarray) -> np.ndarray:
    # Not `v @ q`: a multi-threaded OpenBLAS matrix-vector product sometimes stalls ~8 ms on this 2-core
    # machine (measured), whatever its size; einsum uses no BLAS.
    return np.einsum("ij,j->i", v, q.reshape(-1))


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


class DenseIndex:
    """A version's vectors (read with pread, for rescoring) and its FAISS index, searched by inner product."""

    def __init__(self, folder: Path, manifest: dict[str, Any]) -> None:
        counts, self.dim = manifest["counts"], int(manifest["dim"])
        self.spec: dict[str, Any] = manifest["dense"]
        vpath = folder / VECTORS
        try:
            self.vectors = VectorFile(vpath)
        except (OSError, ValueError) as e:
            raise _fail(f"{vpath} is unreadable: {e}") from e
        try:
            v = self.vectors
            if v.ndim != 2 or v.dtype != np.float32 or v.shape[1] != self.dim:
                raise _fail(f"{vpath} holds {v.dtype} {v.shape}, the manifest says float32 (n, {self.dim})")
            self.n = n = int(v.shape[0])
            if n != counts["vectors"] or n != counts["chunks"]:
                raise _fail(
                    f"{vpath} has {n} rows, the manifest counts {counts['vectors']} vectors / {counts['chunks']} chunks"
                )
            dpath = folder / DENSE
            try:
                self.faiss: Any = read_dense_index(dpath, self.spec)
            except RuntimeError as e:
                raise _fail(f"{dpath} is unreadable: {str(e).strip().splitlines()[-1]}") from e
            if int(self.faiss.ntotal) != n or int(self.faiss.d) != self.dim:
                raise _fail(
                    f"{dpath} holds {self.faiss.ntotal} vectors of dim {self.faiss.d}; expected {n} of dim {self.dim}"
                )
        except BaseException:
            self.vectors.close()
            raise

    def close(self) -> None:
        self.faiss = None
        self.vectors.close()

    def vector(self, row: int) -> np.ndarray:
        """The stored vector of a row (a copy)."""
        if not 0 <= int(row) < self.n:
            raise IndexError(f"row {row} is out of range 0..{self.n - 1}")
        return np.array(self.vectors[int(row)])  # pread returns a fresh read-only buffer; copy it

    def search(
        self, q: np.ndarray, k: int, rows: np.ndarray | Sequence[int] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k rows for a float32 query vector, best first, optionally only among `rows`."""
        if k <= 0 or self.n == 0:
            return _empty()
        if rows is None:
            return dense_search_rows(self.faiss, self.spec, self.vectors, q, k)
        allowed = _allowed(rows, self.n)
        if len(allowed) == 0:
            return _empty()
        n = self.n
        if len(allowed) > SUBSET_EXACT_MAX and len(allowed) * 64 >= n:
            fetch = min(n, 2 * k * -(-n // len(allowed)) + k)
            while True:
                cand, sc = dense_search_rows(self.faiss, self.spec, self.vectors, q, fetch)
                pos = np.minimum(np.searchsorted(allowed, cand), len(allowed) - 1)
                keep = allowed[pos] == cand
                if keep.sum() >= k or fetch >= n:
                    break
                fetch = min(n, fetch * 4)
            if keep.sum() >= min(k, len(allowed)):
                return cand[keep][:k], sc[keep][:k]
        # Exact scoring over the subset; sorted rows are read in file order.
        sub = self.vectors[allowed]
        with _one_omp_thread():
            scores, pos = faiss.knn(
                q.reshape(1, -1), sub, min(k, len(allowed)), metric=faiss.METRIC_INNER_PRODUCT
            )
        ok = pos[0] >= 0
        return _top(allowed[pos[0][ok]], scores[0][ok], k)
