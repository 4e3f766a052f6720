"""Measures the dense-index choices (flat, HNSW, IVF, IVF-SQ8) for latency, recall@k and memory."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from typing import Any

import faiss
import numpy as np

from kb.store import build_dense_index, default_dense_spec, dense_search_rows, read_dense_index


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


def default_candidates(n: int) -> list[dict[str, Any]]:
    """The configurations worth comparing at size n (the auto choice is among them)."""
    nlist = default_dense_spec("ivf", n)["nlist"]
    cands: list[dict[str, Any]] = [{"type": "flat"}]
    for efc, efs in ((80, 64), (200, 128)):
        cands.append({"type": "hnsw", "M": 32, "efConstruction": efc, "efSearch": efs})
    for nprobe in (8, 16, 32):
        cands.append({"type": "ivf", "nlist": nlist, "nprobe": nprobe})
    for nprobe in (16, 32):
        cands.append({"type": "ivfsq8", "nlist": nlist, "nprobe": nprobe, "rerank": 4})
    return cands


def measure_dense_choices(
    sizes: Iterable[int],
    dim: int = 384,
    n_queries: int = 200,
    k: int = 10,
    data: Sequence[str] = ("uniform", "clustered"),
    candidates: Sequence[dict[str, Any]] | None = None,
    max_build_seconds: float | None = None,
    seed: int = 0,
    log: Any = None,
) -> list[dict[str, Any]]:
    """For each size and data kind, build each candidate index, save and reload it the way the index
    reader does (mmap), and measure single-query latency (p50/p95 ms), recall@k against exact search,
    build time and memory. One dict per (size, data, candidate). HNSW candidates are skipped at sizes
    where the previous size's HNSW build, scaled linearly, would exceed max_build_seconds."""
    results: list[dict[str, Any]] = []
    hnsw_rate: float | None = None  # seconds per vector, from the last HNSW build
    for n in sizes:
        for kind in data:
            x = synthetic_vectors(n + n_queries, dim, kind, seed)
            q, x = np.ascontiguousarray(x[:n_queries]), np.ascontiguousarray(x[n_queries:])
            exact = faiss.IndexFlatIP(dim)
            exact.add(x)
            _, truth = exact.search(q, k)
            del exact
            for spec in candidates if candidates is not None else default_candidates(n):
                row: dict[str, Any] = {"n": n, "data": kind, "dim": dim, **spec}
                if (
                    spec["type"].startswith("hnsw")
                    and max_build_seconds is not None
                    and hnsw_rate is not None
                    and hnsw_rate * n * spec.get("efConstruction", 80) / 80 > max_build_seconds
                ):
                    row["skipped"] = "HNSW build would exceed max_build_seconds"
                    results.append(row)
                    continue
                t0 = time.perf_counter()
                index, full = build_dense_index(x, spec)
                row["build_s"] = round(time.perf_counter() - t0, 2)
                if spec["type"].startswith("hnsw"):
                    hnsw_rate = row["build_s"] / n * 80 / spec.get("efConstruction", 80)
                with tempfile.TemporaryDirectory() as td:
                    path = os.path.join(td, "dense.faiss")
                    faiss.write_index(index, path)
                    del index
                    gc.collect()
                    row["file_bytes_per_vector"] = round(os.path.getsize(path) / n, 1)
                    res = _resident_kb(path, full, q)
                    if res:
                        row["rss_anon_bytes_per_vector"] = round(res["RssAnon"] * 1024 / n, 1)
                        row["rss_file_bytes_per_vector"] = round(res["RssFile"] * 1024 / n, 1)
                    loaded = read_dense_index(path, full)
                    lat = np.empty(n_queries)
                    found = np.empty((n_queries, k), dtype=np.int64)
                    for i in range(n_queries):
                        t = time.perf_counter_ns()
                        rows, _ = dense_search_rows(loaded, full, x, q[i], k)
                        lat[i] = (time.perf_counter_ns() - t) / 1e6
                        found[i, :] = -1
                        found[i, : len(rows)] = rows
                    del loaded
                row["p50_ms"] = round(float(np.percentile(lat, 50)), 3)
                row["p95_ms"] = round(float(np.percentile(lat, 95)), 3)
                row[f"recall@{k}"] = round(
                    float(np.mean([len(set(found[i]) & set(truth[i])) / k for i in range(n_queries)])), 4
                )
                results.append(row)
                if log:
                    log(row)
            del x, q
            gc.collect()
    return results


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("sizes", nargs="+", type=int)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--data", default="uniform,clustered")
    ap.add_argument("--max-build-seconds", type=float, default=None)
    a = ap.parse_args()
    measure_dense_choices(
        a.sizes,
        n_queries=a.queries,
        data=a.data.split(","),
        max_build_seconds=a.max_build_seconds,
        log=lambda r: print(json.dumps(r), flush=True, file=sys.stdout),
    )
