"""Worker: the dense index kb would build for n rows, measured on clustered synthetic vectors."""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any

import faiss
import numpy as np

from bench.common import K
from bench.dense import synthetic_vectors
from bench.sweeps import latency_recall, search_param, sweep
from kb.store import DENSE, VECTORS, build_dense_index, read_dense_index


def run(a: dict[str, Any]) -> dict[str, Any]:
    """The dense index kb would build for n rows, on bench.dense's "clustered" synthetic vectors (a mixture of
    gaussians: the distribution kb.store's defaults were tuned on), queries drawn from the same mixture."""
    n, nq = int(a["n"]), int(a["nq"])
    xq = synthetic_vectors(n + nq, 384, "clustered", seed=0)
    q, x = np.ascontiguousarray(xq[:nq]), np.ascontiguousarray(xq[nq:])
    del xq
    _, truth = faiss.knn(q, x, K, metric=faiss.METRIC_INNER_PRODUCT)
    t0 = time.perf_counter()
    index, spec = build_dense_index(x)
    build_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as td:
        faiss.write_index(index, os.path.join(td, DENSE))
        np.save(os.path.join(td, VECTORS), x)
        del index, x
        index = read_dense_index(os.path.join(td, DENSE), spec)
        vectors = np.load(os.path.join(td, VECTORS), mmap_mode="r")
        if search_param(spec) is not None:
            rows = sweep(index, spec, vectors, q, truth)
        else:
            rows = [{**latency_recall(index, spec, vectors, q, truth), "nprobe": None, "default": True}]
        del index, vectors
    return {"n": n, "queries": nq, "dense": spec, "build_s": build_s, "sweep": rows}
