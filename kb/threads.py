"""The process-wide worker threads: the second half of one query's work (IVF scans, hybrid BM25)."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

WORKERS = os.cpu_count() or 2
_POOL_LOCK = threading.Lock()
_POOL: ThreadPoolExecutor | None = None


def worker_pool() -> ThreadPoolExecutor:
    """Threads for the second half of one query's work (the other half runs in the caller's thread), one per
    core, shared by every reader and searcher in the process, started on first use."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="kb-worker")
        return _POOL
