"""Measures the dense-index choices (flat, HNSW, HNSW-SQ8, IVF, IVF-SQ8) for latency, recall@k and memory."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import faiss
import numpy as np

from kb.store import (
    HAS_INT8_CODES,
    build_dense_index,
    default_dense_spec,
    dense_search_rows,
    read_dense_index,
)


def synthetic_vectors(n: int, dim: int, kind: str = "clustered", seed: int = 0) -> np.ndarray:
    """Unit vectors: "uniform" on the sphere (no neighbourhood structure: the worst case for any
    approximate index), "clustered" (topics › sub-topics › passages, a mixture of gaussians), or
    "lowrank" (a low-dimensional continuum plus noise)."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), dtype=np.float32)
    if kind == "uniform":
        for s in range(0, n, 65536):
            out[s : s + 65536] = rng.standard_normal((min(65536, n - s), dim), dtype=np.float32)
    elif kind == "clustered":
        n_topics = max(8, int(np.sqrt(n) / 2))
        subs_per_topic = 8
        topics = rng.standard_normal((n_topics, dim), dtype=np.float32)
        topics /= np.linalg.norm(topics, axis=1, keepdims=True)
        subs = topics.repeat(subs_per_topic, axis=0)
        subs += 0.6 * rng.standard_normal(subs.shape, dtype=np.float32) / np.sqrt(dim)
        subs /= np.linalg.norm(subs, axis=1, keepdims=True)
        for s in range(0, n, 65536):
            m = min(65536, n - s)
            which = rng.integers(0, len(subs), m)
            noise = 0.6 * rng.standard_normal((m, dim), dtype=np.float32) / np.sqrt(dim)
            out[s : s + m] = subs[which] + noise
    elif kind == "lowrank":
        # A continuum rather than blobs: a 24-d latent manifold linearly embedded, plus isotropic noise
        # (sentence embeddings have an intrinsic dimension of a few dozen).
        basis = rng.standard_normal((24, dim), dtype=np.float32)
        for s in range(0, n, 65536):
            m = min(65536, n - s)
            z = rng.standard_normal((m, 24), dtype=np.float32)
            out[s : s + m] = z @ basis + 1.2 * rng.standard_normal((m, dim), dtype=np.float32)
    else:
        raise ValueError(f"unknown synthetic kind {kind!r}; valid: 'uniform', 'clustered', 'lowrank'")
    faiss.normalize_L2(out)
    return out


_RSS_PROBE = """
import json, sys
import numpy as np
from kb.store import read_dense_index
def rss():
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("RssAnon:", "RssFile:")):
                out[line.split(":")[0]] = int(line.split()[1])
    return out
spec = json.loads(sys.argv[2]); q = np.load(sys.argv[3])
r0 = rss(); ix = read_dense_index(sys.argv[1], spec); ix.search(q, 10); r1 = rss()
print(json.dumps({k: r1[k] - r0[k] for k in r0}))
"""


def _resident_kb(path: str, spec: dict[str, Any], q: np.ndarray) -> dict[str, int]:
    """RssAnon/RssFile growth (KB) of a fresh process that loads the index and runs the queries."""
    qpath = path + ".q.npy"
    np.save(qpath, q)
    try:
        out = subprocess.run(
            [sys.executable, "-c", _RSS_PROBE, path, json.dumps(spec), qpath],
            capture_output=True,
            text=True,
            check=True,
            timeout=600,
        )
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError, OSError):
        return {}


SEARCH_PARAMS = ("efSearch", "nprobe", "rerank")


def default_candidates(n: int) -> list[dict[str, Any]]:
    """The configurations worth comparing at size n (the automatic choice is among them)."""
    nlist = default_dense_spec("ivf", n)["nlist"]
    cands: list[dict[str, Any]] = [{"type": "flat"}]
    for kind in ("hnsw", "hnswsq8"):
        for efs in (64, 128):
            cands.append({**default_dense_spec(kind, n), "efConstruction": 80, "efSearch": efs})
    for nprobe in (16, 64, 128):
        cands.append({"type": "ivf", "nlist": nlist, "nprobe": nprobe})
    for nprobe in (32, 128):
        cands.append({"type": "ivfsq8", "nlist": nlist, "nprobe": nprobe, "rerank": 4})
    if HAS_INT8_CODES:
        for nprobe in (64, 128):
            cands.append({"type": "ivfi8", "nlist": nlist, "nprobe": nprobe, "rerank": 4})
    return cands


def _build_key(spec: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in spec.items() if k not in SEARCH_PARAMS}, sort_keys=True)


@dataclass
class _DataSet:
    """One size and kind of synthetic data: its saved vectors (memory-mapped), queries and exact top k."""

    n: int
    kind: str
    dim: int
    k: int
    q: np.ndarray
    truth: np.ndarray
    vectors: np.ndarray
    folder: str


def measure_dense_choices(
    sizes: Iterable[int],
    dim: int = 384,
    n_queries: int = 200,
    k: int = 10,
    data: Sequence[str] = ("uniform", "clustered", "lowrank"),
    candidates: Sequence[dict[str, Any]] | None = None,
    max_build_seconds: float | None = None,
    seed: int = 0,
    log: Any = None,
    measure_memory: bool = True,
) -> list[dict[str, Any]]:
    """For each size and data kind, build each candidate index, save it and load it the way IndexReader
    does (vectors.npy memory-mapped for reranking), and measure single-query latency (p50/p95 ms),
    recall@k against exact search, build time, file size and resident memory (of a fresh process that
    loads the index and runs the queries). One dict per (size, data, candidate); candidates that differ
    only in search-time parameters share one build. HNSW candidates are skipped where the last HNSW build,
    scaled linearly, would exceed max_build_seconds."""
    results: list[dict[str, Any]] = []
    hnsw_rate: list[float] = []  # seconds per vector at efConstruction 80, from the last HNSW build
    for n in sizes:
        cands = list(candidates) if candidates is not None else default_candidates(n)
        for kind in data:
            xq = synthetic_vectors(n + n_queries, dim, kind, seed)
            q, x = np.ascontiguousarray(xq[:n_queries]), np.ascontiguousarray(xq[n_queries:])
            del xq
            exact = faiss.IndexFlatIP(dim)
            exact.add(x)
            _, truth = exact.search(q, k)
            del exact
            with tempfile.TemporaryDirectory() as td:
                np.save(os.path.join(td, "vectors.npy"), x)
                del x
                gc.collect()
                vectors = np.load(os.path.join(td, "vectors.npy"), mmap_mode="r")
                ds = _DataSet(n, kind, dim, k, q, truth, vectors, td)
                built: dict[str, tuple[str, float]] = {}
                for spec in cands:
                    row = _measure_candidate(ds, spec, built, hnsw_rate, max_build_seconds, measure_memory)
                    results.append(row)
                    if log:
                        log(row)
                del ds, vectors
            gc.collect()
    return results


def _measure_candidate(
    ds: _DataSet,
    spec: dict[str, Any],
    built: dict[str, tuple[str, float]],
    hnsw_rate: list[float],
    max_build_seconds: float | None,
    measure_memory: bool,
) -> dict[str, Any]:
    """One candidate's row: built (or its build shared with an earlier candidate), loaded, measured."""
    n = ds.n
    row: dict[str, Any] = {"n": n, "data": ds.kind, "dim": ds.dim, **spec}
    key = _build_key(spec)
    efc = spec.get("efConstruction", 80)
    if (
        key not in built
        and spec["type"].startswith("hnsw")
        and max_build_seconds is not None
        and hnsw_rate
        and hnsw_rate[-1] * n * efc / 80 > max_build_seconds
    ):
        row["skipped"] = "HNSW build would exceed max_build_seconds"
        return row
    if key not in built:
        t0 = time.perf_counter()
        index, full = build_dense_index(ds.vectors, spec)
        secs = time.perf_counter() - t0
        if spec["type"].startswith("hnsw"):
            hnsw_rate[:] = [secs / n * 80 / efc]
        path = os.path.join(ds.folder, f"dense{len(built)}.faiss")
        faiss.write_index(index, path)
        del index
        gc.collect()
        built[key] = (path, secs)
    path, secs = built[key]
    full = dict(spec)
    row["build_s"] = round(secs, 2)
    row["file_bytes_per_vector"] = round(os.path.getsize(path) / n, 1)
    res = _resident_kb(path, full, ds.q) if measure_memory else {}
    if res:
        row["rss_anon_bytes_per_vector"] = round(res["RssAnon"] * 1024 / n, 1)
        row["rss_file_bytes_per_vector"] = round(res["RssFile"] * 1024 / n, 1)
    row.update(_latency_and_recall(read_dense_index(path, full), full, ds))
    return row


def _latency_and_recall(loaded: Any, spec: dict[str, Any], ds: _DataSet) -> dict[str, float]:
    n_queries, k = len(ds.q), ds.k
    for i in range(min(20, n_queries)):  # warm caches
        dense_search_rows(loaded, spec, ds.vectors, ds.q[i], k)
    lat = np.empty(n_queries)
    found = np.full((n_queries, k), -1, dtype=np.int64)
    for i in range(n_queries):
        t = time.perf_counter_ns()
        rows, _ = dense_search_rows(loaded, spec, ds.vectors, ds.q[i], k)
        lat[i] = (time.perf_counter_ns() - t) / 1e6
        found[i, : len(rows)] = rows
    return {
        "p50_ms": round(float(np.percentile(lat, 50)), 3),
        "p95_ms": round(float(np.percentile(lat, 95)), 3),
        f"recall@{k}": round(float(np.mean([len(set(found[i]) & set(ds.truth[i])) / k for i in range(n_queries)])), 4),
    }


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("sizes", nargs="+", type=int)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--data", default="uniform,clustered,lowrank")
    ap.add_argument("--max-build-seconds", type=float, default=None)
    a = ap.parse_args()
    measure_dense_choices(
        a.sizes,
        n_queries=a.queries,
        data=a.data.split(","),
        max_build_seconds=a.max_build_seconds,
        log=lambda r: print(json.dumps(r), flush=True, file=sys.stdout),
    )
