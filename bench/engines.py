"""`--engine milvus` and `--embed-on`: Milvus Lite beside the local index, and embedding on workers, printed."""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import tempfile
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.common import load_queries, log, write_json
from bench.report import START
from bench.report_engines import render_engines
from bench.run import Bench, machine

MILVUS_SIZES = [10_000, 100_000]
QUICK_SENTENCES = 48  # --quick: only this many seed sentences are embedded for the synthetic vectors
LAST = "kb-bench-engines-last.json"  # the last run's measurements, in the temp folder


def worker_env(work: Path) -> dict[str, str]:
    """Everything on loopback and inside the work directory: Milvus Lite's socket and glog files go to $TMPDIR,
    a local Ray cluster binds 127.0.0.1 (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0) and keeps its session there."""
    tmp = work / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    return {"TMPDIR": str(tmp), "RAY_TMPDIR": str(tmp), "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def run_engines(opts: argparse.Namespace, bench: Bench, r: dict[str, Any]) -> None:
    """The material, then each size (local index, then Milvus), then the embedding jobs; results into r."""
    queries = load_queries(opts.queries)
    env = worker_env(bench.work)
    if opts.engine == "milvus":
        log("material: the seed sentences and the queries embedded by the bundled model")
        r["material"] = bench.worker("material", {"work": str(bench.work), "queries": queries,
                                                  "max_sentences": QUICK_SENTENCES if opts.quick else None})
        r["milvus"] = {}
        for n in opts.sizes:
            r["milvus"][n] = _size(bench, n, queries, env)
    if opts.embed_on:
        log(f"embedding {opts.embed_passages} passages in-process and on {', '.join(opts.embed_on)}")
        r["distembed"] = bench.worker("distembed", {"passages": opts.embed_passages, "targets": opts.embed_on},
                                      env=env)


def _size(bench: Bench, n: int, queries: list[str], env: dict[str, str]) -> dict[str, Any]:
    """One size: the local index and exact top 10 (the scaled worker), then the Milvus worker on the same corpus."""
    work = bench.work
    idx, truth = work / f"index-{n}", work / f"truth-{n}.npy"
    log(f"[{n:.0e}] generating the corpus and writing the local index")
    built = bench.worker("scaled", {"n": n, "work": str(work), "index": str(idx), "truth": str(truth)})
    log(f"[{n:.0e}] local index searched, then the same corpus written to Milvus Lite and searched")
    res = bench.worker("milvus", {"n": n, "work": str(work), "index": str(idx), "truth": str(truth),
                                  "milvus_index": str(work / f"milvus-{n}"), "queries": queries,
                                  "qvecs": str(work / "query_vectors.npy"), "keep": bench.opts.keep}, env=env)
    res["local_build"] = {k: built[k] for k in ("write_index_s", "disk_bytes_total", "dense", "generate_s",
                                                "vectors_s", "tokens_compose_s") if k in built}
    if not bench.opts.keep:
        shutil.rmtree(idx, ignore_errors=True)
    s = {e: res[e]["dense_ms"]["p50"] for e in ("local", "milvus_flat", "milvus_ivf_flat")}
    log(f"[{n:.0e}] dense p50 ms " + json.dumps({k: round(v, 3) for k, v in s.items()}))
    return res


def versions() -> dict[str, str]:
    out = {}
    for dist in ("pymilvus", "milvus-lite", "ray"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def main_engines(opts: argparse.Namespace, command: str) -> int:
    """The whole `--engine milvus` / `--embed-on` run: measure, print the Markdown, keep the measurements."""
    if opts.out is not None and opts.out.exists() and START in opts.out.read_text(encoding="utf-8"):
        raise SystemExit(f"{opts.out} holds scripts/bench's generated section; --engine/--embed-on figures are "
                         "printed (and --out writes them to a file of their own), never spliced into it")
    t_start = time.perf_counter()
    work = opts.workdir or Path(tempfile.mkdtemp(prefix="kb-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    log(f"{command}: work directory {work}")
    m = machine()
    m["versions"].update(versions())
    r: dict[str, Any] = {"command": command, "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                         "quick": opts.quick, "machine": m, "sizes": opts.sizes if opts.engine == "milvus" else []}
    try:
        run_engines(opts, Bench(opts, work), r)
    finally:
        if not opts.keep and opts.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    r["wall_s"] = time.perf_counter() - t_start
    r["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]
    text = render_engines(r)
    print(text)
    with contextlib.suppress(OSError):
        write_json(Path(tempfile.gettempdir()) / LAST, r)
    if opts.out is not None:
        opts.out.write_text(text + "\n\n<details><summary>measurements (JSON)</summary>\n\n```json\n"
                            + json.dumps(r, ensure_ascii=False, indent=1, default=float) + "\n```\n\n</details>\n",
                            encoding="utf-8")
        log(f"wrote {opts.out}")
    return 0
