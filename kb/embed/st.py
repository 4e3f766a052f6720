"""Any sentence-transformers model, by hub name (from the local Hugging Face cache) or by local folder."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

# The query-side instruction the BAAI bge *zh* models were trained with (passages get none).
BGE_ZH_QUERY_INSTRUCTION = "为这个句子生成表示以用于检索相关文章："


@contextlib.contextmanager
def hub_offline() -> Iterator[bool]:
    """HF_HUB_OFFLINE=1 while a model loads, unless the user set it; yields whether loading is offline.

    Offline unless the user said otherwise: a missing model must raise, not hang on a network that is not
    there. huggingface_hub reads the variable when it is first imported (inside this block); local_files_only
    covers the case where something imported it earlier. The process environment is restored afterwards, so
    nothing else (subprocesses, other libraries) inherits the setting.
    """
    before = os.environ.get("HF_HUB_OFFLINE")
    if before is None:
        os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        yield os.environ["HF_HUB_OFFLINE"].strip().lower() not in ("0", "false", "no", "")
    finally:
        if before is None:
            os.environ.pop("HF_HUB_OFFLINE", None)


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
        with hub_offline() as offline:
            from sentence_transformers import SentenceTransformer  # lazy: pulls in torch (seconds)

            try:
                return SentenceTransformer(name, device=device, local_files_only=offline)
            except OSError as exc:
                hint = "set HF_HUB_OFFLINE=0 to let it download" if offline else "check the name and the network"
                raise FileNotFoundError(
                    f"sentence-transformers model {name!r} could not be loaded: it is not a local folder and is "
                    f"not in the Hugging Face cache (HF_HUB_OFFLINE={os.environ.get('HF_HUB_OFFLINE')}); pass a "
                    f"local model folder, or {hint}. Cause: {exc}"
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

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """embed_query of many texts in one call (the glossary's phrasings, kb.termvec)."""
        return self._encode(list(texts), self.query_prefix) if texts else np.empty((0, self.dim), np.float32)
