"""The Markdown of an `--engine milvus` / `--embed-on` run: Milvus Lite beside the local index, the embedding jobs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.common import fmt_n, spec_str
from bench.report import Add, _table

TARGET_PASSAGES = 16_000_000  # PERFORMANCE.md's sizing: 10 years of every township


def render_engines(r: dict[str, Any]) -> str:
    L: list[str] = []
    add = L.append
    m = r["machine"]
    add(f"_Measured by `{r['command']}` on {r['date']} in {r['wall_s'] / 60:.1f} min"
        + (" — **quick smoke run, not reference figures**" if r.get("quick") else "") + "._")
    add("")
    add(f"- Machine: {m['cpu']}, {m['cores']} cores, {m['ram_bytes'] / 2**30:.1f} GiB RAM; load average at start "
        f"{' '.join(m['loadavg_start'])}, at end {' '.join(r.get('loadavg_end', []))} (shared: compare within the run)")
    add("- Versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()))
    add(f"- Code: {m['code']}")
    add("")
    mv = r.get("milvus")
    if mv:
        _milvus_search(mv, add)
        _milvus_sweep(mv, add)
        _milvus_sizes(mv, add)
    if r.get("distembed"):
        _distembed(r["distembed"], add)
    return "\n".join(L)


def _ms(x: dict[str, Any], prec: int = 2) -> str:
    return f"{x['p50']:.{prec}f} / {x['p95']:.{prec}f}"


def _engines(res: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    ivf = res["milvus_ivf_flat"]
    local = {k: v for k, v in res["local"]["dense"].items() if k != "scale"}  # ivfi8's code scale: not a setting
    return [(f"local · {spec_str(local)}", res["local"]),
            ("Milvus Lite · FLAT (kb's index on Lite)", res["milvus_flat"]),
            (f"Milvus Lite · IVF_FLAT nlist={ivf['dense']['params']['nlist']} nprobe={ivf['dense']['search']['nprobe']}"
             " requested", ivf)]


def _milvus_search(mv: dict[int, Any], add: Add) -> None:
    """Dense, BM25 and fused latency with recall, local against Milvus Lite, and how far their answers agree."""
    add("**Search, local index against Milvus Lite** (single queries through kb's `Searcher`, k=10, milliseconds "
        "p50 / p95; Milvus figures include the client and its Unix socket; recall@10 against exact search):")
    add("")
    _table(add, "| passages | engine · dense index | dense | recall@10 | BM25 | fused end-to-end | fused − kb embedding |"
           " raw query embedding p50 |")
    for n in sorted(mv):
        for label, s in _engines(mv[n]):
            add(f"| {fmt_n(n)} | {label} | {_ms(s['dense_ms'], 3)} | {s['recall@10']:.4f} | {_ms(s['bm25_ms'])} | "
                f"{_ms(s['fused_ms'], 1)} | {_ms(s['fused_minus_embed_ms'], 1)} | {s['raw_query_embed_ms']['p50']:.1f} |")
    add("")
    parts = []
    for n in sorted(mv):
        a = mv[n]["agreement"]
        parts.append(f"{fmt_n(n)}: BM25 top-10 overlap {a['bm25_top10_overlap']:.3f} (median of the per-query largest "
                     f"relative score difference {a['bm25_max_rel_score_diff_median']:.1e}), dense top-10 overlap "
                     f"{a['dense_top10_overlap']:.3f}")
    add("Local and Milvus answers on the same queries (Milvus FLAT; BM25 scores divided by (k1 + 1)): "
        + "; ".join(parts) + ".")
    add("")
    n = max(mv)
    prof = {label: mv[n][key].get("profile_ms_per_query") for label, key in (("local", "local"),
                                                                             ("Milvus FLAT", "milvus_flat"))}
    if all(prof.values()):
        add(f"Where a fused search's calling thread spends its time at {fmt_n(n)} (cProfile over 20 queries, kb's "
            "functions, cumulative ms per query and calls per query; the BM25 half runs in a worker thread, unseen):")
        add("")
        for label, rows in prof.items():
            top = [r for r in rows if not r[0].startswith(("search.search", "search._rank"))][:7]
            add(f"- {label}: " + ", ".join(f"`{name}` {ms:.2f} ({calls:g}×)" for name, ms, calls in top))
        add("")


def _milvus_sweep(mv: dict[int, Any], add: Add) -> None:
    add("**Milvus Lite IVF_FLAT: recall against nprobe** (dense only, ms; the row marked ◀ is the nprobe kb's "
        "`dense_spec` sets for a server at this size):")
    add("")
    _table(add, "| passages | nlist | nprobe | p50 | p95 | recall@10 |")
    for n in sorted(mv):
        ivf = mv[n]["milvus_ivf_flat"]
        for x in ivf["sweep"]:
            mark = " ◀" if x["nprobe"] == ivf["dense"]["search"]["nprobe"] else ""
            add(f"| {fmt_n(n)} | {ivf['dense']['params']['nlist']} | {x['nprobe']}{mark} | {x['p50']:.3f} | "
                f"{x['p95']:.3f} | {x['recall@10']:.4f} |")
    add("")
    flat = [fmt_n(n) for n in sorted(mv) if len({x["recall@10"] for x in mv[n]["milvus_ivf_flat"]["sweep"]}) == 1]
    if flat:
        add(f"At {', '.join(flat)} recall is the same at every nprobe: the requested nlist and nprobe are not what "
            "answers. Milvus Lite 2.5 keeps every row in one growing segment (it has no sealed segments, so no index "
            "is built from the index parameters); with an index declared, the growing segment's own interim IVF "
            "index (per chunk of rows, with segcore's fixed nlist and nprobe) serves, and rows not yet in a full "
            "chunk are scanned exactly. So Lite measures neither a server's IVF_FLAT nor its IVF_SQ8 or HNSW.")
        add("")
    _server_types(mv, add)


def _server_types(mv: dict[int, Any], add: Add) -> None:
    if not any(mv[n].get("server_types") for n in mv):
        return
    add("**The index types kb's `dense_spec` gives a server, as faiss stand-ins on the same vectors** (Milvus "
        "Lite has neither; Milvus builds them with knowhere, whose IVF_SQ8 and HNSW are these algorithms; recall "
        "is the algorithm's, latency is faiss's in this process, single queries, ms):")
    add("")
    _table(add, "| passages | index · parameters | build | p50 | p95 | recall@10 vs exact |")
    for n in sorted(mv):
        for x in mv[n].get("server_types") or []:
            d = x["dense"]
            par = " ".join(f"{k}={v}" for k, v in {**d["params"], **d["search"]}.items())
            add(f"| {fmt_n(n)} | {d['index_type']} {par} | {x['build_s']:.1f} s | {x['p50']:.3f} | {x['p95']:.3f} | "
                f"{x['recall@10']:.4f} |")
    add("")


def _milvus_sizes(mv: dict[int, Any], add: Add) -> None:
    """Build time, disk and server memory per passage, and the linear extrapolation to TARGET_PASSAGES."""
    add("**Build, disk and memory** (the same corpus, tokens and vectors; Milvus through kb's `write_milvus_index`):")
    add("")
    _table(add, "| passages | local `write_index` | Milvus write (insert + BM25 function + flush + FLAT + load) | "
           "IVF_FLAT re-index | local disk | Milvus disk (+ kb.sqlite) | Milvus Lite server RSS |")
    for n in sorted(mv):
        x = mv[n]
        b, d, mem = x["build"], x["disk"], x["memory"]
        lb = x["local_build"]
        add(f"| {fmt_n(n)} | {lb['write_index_s']:.1f} s | {b['write_s']:.1f} s ({1e6 * b['write_s'] / n:.0f} µs/passage) | "
            f"{x['milvus_ivf_flat']['index_s']:.1f} s | {lb['disk_bytes_total'] / n:.0f} B/passage | "
            f"{d['milvus'] / n:.0f} (+ {d['kb.sqlite'] / n:.0f}) B/passage | "
            + (f"{mem['server_rss_bytes'] / 2**20:.0f} MiB = {mem['server_rss_bytes'] / n:.0f} B/passage |"
               if "server_rss_bytes" in mem else "? |"))
    add("")
    add(_extrapolation(mv))
    fb = mv[max(mv)]["build"].get("field_bytes")
    if fb:
        big = ("vector", "text", "tokens", "section_path")
        rest = sum(v for k, v in fb.items() if k not in big)
        add("")
        add("Fields as written, mean bytes per passage: " + ", ".join(f"{k} {fb[k]:.0f}" for k in big if k in fb)
            + f", the other {len(fb) - len([k for k in big if k in fb])} fields {rest:.0f} (together "
            f"{sum(fb.values()):.0f}; the sparse BM25 vector that Milvus derives from `tokens`, and its index, come on top).")
    add("")


def _per_passage(mv: dict[int, Any], value: Callable[[dict[str, Any]], float | None]) -> tuple[float, str]:
    """Bytes (or seconds) per passage: the slope between the two largest sizes (fixed costs cancel), else the
    ratio at the one size."""
    ns = sorted(mv)
    vb = value(mv[ns[-1]])
    va = value(mv[ns[-2]]) if len(ns) >= 2 else None
    if vb is None:
        return float("nan"), f"not measured at {fmt_n(ns[-1])}"
    if va is not None:
        return (vb - va) / (ns[-1] - ns[-2]), f"slope from {fmt_n(ns[-2])} to {fmt_n(ns[-1])}"
    return vb / ns[-1], f"ratio at {fmt_n(ns[-1])}"


def _extrapolation(mv: dict[int, Any]) -> str:
    disk, how = _per_passage(mv, lambda x: x["disk"]["milvus"])
    rss, _ = _per_passage(mv, lambda x: x["memory"].get("server_rss_bytes"))
    write, _ = _per_passage(mv, lambda x: x["build"]["write_s"])
    t = TARGET_PASSAGES
    return (f"Per passage ({how}): Milvus disk {disk:.0f} B, FLAT-loaded server memory {rss:.0f} B, write "
            f"{1e6 * write:.0f} µs. Linear to {t / 1e6:.0f}·10^6 passages: {disk * t / 2**30:.0f} GiB on disk, "
            f"{rss * t / 2**30:.0f} GiB resident (FLAT: full fp32 vectors, raw text, the sparse BM25 index), "
            f"{write * t / 3600:.1f} h of writing through one client.")


def _distembed(d: dict[str, Any], add: Add) -> None:
    add(f"**Embedding on workers** ({d['passages']} distinct passages recombined from the seeds' sentences, mean "
        f"{d['mean_chars']:.0f} characters incl. section path, batches of {d['batch']}, {d['cores']} cores; the "
        "in-process path is `kb build`'s default embedder, loaded beforehand in "
        f"{d['in_process_model_load_s']:.1f} s; each target's wall time includes starting its workers and their "
        "model loads):")
    add("")
    _table(add, "| job | passages | wall | passages/s | × in-process | first vectors after | steady passages/s | "
           "min cosine vs in-process |")
    for j in d["jobs"]:
        steady = j.get("steady_passages_per_s")
        cos = j.get("min_cosine_vs_in_process")
        add(f"| {j['label']} | {j['passages']} | {j['wall_s']:.1f} s | {j['passages_per_s']:.2f} | "
            f"{j['x_in_process']:.2f} | {j['first_vectors_s']:.1f} s | "
            f"{f'{steady:.2f}' if steady else '—'} | {f'{cos:.6f}' if cos is not None else '—'} |")
    add("")
    add("_First vectors after_: from the call to the first batch of vectors back (for a target: starting the pool "
        "or cluster and loading the model in each worker, then one batch). _Steady_: the passages after the first "
        "batch over the time from the first batch to the last.")
