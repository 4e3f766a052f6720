"""KB_ENGINE=milvus against Milvus Lite 2.5.1: answers equal to the local index's, filters as expressions, the
atomic switch between collections, a failed and a killed build. Nothing may listen off loopback meanwhile."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, SEEDS

from kb.evaluate import load_queries
from kb.search import Filters, Searcher

pytest_plugins = ["engine_fixtures", "netguard"]
# Milvus Lite and Ray start processes of their own: seconds each, so these run in the whole suite only
pytestmark = [pytest.mark.usefixtures("loopback_only"), pytest.mark.slow]
DEV_QUERIES = ROOT / "tests" / "data" / "dev_queries.jsonl"


def _same_within_ties(a: list[dict], b: list[dict]) -> None:
    """The same scores in order, and the same passages except where scores tie (their order is the engine's)."""
    assert len(a) == len(b)
    assert np.allclose([r["score"] for r in a], [r["score"] for r in b], atol=1e-4)
    last = a[-1]["score"] if a else 0.0
    firm = lambda rs: {r["chunk_id"] for r in rs if abs(r["score"] - last) > 1e-4}  # noqa: E731
    assert firm(a) == firm(b)


def test_milvus_answers_as_the_local_index(searcher: Searcher, milvus_searcher: Searcher) -> None:
    for q in [q["q"] for q in load_queries(DEV_QUERIES)]:
        for mode in ("hybrid", "bm25", "dense"):
            _same_within_ties(searcher.search(q, k=10, mode=mode)["results"],
                              milvus_searcher.search(q, k=10, mode=mode)["results"])
        f = Filters(kind="achievements")
        _same_within_ties(searcher.search(q, k=5, filters=f)["results"],
                          milvus_searcher.search(q, k=5, filters=f)["results"])
    # similar measures: the same distinctive words (the engine's token counts) and the same answers
    for src in searcher.search("行政复议", k=3)["results"]:
        mine, theirs = searcher.similar(chunk_id=src["chunk_id"], k=5), milvus_searcher.similar(chunk_id=src["chunk_id"], k=5)
        assert mine["similar_by"] == theirs["similar_by"]
        _same_within_ties(mine["results"], theirs["results"])


def test_bm25_scores_on_kb_scale(searcher: Searcher, milvus_searcher: Searcher) -> None:
    from kb import tokens

    t = tokens.tokenize("行政复议 法律援助 行政复议")
    (lr, ls), (mr, ms) = searcher.reader.bm25_search(t, 20), milvus_searcher.reader.bm25_search(t, 20)
    assert np.allclose(ls, ms, rtol=1e-5) and set(lr.tolist()) == set(mr.tolist())


@pytest.mark.parametrize("filters", [
    {"year": 2019}, {"locality": "平桥", "kind": "problems"}, {"region": "广东"},
    {"province": "广东省", "kind": ["plans", "problems"]}, {"locality": ["阜沙", "清溪"]},
    {"locality": '沙"镇'}, {"locality": "%"}, {"region": "_"}, {"locality": "阜\\沙"}, {"level": "township"},
])
def test_filters_become_expressions_with_the_local_meaning(searcher: Searcher, milvus_searcher: Searcher,
                                                           filters: dict) -> None:
    local, milvus = searcher.reader, milvus_searcher.reader
    assert milvus.rows_where(**filters).tolist() == local.rows_where(**filters).tolist()
    scope = milvus.scope_where(**filters)
    assert scope.doc_ids == local.scope_doc_ids(local.scope_where(**filters))
    values = [str(v) for k, vs in filters.items() if k != "kind" for v in (vs if isinstance(vs, list) else [vs])]
    if any(c in v for v in values for c in '"\\%_'):  # never written into a literal: matched by doc id
        assert scope.expr.startswith("doc_id in [")


def test_token_idf_is_the_same_on_both(searcher: Searcher, milvus_searcher: Searcher) -> None:
    from kb import tokens

    toks = [*tokens.tokenize("行政复议和法律援助工作"), "一个索引里没有的词"]
    local, milvus = searcher.reader.token_idf(toks), milvus_searcher.reader.token_idf(toks)
    assert np.allclose(local, milvus) and local[-1] == max(local)


def test_documents_and_chunks_read_the_same(searcher: Searcher, milvus_searcher: Searcher) -> None:
    local, milvus = searcher.reader, milvus_searcher.reader
    assert milvus.documents() == local.documents()
    for d in local.documents():
        assert milvus.document(d["doc_id"]) == local.document(d["doc_id"])
        assert milvus.doc_chunks(d["doc_id"]) == local.doc_chunks(d["doc_id"])
    rows = [0, 17, 5, local.n_chunks - 1]
    assert milvus.chunks(rows) == local.chunks(rows)
    assert milvus.chunk_tokens(rows) == local.chunk_tokens(rows)
    assert np.allclose(milvus.vectors(rows), local.vectors(rows))
    assert milvus.chunk_by_id('x" or row >= 0 or chunk_id == "') is None
    with pytest.raises(IndexError):
        milvus.chunks([local.n_chunks])


def _collections(index: Path) -> list[str]:
    from kb.engine import connect, disconnect, milvus_uri

    uri = milvus_uri(index)
    client = connect(uri)
    try:
        return sorted(client.list_collections())
    finally:
        disconnect(client, uri)


def test_switch_failed_build_and_token_never_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pymilvus")
    import kb.engine.writer as mw
    from kb.build import build
    from kb.embed import HashEmbedder
    from kb.store import current_version, open_index

    monkeypatch.setenv("KB_MILVUS_TOKEN", "secret-token-xyz")
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for p in sorted(SEEDS.glob("*.txt"))[:3]:
        (seeds / p.name).write_bytes(p.read_bytes())
    index, emb = tmp_path / "index", HashEmbedder()
    first = build(seeds, index, emb, progress=False, engine="milvus").version
    (seeds / "zz_extra.txt").write_text("2024年,测试镇推进法治建设。\n一、主要做法\n开展普法宣传活动。\n", encoding="utf-8")
    monkeypatch.setattr(mw, "_write_documents", lambda *a: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        build(seeds, index, emb, progress=False, engine="milvus")
    assert current_version(index) == first  # the failed build left the old collection serving, and no other
    assert _collections(index) == [f"kb_{first.replace('-', '_')}"]
    monkeypatch.undo()
    second = build(seeds, index, emb, progress=False, engine="milvus").version
    manifest = json.loads((index / second / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["engine"] == "milvus" and manifest["milvus"]["collection"] == f"kb_{second.replace('-', '_')}"
    # the replaced version is kept for readers still on it; older ones are dropped after the switch
    assert set(_collections(index)) == {f"kb_{v.replace('-', '_')}" for v in (first, second)}
    third = build(seeds, index, emb, progress=True, engine="milvus", full=True).version
    assert set(_collections(index)) == {f"kb_{v.replace('-', '_')}" for v in (second, third)}
    assert "secret-token-xyz" not in "".join(p.read_text(errors="replace") for p in index.rglob("*.json"))
    with open_index(index, expected_model_id=emb.model_id) as reader:
        assert reader.n_chunks > 0 and reader.documents()[-1]["source"] == "zz_extra.txt"


def test_ivf_index_on_lite_answers_as_the_exact_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """KB_MILVUS_INDEX=IVF_FLAT runs a server's IVF sizing code on Milvus Lite; with every list probed at this
    size (nprobe = nlist) it must answer as FLAT does."""
    pytest.importorskip("pymilvus")
    from kb.build import build
    from kb.embed import HashEmbedder
    from kb.store import open_index

    emb, answers = HashEmbedder(), {}
    for kind in ("FLAT", "IVF_FLAT"):
        monkeypatch.setenv("KB_MILVUS_INDEX", kind)
        index = tmp_path / kind
        version = build(SEEDS, index, emb, progress=False, engine="milvus").version
        manifest = json.loads((index / version / "manifest.json").read_text(encoding="utf-8"))
        assert manifest["dense"]["index_type"] == kind
        with open_index(index, expected_model_id=emb.model_id) as reader:
            answers[kind] = [Searcher(reader, emb).search(q, k=10, mode="dense")["results"]
                             for q in ("行政复议", "法律援助", "综合行政执法")]
    for flat, ivf in zip(answers["FLAT"], answers["IVF_FLAT"], strict=True):
        _same_within_ties(flat, ivf)


def test_kill_loop_on_milvus() -> None:
    pytest.importorskip("pymilvus")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "kill_loop"), "--points", "4", "--seed", "3", "--engine", "milvus"],
        capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "4 kills, 0 failures" in proc.stdout
