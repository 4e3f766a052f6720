"""Search-parameter sweeps (IVF nprobe, HNSW efSearch), resident memory by mapping, a profile of searches."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from bench.common import K, pct


def rss_by_mapping(index_folder: str) -> dict[str, float]:
    """Resident MiB by mapping (/proc/self/smaps): index files by name, the heap, anonymous, everything else."""
    out: dict[str, float] = {}
    name = "other"
    with open("/proc/self/smaps") as f:
        for line in f:
            parts = line.split()
            if not parts:
                continue
            if not parts[0].endswith(":"):  # a mapping header: address perms offset dev inode [path]
                path = parts[5] if len(parts) > 5 else ""
                if path.startswith(index_folder):
                    name = path[len(index_folder) + 1 :]
                elif path in ("[heap]", ""):
                    name = "heap+anonymous"
                else:
                    name = "other (libraries, model)"
            elif parts[0] == "Rss:":
                out[name] = out.get(name, 0.0) + int(parts[1]) / 1024
    return {k: round(v, 1) for k, v in sorted(out.items(), key=lambda kv: -kv[1])}


def nprobe_sweep(folder: Path, spec: dict[str, Any], qv: Any, truth: Any) -> list[dict[str, Any]]:
    """Latency and recall@10 of the index as written, at its search-time parameter (IVF nprobe, HNSW efSearch)
    and at multiples of it (a second copy loaded the way IndexReader loads it, through kb.store's public
    functions)."""
    import numpy as np

    from kb.store import DENSE, VECTORS, read_dense_index

    if search_param(spec) is None:
        return []
    index = read_dense_index(folder / DENSE, spec)
    vectors = np.load(folder / VECTORS, mmap_mode="r")
    return sweep(index, spec, vectors, qv, truth)


def search_param(spec: dict[str, Any]) -> tuple[str, tuple[float, ...]] | None:
    """The search-time parameter of an index type and the multiples of its value to sweep, or None (flat)."""
    kind = str(spec.get("type"))
    if kind.startswith("ivf"):
        return "nprobe", (0.5, 0.75, 1, 1.5, 2)
    if kind.startswith("hnsw"):
        return "efSearch", (0.5, 1, 2, 4)
    return None


def _set_param(index: Any, name: str, value: int) -> None:
    if name == "nprobe":
        index.nprobe = value
    else:
        index.hnsw.efSearch = value


def sweep(index: Any, spec: dict[str, Any], vectors: Any, qv: Any, truth: Any) -> list[dict[str, Any]]:
    """One row per swept value of the index's search parameter: p50/p95 ms and recall@10 (after 10 warm-ups)."""
    sp = search_param(spec)
    if sp is None:
        return []
    name, factors = sp
    base = int(spec[name])
    out = []
    for f in factors:
        value = max(1, int(base * f))
        if name == "nprobe" and value > int(spec.get("nlist", value)):
            break
        s = {**spec, name: value}
        _set_param(index, name, value)
        # "nprobe" holds the value of whichever parameter was varied ("param" names it)
        out.append({"param": name, "nprobe": value, "default": f == 1,
                    **latency_recall(index, s, vectors, qv, truth, warm=10)})
    _set_param(index, name, base)
    return out


def latency_recall(index: Any, spec: dict[str, Any], vectors: Any, qv: Any, truth: Any, warm: int = 0
                   ) -> dict[str, Any]:
    """p50/p95 ms of kb.store.dense_search_rows over the queries, and their recall@10 against `truth`."""
    import numpy as np

    from kb.store import dense_search_rows

    for i in range(min(warm, len(qv))):
        dense_search_rows(index, spec, vectors, qv[i], K)
    lat, rec = [], []
    for i in range(len(qv)):
        t = time.perf_counter_ns()
        rows, _ = dense_search_rows(index, spec, vectors, qv[i], K)
        lat.append((time.perf_counter_ns() - t) / 1e6)
        rec.append(len(set(rows.tolist()) & set(truth[i].tolist())) / K)
    return {"p50": pct(lat, 50), "p95": pct(lat, 95), "recall@10": float(np.mean(rec))}


def profile_searches(searcher: Any, queries: list[str]) -> list[list[Any]]:
    """Cumulative ms per query of kb's own functions inside Searcher.search (cProfile; inflates small calls)."""
    import cProfile
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    for q in queries:
        searcher.search(q, k=K)
    prof.disable()
    rows = []
    for (file, _line, fn), (_cc, nc, _tt, ct, _callers) in pstats.Stats(prof).stats.items():  # type: ignore[attr-defined]
        if f"{os.sep}kb{os.sep}" in file:
            rows.append([f"{Path(file).stem}.{fn}", round(ct / len(queries) * 1e3, 3), round(nc / len(queries), 1)])
    rows.sort(key=lambda r: -r[1])
    return rows[:16]
