"""The on-disk index: round trip, search against brute force, filters, verification, atomic versions."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import bm25s
import numpy as np
import pytest
import scipy.sparse
from conftest import all_workers_busy
from hypothesis import given, settings
from hypothesis import strategies as st

import kb.store as store
from kb.model import Chunk, Repair, Report, Section
from kb.store import (
    REBUILD_HINT,
    IndexLoadError,
    IndexMissingError,
    bm25,
    current_version,
    dense,
    layout,
    list_versions,
    open_index,
    rank,
    scan,
    write_index,
)
from kb.tokens import tokenize, tokenize_many

DIM = 32
MODEL = "test/fake-model@1"

SENTENCES = [
    "全力推动行政复议应诉工作落地见效",
    "持续做强人民调解及时化解矛盾纠纷",
    "扎实有效推进法律援助民生工程实施",
    "深入开展普法宣传教育营造法治氛围",
    "严格规范公正文明执法提升执法质效",
    "完善重大行政决策程序落实合法性审查",
    "加强行政规范性文件备案审查管理",
    "推进府院联动机制建设",
    "法治队伍建设仍需加强专业人才不足",
    "下一步将继续深化综合行政执法改革",
]
DOCS = [
    ("000", "阜沙镇", "town", "中山市", "广东省", 2023),
    ("001", "荷塘镇", "town", "江门市", "广东省", 2019),
    ("002", "清溪镇", "town", "东莞市", "广东省", 2021),
    ("003", "平桥区", "district", "信阳市", "河南省", 2024),
    ("004", "龙祥街道", "subdistrict", "汕头市", "广东省", 2023),
]
KIND_CYCLE = ["preamble", "achievements", "achievements", "problems", "plans"]


def make_corpus(chunks_per_doc: int = 12, seed: int = 0) -> tuple[list[Report], list[Chunk]]:
    rng = np.random.default_rng(seed)
    reports, chunks = [], []
    for doc_id, loc, level, region, province, year in DOCS:
        texts = []
        for j in range(chunks_per_doc):
            a, b = rng.choice(len(SENTENCES), 2, replace=False)
            texts.append(f"{loc}{SENTENCES[a]},{SENTENCES[b]}。第{j}条")
        text = "\n".join(texts)
        sections, off = [], 0
        for t in texts:
            sections.append(Section(heading=t[:8], level=1, kind="achievements", start=off, end=off + len(t)))
            off += len(t) + 1
        sections[0].children.append(Section("(一)子节", 2, "achievements", 0, 4))
        rep = Report(
            doc_id=doc_id,
            source=f"{doc_id}_abcdef.txt",
            sha256=f"{int(doc_id):064x}",
            encoding="utf-8",
            raw_text="RAW " + text,
            text=text,
            title=f"{loc}{year}年法治政府建设年度报告",
            headline=None,
            locality=loc,
            level=level,
            region=region,
            province=province,
            year=year,
            published=None,
            repairs=[Repair("pinyin", 0, 1, "鎮(zhèn)", "镇"), Repair("punct", 3, 4, ",,", ",")],
            sections=sections,
        )
        reports.append(rep)
        off = 0
        for j, t in enumerate(texts):
            chunks.append(
                Chunk(
                    chunk_id=f"{doc_id}-{j:03d}",
                    doc_id=doc_id,
                    ordinal=j,
                    section_path=[f"{j % 3 + 1}、标题", f"({j})小标题"],
                    kind=KIND_CYCLE[j % len(KIND_CYCLE)],
                    start=off,
                    end=off + len(t),
                    text=t,
                )
            )
            off += len(t) + 1
    return reports, chunks


def unit_vectors(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def brute(vectors: np.ndarray, q: np.ndarray, k: int, rows: np.ndarray | None = None):
    rows = np.arange(len(vectors)) if rows is None else np.asarray(rows)
    s = vectors[rows] @ q
    order = np.argsort(-s, kind="stable")[:k]
    return rows[order], s[order]


@pytest.fixture(scope="module")
def corpus():
    reports, chunks = make_corpus()
    vectors = unit_vectors(len(chunks))
    tokens = tokenize_many([c.embed_text() for c in chunks])
    return reports, chunks, vectors, tokens


def build(root: Path, corpus, **kw) -> Path:
    reports, chunks, vectors, tokens = corpus
    info = kw.pop("build_info", {"seeds": "test"})
    return write_index(root, reports, chunks, vectors, tokens, kw.pop("model_id", MODEL), info, **kw)


@pytest.fixture(scope="module")
def built(tmp_path_factory, corpus):
    root = tmp_path_factory.mktemp("ix")
    build(root, corpus)
    return root


@pytest.fixture(scope="module")
def reader(built):
    with open_index(built, MODEL) as r:
        yield r


# ---- round trip ------------------------------------------------------------------------------------


def test_layout_and_manifest(built, corpus):
    reports, chunks, vectors, _ = corpus
    version = current_version(built)
    assert version and version.startswith("v-")
    folder = built / version
    for name in ("manifest.json", "vectors.npy", "dense.faiss", "kb.sqlite", "bm25/params.index.json"):
        assert (folder / name).is_file(), name
    m = json.loads((folder / "manifest.json").read_text())
    assert m["format_version"] == store.FORMAT_VERSION
    assert m["model_id"] == MODEL and m["dim"] == DIM
    assert m["counts"]["documents"] == len(reports)
    assert m["counts"]["chunks"] == m["counts"]["vectors"] == len(chunks)
    assert m["dense"]["type"] == "flat"
    assert m["build_info"] == {"seeds": "test"}
    assert set(m["checksums"]) >= {"vectors.npy", "dense.faiss", "kb.sqlite", "bm25/vocab.index.json"}
    assert not list(built.glob(".tmp-*"))


def test_round_trip(reader, corpus):
    reports, chunks, vectors, tokens = corpus
    assert reader.n_chunks == len(chunks)
    assert reader.version == current_version(reader.root)
    assert reader.is_current()
    got = reader.chunks([3, 0, 3])
    assert [g["row"] for g in got] == [3, 0, 3]
    c = chunks[3]
    assert got[0]["chunk_id"] == c.chunk_id and got[0]["doc_id"] == c.doc_id
    assert got[0]["section_path"] == c.section_path and got[0]["kind"] == c.kind
    assert (got[0]["start"], got[0]["end"], got[0]["text"], got[0]["ordinal"]) == (
        c.start,
        c.end,
        c.text,
        c.ordinal,
    )
    assert got[0]["source"] == reports[0].source and got[0]["locality"] == reports[0].locality
    assert got[0]["year"] == reports[0].year and got[0]["region"] == reports[0].region
    assert reader.chunks([]) == []
    with pytest.raises(IndexError):
        reader.chunks([len(chunks)])
    assert reader.chunk_by_id(chunks[7].chunk_id)["row"] == 7
    assert reader.chunk_by_id("nope") is None
    assert [d["chunk_id"] for d in reader.doc_chunks("001")] == [
        c.chunk_id for c in chunks if c.doc_id == "001"
    ]
    assert reader.chunk_tokens([5, 1]) == [tokens[5], tokens[1]]
    np.testing.assert_array_equal(reader.vector(4), vectors[4])
    with pytest.raises(IndexError):
        reader.vector(-1)


def test_documents(reader, corpus):
    reports = corpus[0]
    assert reader.documents() == [json.loads(json.dumps(r.summary())) for r in reports]
    d = reader.document("003")
    r = reports[3]
    assert d["text"] == r.text and d["title"] == r.title and d["locality"] == "平桥区"
    assert d["sections"] == [s.to_dict() for s in r.sections]
    assert d["repair_log"] == [p.to_dict() for p in r.repairs]
    assert d["repairs"] == {"pinyin": 1, "punct": 1}
    assert reader.document("999") is None
    assert reader.raw_text("003") == r.raw_text
    assert reader.raw_text("999") is None
    assert reader.report("003") == r
    assert reader.report("999") is None


# ---- dense search ----------------------------------------------------------------------------------


def test_flat_equals_brute_force(reader, corpus):
    vectors = corpus[2]
    for i, q in enumerate(unit_vectors(20, seed=7)):
        rows, scores = reader.dense_search(q, 10)
        b_rows, b_scores = brute(vectors, q, 10)
        np.testing.assert_array_equal(rows, b_rows, err_msg=f"query {i}")
        np.testing.assert_allclose(scores, b_scores, rtol=1e-5, atol=1e-6)
        assert rows.dtype == np.int64


def test_vector_finds_itself(reader):
    for row in range(reader.n_chunks):
        rows, scores = reader.dense_search(reader.vector(row), 1)
        assert rows.tolist() == [row]
        assert scores[0] == pytest.approx(1.0, abs=1e-5)


def test_k_larger_than_n_never_returns_padding(reader):
    rows, scores = reader.dense_search(reader.vector(0), reader.n_chunks + 25)
    assert len(rows) == reader.n_chunks == len(set(rows.tolist()))
    assert rows.min() >= 0 and np.all(np.diff(scores) <= 1e-6)
    assert reader.dense_search(reader.vector(0), 0)[0].size == 0


def test_query_dimension_checked(reader):
    with pytest.raises(ValueError, match="dimension 5"):
        reader.dense_search(np.ones(5, dtype=np.float32), 3)


@pytest.mark.parametrize("kind", ["hnsw", "hnswsq8", "ivf", "ivfsq8", "ivfi8"])
def test_approximate_index_recall(tmp_path, kind):
    reports, chunks = make_corpus(chunks_per_doc=120)
    # Clustered vectors (like real embeddings), so that approximate search has neighbourhoods to find.
    centers = unit_vectors(12, seed=3)
    rng = np.random.default_rng(4)
    v = centers[rng.integers(0, 12, len(chunks))] + 0.35 * rng.standard_normal((len(chunks), DIM)) / np.sqrt(
        DIM
    )
    v = (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)
    tokens = [["x"]] * len(chunks)
    write_index(tmp_path, reports, chunks, v, tokens, MODEL, {}, dense=kind)
    with open_index(tmp_path, MODEL, verify="full") as r:
        assert r.manifest["dense"]["type"] == kind
        hits = 0
        queries = v[rng.choice(len(v), 50, replace=False)] + 0.1 * rng.standard_normal((50, DIM)) / np.sqrt(
            DIM
        )
        for q in queries.astype(np.float32):
            rows, _ = r.dense_search(q, 10)
            assert rows.min() >= 0
            hits += len(set(rows.tolist()) & set(brute(v, q, 10)[0].tolist()))
        assert hits / (50 * 10) >= 0.95
        for row in range(0, len(chunks), 37):
            assert r.dense_search(r.vector(row), 1)[0].tolist() == [row]
        rows, _ = r.dense_search(v[0], len(chunks) + 10)
        assert rows.min() >= 0 and len(rows) == len(set(rows.tolist())) <= len(chunks)


def test_dense_spec_choice_by_size():
    assert store.choose_dense_spec(100)["type"] == "flat"
    assert store.choose_dense_spec(dense.FLAT_MAX_ROWS + 1)["type"] != "flat"
    big = store.choose_dense_spec(1_000_000)
    assert big["type"] == "ivfi8" and big["rerank"] > 1 and big["nlist"] == 4000
    assert store.choose_dense_spec(100_000)["nprobe"] >= big["nprobe"]
    assert store.default_dense_spec("ivf", 1_000_000)["nlist"] == 4000
    with pytest.raises(ValueError, match="valid"):
        store.default_dense_spec("annoy", 10)


def test_int8_index_falls_back_for_vectors_that_are_not_unit_length(monkeypatch):
    monkeypatch.setattr(dense, "FLAT_MAX_ROWS", 100)  # the automatic choice, at a test's size
    rng = np.random.default_rng(7)
    v = rng.standard_normal((2000, DIM)).astype(np.float32)  # lengths around 4, not 1
    index, spec = store.build_dense_index(v)
    assert spec["type"] == "ivfsq8"
    with pytest.raises(ValueError, match="unit-length"):
        store.build_dense_index(v, "ivfi8")
    unit = v / np.linalg.norm(v, axis=1, keepdims=True)
    index, spec = store.build_dense_index(unit, {"type": "ivfi8", "rerank": 0})
    assert spec["type"] == "ivfi8" and spec["rerank"] == 1 and spec["scale"] > 127  # scores come from rescoring
    rows, scores = store.dense_search_rows(index, spec, unit, unit[5], 3)
    assert rows[0] == 5 and abs(scores[0] - 1.0) < 1e-5 and np.all(np.diff(scores) <= 0)


@pytest.mark.parametrize("kind", ["ivf", "ivfi8"])
def test_ivf_scan_in_two_halves_answers_as_one_scan(kind):
    rng = np.random.default_rng(11)
    centers = unit_vectors(20, seed=12)
    v = centers[rng.integers(0, 20, 3000)] + 0.4 * rng.standard_normal((3000, DIM)) / np.sqrt(DIM)
    v = (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)
    index, spec = store.build_dense_index(v, {"type": kind, "nlist": 40, "nprobe": 24})
    assert index.nprobe >= scan.SPLIT_MIN_PROBES
    queries = (v[:20] * np.float32(spec.get("scale", 1.0))).astype(np.float32)

    def check() -> None:
        for x in queries:
            with scan._one_omp_thread():
                d1, l1 = index.search(x[None], 40)
            d2, l2 = scan._faiss_search(index, x[None], 40)
            np.testing.assert_allclose(d2[0], d1[0], rtol=1e-5, atol=1e-3)  # same distances, best first
            inside = d2[0] != d2[0][-1]  # at the last distance a tie may pick either row
            assert set(l2[0][inside].tolist()) <= set(l1[0].tolist())

    check()
    with all_workers_busy():  # the caller scans both halves itself rather than wait
        check()


def test_vector_file_reads_rows_as_numpy_does(tmp_path):
    v = unit_vectors(300, seed=21)
    np.save(tmp_path / "v.npy", v)
    vf = store.VectorFile(tmp_path / "v.npy")
    try:
        rng = np.random.default_rng(22)
        cases = [
            np.sort(rng.choice(300, 40, replace=False)),  # scattered, file order
            np.array([5, 6, 7, 8, 100, 101, 299]),  # runs of adjacent rows, the last row
            np.array([42, 7, 7, 8, 0]),  # any order, repeats
            np.array([], dtype=np.int64),
        ]
        for rows in cases:
            np.testing.assert_array_equal(vf[rows], v[rows])
        np.testing.assert_array_equal(vf[17], v[17])
        with pytest.raises(IndexError, match="out of range"):
            vf[[3, 300]]
        with open(tmp_path / "v.npy", "r+b") as f:  # the file shrinks under an open reader
            f.truncate(os.path.getsize(tmp_path / "v.npy") - 100)
        with pytest.raises(OSError, match="short read .* row 299"):
            vf[[1, 2, 299]]
        with pytest.raises(OSError, match="short read .* row 299"):
            vf[299]
    finally:
        vf.close()


# ---- filters ---------------------------------------------------------------------------------------


def test_rows_where(reader, corpus):
    chunks = corpus[1]
    assert reader.rows_where() is None
    by_doc = {
        d: [i for i, c in enumerate(chunks) if c.doc_id == d] for d in ("000", "001", "002", "003", "004")
    }
    assert reader.rows_where(locality="阜沙镇").tolist() == by_doc["000"]
    assert reader.rows_where(locality="阜沙").tolist() == by_doc["000"]
    assert reader.rows_where(year=2023).tolist() == sorted(by_doc["000"] + by_doc["004"])
    assert reader.rows_where(year="2023", locality="龙祥").tolist() == by_doc["004"]
    assert reader.rows_where(region="河南").tolist() == by_doc["003"]
    assert reader.rows_where(region="汕头市").tolist() == by_doc["004"]
    assert reader.rows_where(locality=["荷塘镇", "清溪镇"]).tolist() == sorted(by_doc["001"] + by_doc["002"])
    assert reader.rows_where(kind="problems").tolist() == [
        i for i, c in enumerate(chunks) if c.kind == "problems"
    ]
    assert reader.rows_where(doc_ids=["002"], kind="plans").tolist() == [
        i for i in by_doc["002"] if chunks[i].kind == "plans"
    ]
    assert reader.rows_where(level="district").tolist() == by_doc["003"]
    assert reader.rows_where(locality="不存在").size == 0
    with pytest.raises(ValueError, match="achievements"):
        reader.rows_where(kind="results")
    with pytest.raises(ValueError, match="year"):
        reader.rows_where(year="last")


def test_dense_filter_exact_and_overfetch(reader, corpus, monkeypatch):
    vectors = corpus[2]
    subsets = [
        reader.rows_where(year=2023),
        reader.rows_where(kind="achievements"),
        np.array([5, 9, 9, 200, -1]),
    ]
    queries = unit_vectors(8, seed=11)
    faiss_calls = []
    faiss_search = dense.dense_search_rows

    def counted(*args, **kw):
        faiss_calls.append(1)
        return faiss_search(*args, **kw)

    monkeypatch.setattr(dense, "dense_search_rows", counted)
    for forced in (False, True):
        if forced:  # force the FAISS over-fetch path instead of exact subset scoring
            assert not faiss_calls  # the subsets are small: exact scoring, FAISS not asked
            monkeypatch.setattr(dense, "SUBSET_EXACT_MAX", 0)
        for sub in subsets:
            valid = np.unique(sub[(sub >= 0) & (sub < len(vectors))])
            for q in queries:
                rows, scores = reader.dense_search(q, 7, rows=sub)
                b_rows, b_scores = brute(vectors, q, 7, valid)
                assert set(rows.tolist()) <= set(valid.tolist())
                np.testing.assert_array_equal(rows, b_rows)
                np.testing.assert_allclose(scores, b_scores, rtol=1e-5, atol=1e-6)
    assert len(faiss_calls) >= len(subsets) * len(queries)  # the forced path ran
    assert reader.dense_search(queries[0], 5, rows=np.array([], dtype=np.int64))[0].size == 0


# ---- BM25 ------------------------------------------------------------------------------------------


def test_bm25_matches_bm25s_scores(reader, corpus):
    tokens = corpus[3]
    ref = bm25s.BM25(**store.BM25_PARAMS)
    ref.index(tokens, show_progress=False)
    for q in ["行政复议应诉", "人民调解", "府院联动", "法律援助 民生", "阜沙镇 执法"]:
        qt = list(dict.fromkeys(tokenize(q)))
        rows, scores = reader.bm25_search(qt, 10)
        want = ref.get_scores([t for t in qt if t in ref.vocab_dict])
        best = np.sort(want[want > 0])[::-1][:10]
        # Same top scores, and each row scored as bm25s scores it (ties may be ordered differently).
        np.testing.assert_allclose(scores, best, rtol=1e-5, err_msg=q)
        np.testing.assert_allclose(want[rows], scores, rtol=1e-5, err_msg=q)
        assert len(set(rows.tolist())) == len(rows)


def test_bm25_public_fallback_gives_the_same_answers(reader, monkeypatch):
    qs = [tokenize(q) for q in ("行政复议应诉", "人民调解 法律援助", "府院联动", "阜沙镇 执法 监督")]
    fast = [reader.bm25_search(q, 10) for q in qs]
    public_calls = []
    csc_matrix = scipy.sparse.csc_matrix

    def counted(*args, **kw):
        public_calls.append(1)
        return csc_matrix(*args, **kw)

    monkeypatch.setattr(scipy.sparse, "csc_matrix", counted)
    monkeypatch.setattr(bm25, "_csc_matvec", None)  # as on a scipy without the private module
    for q, (rows, scores) in zip(qs, fast, strict=True):
        r2, s2 = reader.bm25_search(q, 10)
        assert r2.tolist() == rows.tolist()
        np.testing.assert_allclose(s2, scores, rtol=1e-6)
    assert public_calls  # the public path ran


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from([0.0, 0.0, 0.5, 1.0, 1.0, 2.0, 3.25]), min_size=0, max_size=3000),
    st.integers(min_value=1, max_value=120),
)
def test_top_candidates_hold_the_top_k(values, k):
    """Heavy ties and zeros: the candidates always include the k best positive rows, and _top then picks
    the lowest rows among ties whatever the candidate set was."""
    scores = np.array(values, dtype=np.float32)
    cand = bm25._top_candidates(scores, k)
    assert np.all(scores[cand] > 0)
    positive = np.flatnonzero(scores > 0)
    want_rows, want_scores = rank._top(positive, scores[positive], k)
    got_rows, got_scores = rank._top(cand.astype(np.int64), scores[cand], k)
    assert got_rows.tolist() == want_rows.tolist()
    assert got_scores.tolist() == want_scores.tolist()
    # brute force: best score first, then lowest row
    expect = sorted(positive.tolist(), key=lambda r: (-scores[r], r))[:k]
    assert got_rows.tolist() == expect


def test_top_candidates_large_array_uses_the_sample():
    rng = np.random.default_rng(3)
    scores = rng.random(200_000).astype(np.float32)
    cand = bm25._top_candidates(scores, 60)
    assert 60 <= len(cand) < 5_000  # a threshold, not every positive row
    assert set(np.argsort(-scores)[:60].tolist()) <= set(cand.tolist())


def test_token_idf_follows_the_passage_counts(reader):
    from kb.store.bm25 import idf

    common, rare = reader.token_idf(["法治", "一个索引里没有的词"])
    assert rare == idf(0, reader.n_chunks) > common > 0


def test_bm25_finds_the_passage(reader, corpus):
    chunks = corpus[1]
    rows, scores = reader.bm25_search(tokenize("行政复议应诉"), 5)
    assert len(rows) and scores[0] > 0
    assert all("行政复议" in chunks[r].text for r in rows)
    assert np.all(np.diff(scores) <= 0)


def test_bm25_unknown_or_empty_query(reader):
    for q in (["zzzunknown"], [], [""], ["的"]):
        rows, scores = reader.bm25_search(q, 10)
        assert rows.size == 0 and scores.size == 0


def test_bm25_filter(reader):
    qt = tokenize("人民调解 法律援助")
    full, _ = reader.bm25_search(qt, reader.n_chunks)
    for sub in (reader.rows_where(locality="清溪镇"), reader.rows_where(kind="plans"), np.array([1, 2, 3])):
        rows, _ = reader.bm25_search(qt, 4, rows=sub)
        assert rows.tolist() == [r for r in full.tolist() if r in set(sub.tolist())][:4]


def test_concurrent_readers(reader):
    qs = unit_vectors(16, seed=5)
    qt = tokenize("行政执法 法治宣传")

    def work(i):
        return (
            reader.dense_search(qs[i], 5)[0].tolist(),
            reader.bm25_search(qt, 5, rows=reader.rows_where(year=2023))[0].tolist(),
            [c["chunk_id"] for c in reader.chunks(range(i, i + 3))],
        )

    expected = [work(i) for i in range(16)]
    with ThreadPoolExecutor(8) as ex:
        assert list(ex.map(work, list(range(16)) * 4)) == expected * 4


# ---- verification ----------------------------------------------------------------------------------


def test_model_mismatch(built):
    with pytest.raises(IndexLoadError) as e:
        open_index(built, "intfloat/multilingual-e5-base")
    msg = str(e.value)
    assert MODEL in msg and "intfloat/multilingual-e5-base" in msg and msg.endswith(REBUILD_HINT)
    open_index(built).close()  # no expectation: any model


def test_missing_index(tmp_path):
    for root in (tmp_path / "nowhere", tmp_path):
        with pytest.raises(IndexMissingError) as e:
            open_index(root)
        assert isinstance(e.value, IndexLoadError)
        assert "CURRENT" in str(e.value) and str(e.value).endswith(REBUILD_HINT)


def _copy_index(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".lock"))
    return dst / current_version(dst)


def test_corrupt_sqlite(built, tmp_path):
    folder = _copy_index(built, tmp_path / "ix")
    p = folder / "kb.sqlite"
    data = bytearray(p.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 16] = bytes(b ^ 0xFF for b in data[mid : mid + 16])
    p.write_bytes(bytes(data))
    with pytest.raises(IndexLoadError) as e:
        open_index(tmp_path / "ix", MODEL)
    assert "kb.sqlite" in str(e.value) and str(e.value).endswith(REBUILD_HINT)


def test_truncated_vectors(built, tmp_path):
    folder = _copy_index(built, tmp_path / "ix")
    p = folder / "vectors.npy"
    with open(p, "r+b") as f:
        f.truncate(p.stat().st_size - 100)
    with pytest.raises(IndexLoadError) as e:
        open_index(tmp_path / "ix", MODEL)
    assert "vectors.npy" in str(e.value) and str(e.value).endswith(REBUILD_HINT)


def test_large_files_hashed_only_when_full(built, tmp_path, monkeypatch):
    folder = _copy_index(built, tmp_path / "ix")
    p = folder / "vectors.npy"
    data = bytearray(p.read_bytes())
    data[-3] ^= 0x55
    p.write_bytes(bytes(data))
    monkeypatch.setattr(layout, "FULL_HASH_MAX_BYTES", 0)
    open_index(tmp_path / "ix", MODEL).close()  # size checks only
    with pytest.raises(IndexLoadError, match="vectors.npy is corrupt"):
        open_index(tmp_path / "ix", MODEL, verify="full")


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda m: m.update(format_version=99), "format_version 99"),
        (lambda m: m.update(tokenizer="whitespace-v0"), "whitespace-v0"),
        (lambda m: m["counts"].update(chunks=1), "manifest counts"),
        (lambda m: m.pop("dense"), "lacks 'dense'"),
    ],
)
def test_manifest_checks(built, tmp_path, edit, match):
    folder = _copy_index(built, tmp_path / "ix")
    mp = folder / "manifest.json"
    m = json.loads(mp.read_text())
    edit(m)
    mp.write_text(json.dumps(m))
    with pytest.raises(IndexLoadError, match=match) as e:
        open_index(tmp_path / "ix", MODEL)
    assert str(e.value).endswith(REBUILD_HINT)


def test_missing_file_and_bad_current(built, tmp_path):
    folder = _copy_index(built, tmp_path / "ix")
    (folder / "dense.faiss").unlink()
    with pytest.raises(IndexLoadError, match="dense.faiss is missing"):
        open_index(tmp_path / "ix")
    (tmp_path / "ix" / "CURRENT").write_text("../elsewhere\n")
    with pytest.raises(IndexLoadError, match="not a version folder"):
        open_index(tmp_path / "ix")
    (tmp_path / "ix" / "CURRENT").write_text("v-gone\n")
    with pytest.raises(IndexLoadError, match="does not exist"):
        open_index(tmp_path / "ix")


# ---- versions, garbage collection, crashes ---------------------------------------------------------


def test_versions_kept_and_old_reader_survives(tmp_path, corpus):
    first = build(tmp_path, corpus, build_info={"n": 1})
    old = open_index(tmp_path, MODEL)
    second = build(tmp_path, corpus, build_info={"n": 2})
    assert not old.is_current()
    third = build(tmp_path, corpus, build_info={"n": 3})
    assert current_version(tmp_path) == third.name
    assert list_versions(tmp_path) == sorted([second.name, third.name])
    assert not first.exists()
    # A server still holding the deleted version keeps answering from its open files.
    assert old.manifest["build_info"] == {"n": 1}
    assert old.dense_search(old.vector(2), 1)[0].tolist() == [2]
    assert old.chunks([1])[0]["chunk_id"] == corpus[1][1].chunk_id
    assert old.bm25_search(tokenize("人民调解"), 3)[0].size > 0
    old.close()
    with open_index(tmp_path, MODEL) as r:
        assert r.manifest["build_info"] == {"n": 3}
        assert r.version == third.name


def test_stale_tmp_folder_ignored_then_removed(tmp_path, corpus):
    build(tmp_path, corpus, build_info={"n": 1})
    stale = tmp_path / ".tmp-20000101T000000000000Z-dead00"
    (stale / "bm25").mkdir(parents=True)
    (stale / "vectors.npy").write_bytes(b"partial")
    leftover = tmp_path / ".del-v-19990101T000000000000Z-dead00"
    leftover.mkdir()
    with open_index(tmp_path, MODEL) as r:
        assert r.manifest["build_info"] == {"n": 1}
    build(tmp_path, corpus, build_info={"n": 2})
    assert not stale.exists() and not leftover.exists()
    assert len(list_versions(tmp_path)) == 2


class Killed(BaseException):
    """Stands in for SIGKILL: not an Exception, so no cleanup handler runs."""


STAGES = [
    "tmp-created",
    "vectors",
    "dense",
    "bm25",
    "sqlite",
    "manifest",
    "renamed",
    "current-tmp",
    "current",
]


@pytest.mark.parametrize("stage", STAGES)
def test_killed_build_leaves_old_or_new_whole(tmp_path, corpus, stage):
    build(tmp_path, corpus, build_info={"n": 1})
    reports, chunks, vectors, tokens = corpus

    def crash(s):
        if s == stage:
            raise Killed(s)

    with pytest.raises(Killed):
        write_index(tmp_path, reports[:2], chunks[:24], vectors[:24], tokens[:24], MODEL, {"n": 2}, on_stage=crash)
    with open_index(tmp_path, MODEL, verify="full") as r:
        n = r.manifest["build_info"]["n"]
        assert n == (2 if stage == "current" else 1)
        assert r.n_chunks == (24 if n == 2 else len(chunks))
        assert len(r.documents()) == (2 if n == 2 else len(reports))
    build(tmp_path, corpus, build_info={"n": 3})
    assert not list(tmp_path.glob(".tmp-*")) and not (tmp_path / "CURRENT.tmp").exists()
    assert len(list_versions(tmp_path)) == 2
    with open_index(tmp_path, MODEL) as r:
        assert r.manifest["build_info"] == {"n": 3}


@pytest.mark.slow
def test_sigkill_during_builds(tmp_path):
    """A real SIGKILL at arbitrary moments of repeated builds; the index stays loadable and whole."""
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_store import make_corpus, unit_vectors, MODEL
        from kb.store import write_index
        reports, chunks = make_corpus(chunks_per_doc=200)
        tokens = [[c.doc_id, str(c.ordinal % 7)] for c in chunks]
        i = 0
        while True:
            i += 1
            k = len(chunks) - (i % 5) * 10
            write_index(sys.argv[1], reports, chunks[:k], unit_vectors(k, seed=i), tokens[:k], MODEL, {{"i": i, "k": k}})
            print(i, flush=True)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    rng = np.random.default_rng(0)
    seen = 0
    for attempt in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, env=env
        )
        assert proc.stdout is not None
        proc.stdout.readline()  # at least one complete build this round
        time.sleep(float(rng.uniform(0.0, 0.3)))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        with open_index(tmp_path, MODEL, verify="full") as r:
            k = r.manifest["build_info"]["k"]
            assert r.n_chunks == k
            assert r.dense_search(r.vector(k - 1), 1)[0].tolist() == [k - 1]
            seen = max(seen, r.manifest["build_info"]["i"])
        assert len(list_versions(tmp_path)) <= 3, (
            attempt
        )  # at most one unpublished folder beyond the kept two
    assert seen >= 1


# ---- edge cases --------------------------------------------------------------------------------------


def test_empty_index(tmp_path):
    reports, _ = make_corpus(chunks_per_doc=1)
    write_index(tmp_path, reports, [], np.zeros((0, DIM), np.float32), [], MODEL, {})
    with open_index(tmp_path, MODEL, verify="full") as r:
        assert r.n_chunks == 0
        assert r.dense_search(unit_vectors(1)[0], 5)[0].size == 0
        assert r.bm25_search(["行政"], 5)[0].size == 0
        assert len(r.documents()) == len(reports)
        assert r.rows_where(year=2023).size == 0


def test_chunks_without_tokens(tmp_path):
    reports, chunks = make_corpus(chunks_per_doc=2)
    write_index(tmp_path, reports, chunks, unit_vectors(len(chunks)), [[] for _ in chunks], MODEL, {})
    with open_index(tmp_path, MODEL) as r:
        assert r.bm25_search(["行政"], 5)[0].size == 0
        assert r.dense_search(r.vector(3), 1)[0].tolist() == [3]


def test_write_validation(tmp_path, corpus):
    reports, chunks, vectors, tokens = corpus
    with pytest.raises(ValueError, match="row counts differ"):
        write_index(tmp_path, reports, chunks, vectors[:-1], tokens, MODEL, {})
    with pytest.raises(ValueError, match="not among the reports"):
        write_index(tmp_path, reports[1:], chunks, vectors, tokens, MODEL, {})
    with pytest.raises(ValueError, match="duplicate chunk_id"):
        write_index(tmp_path, reports, chunks[:2] + chunks[:1], vectors[:3], tokens[:3], MODEL, {})
    bad = vectors.copy()
    bad[3, 0] = np.nan
    with pytest.raises(ValueError, match="row 3"):
        write_index(tmp_path, reports, chunks, bad, tokens, MODEL, {})
    assert current_version(tmp_path) is None
    assert not list(tmp_path.glob(".tmp-*")) and not list_versions(tmp_path)
