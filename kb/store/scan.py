"""One FAISS query on this machine's cores: OpenMP kept to one thread, IVF probes scanned in two halves."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import faiss
import numpy as np

from kb.threads import worker_pool


@contextlib.contextmanager
def _one_omp_thread() -> Iterator[None]:
    """Run FAISS single-threaded in the calling thread (libgomp keeps the setting per thread).

    Splitting one query over both cores of a 2-core machine made a flat 10^4 scan take 16-32 ms instead
    of 0.4 ms (measured): whenever the other core is busy, the OpenMP barrier waits for a 4 ms scheduler
    tick. Batch work (training, adding) keeps all threads."""
    prev = faiss.omp_get_max_threads()
    if prev != 1:
        faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        if prev != 1:
            faiss.omp_set_num_threads(prev)


# IVF probes of one query are scanned in two halves from this many probed lists up (below, a thread handoff
# costs more than half a scan).
SPLIT_MIN_PROBES = 16


def _faiss_search(index: Any, x: np.ndarray, fetch: int) -> tuple[np.ndarray, np.ndarray]:
    """index.search for one query; an IVF index scans every other probed list in a worker thread.

    Not FAISS's own intra-query threads (IndexIVF.parallel_mode): their OpenMP barrier waits a scheduler tick
    whenever the other core is busy (see _one_omp_thread). Here the caller scans its half, then takes back
    the other half if no worker has started it, so a busy machine costs no waiting. Measured at 10^6 rows
    (ivfi8, nprobe 96, IndexReader.dense_search with k=10, blocks of 100 queries alternating in one
    process): p50 1.66-1.79 ms in one thread, 1.37-1.51 ms in two."""
    nprobe = int(getattr(index, "nprobe", 0))
    if not isinstance(index, faiss.IndexIVF) or nprobe < SPLIT_MIN_PROBES:
        with _one_omp_thread():
            return index.search(x, fetch)
    with _one_omp_thread():
        dq, lists = index.quantizer.search(x, nprobe)
    odd = lists.copy()
    odd[:, ::2] = -1  # a list number of -1 is skipped by search_preassigned
    lists[:, 1::2] = -1
    other = worker_pool().submit(_scan_lists, index, x, fetch, odd, dq)
    d1, l1 = _scan_lists(index, x, fetch, lists, dq)
    d2, l2 = _scan_lists(index, x, fetch, odd, dq) if other.cancel() else other.result()
    d, lab = np.concatenate([d1[0], d2[0]]), np.concatenate([l1[0], l2[0]])
    # padding (-1 labels) carries the worst distance, so it sorts last either way
    order = np.argsort(-d if index.metric_type == faiss.METRIC_INNER_PRODUCT else d, kind="stable")[:fetch]
    return d[order][None], lab[order][None]


def _scan_lists(
    index: Any, x: np.ndarray, fetch: int, lists: np.ndarray, dq: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    with _one_omp_thread():
        return index.search_preassigned(x, fetch, lists, dq)
