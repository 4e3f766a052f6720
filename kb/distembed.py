"""The embedding stage on other workers: a local pool of processes, or a Ray Data job with one model-holding
actor per worker (`ray` starts a local cluster, `ray://head:10001` joins one). Vectors go to the content cache
as each batch comes back, so a killed job resumes where it stopped; the same vectors as in-process."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from kb.embed import Embedder, EmbeddingCache, get_embedder
from kb.embed.cache import cached_vectors, store_batch
from kb.errors import UsageError

TARGETS = "processes[:N], ray, ray:N (a local cluster of N workers) or ray://HEAD:PORT"
_worker: Embedder | None = None  # the model of this worker process, loaded once


def parse_target(spec: str) -> tuple[str, int, str | None]:
    """('processes' | 'ray', workers, cluster address or None) from an --embed-on value."""
    s = spec.strip()
    kind, _, rest = s.partition(":")
    if kind == "ray" and rest.startswith("//"):
        return "ray", 0, s
    if kind in ("processes", "ray"):
        try:
            n = int(rest) if rest else (os.cpu_count() or 1)
        except ValueError:
            n = 0
        if n >= 1:
            return kind, n, None
    raise UsageError(f"--embed-on {spec!r} is not a target; valid: {TARGETS}")


def _load_worker_model(model_id: str) -> Embedder:
    os.environ["OMP_NUM_THREADS"] = "1"  # one thread per worker: the best throughput per core here
    emb = get_embedder(model_id)
    if hasattr(emb, "threads"):
        emb.threads = 1
    return emb


def _init_process(model_id: str) -> None:
    global _worker
    _worker = _load_worker_model(model_id)


def _embed_in_process(texts: list[str]) -> np.ndarray:
    assert _worker is not None
    return np.asarray(_worker.embed_passages(texts), dtype=np.float32)


def _batches(texts: Sequence[str], size: int) -> list[list[str]]:
    return [list(texts[i : i + size]) for i in range(0, len(texts), size)]


def _on_processes(model_id: str, batches: list[list[str]], workers: int) -> Iterator[tuple[int, np.ndarray]]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # spawn, not fork: the parent has OpenMP runtimes (faiss, the model) whose threads fork does not copy
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_process, initargs=(model_id,)) as pool:
        futures = {pool.submit(_embed_in_process, b): i for i, b in enumerate(batches)}
        for f in as_completed(futures):
            yield futures[f], f.result()


class _RayEmbedder:
    """A Ray Data actor: the model loaded once per worker, then batch after batch."""

    def __init__(self, model_id: str) -> None:
        self.emb = _load_worker_model(model_id)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        vecs = np.asarray(self.emb.embed_passages([str(t) for t in batch["text"]]), dtype=np.float32)
        return {"batch": batch["batch"], "vector": vecs}


def ray_init(workers: int, address: str | None) -> None:
    """Join the cluster at `address`, or start a local one of `workers` CPUs that listens on loopback only."""
    if address is None:
        # A local cluster's gcs, raylet and workers then bind to 127.0.0.1 instead of every interface. Ray reads
        # it once, at import (ray_constants), so it is set before the import and, if Ray is loaded, there too.
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    import ray
    from ray._private import ray_constants

    if ray.is_initialized():
        raise UsageError("Ray is already initialized in this process; kb starts or joins its own cluster")
    if address is not None:
        ray.init(address=address, log_to_driver=False)
        return
    ray_constants.ENABLE_RAY_CLUSTER = False
    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, configure_logging=False)


def _on_ray(model_id: str, batches: list[list[str]], workers: int, address: str | None
            ) -> Iterator[tuple[int, np.ndarray]]:
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        raise UsageError("--embed-on ray needs the ray extra: pip install -e '.[ray]'")
    ray_init(workers, address)  # before any import of ray here: see ray_init
    import ray

    started = True
    try:
        yield from _ray_job(model_id, batches, workers)
    finally:
        if started:  # a cluster this job started (or joined) ends with it
            ray.shutdown()


def _ray_job(model_id: str, batches: list[list[str]], workers: int) -> Iterator[tuple[int, np.ndarray]]:
    import ray.data

    concurrency = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
    rows = [{"batch": i, "text": t} for i, b in enumerate(batches) for t in b]
    ds = ray.data.from_items(rows).map_batches(
        _RayEmbedder, fn_constructor_args=(model_id,), batch_size=len(batches[0]), concurrency=concurrency,
        num_cpus=1, batch_format="numpy",
    )
    got: dict[int, list[np.ndarray]] = {}
    for out in ds.iter_batches(batch_size=None, batch_format="numpy"):
        for b, v in zip(out["batch"].tolist(), out["vector"], strict=True):
            got.setdefault(int(b), []).append(np.asarray(v, dtype=np.float32))
            if len(got[int(b)]) == len(batches[int(b)]):
                yield int(b), np.stack(got.pop(int(b)))


def embed_on_workers(
    target: str, embedder: Embedder, texts: Sequence[str], cache: EmbeddingCache | None, progress: bool = True,
    *, batch_size: int | None = None,
) -> tuple[np.ndarray, int]:
    """As kb.embed.embed_with_cache, with the misses embedded on `target`'s workers (see parse_target)."""
    kind, workers, address = parse_target(target)
    out, todo = cached_vectors(embedder, texts, cache)
    if not todo:
        return out, 0
    size = batch_size or getattr(embedder, "batch_size", None) or 32
    batches = _batches(list(todo), size)
    run: Callable[[], Iterator[tuple[int, np.ndarray]]] = (
        (lambda: _on_processes(embedder.model_id, batches, workers)) if kind == "processes"
        else (lambda: _on_ray(embedder.model_id, batches, workers, address))
    )
    from tqdm import tqdm

    with tqdm(total=len(todo), desc=f"embedding on {target}", unit="text", file=sys.stderr, disable=not progress) as bar:
        for b, vecs in run():
            store_batch(embedder, cache, batches[b], vecs, out, todo)
            bar.update(len(batches[b]))
    return out, len(todo)
