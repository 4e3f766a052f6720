"""The document page links the report's original file, says its format and what extraction left out; the
file is served from seeds/ with a content type and disposition under which nothing in it runs here."""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import quote

import pytest

from kb.build import build
from kb.embed import HashEmbedder
from web import create_app

FORMATS = Path(__file__).resolve().parent / "data" / "formats"
SEEDS = Path(__file__).resolve().parent.parent / "seeds"
pytest_plugins = ["web_fixtures"]  # fake_client

GB_NAME = "东城区法治报告.txt"


def _app(seeds: Path, index: Path):  # type: ignore[no-untyped-def]
    stats = build(seeds, index, HashEmbedder(), progress=False)
    assert not stats.skipped, stats.skipped
    app = create_app({"index": index, "model": "fake", "seeds": seeds})
    app.config.update(TESTING=True)
    return app


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory):
    """One index per format (the fixtures in tests/data/formats are one report, so a folder keeps only one),
    each with a seed report beside it; (source → app) and the seeds folder of each."""
    apps, folders = {}, {}
    text = (SEEDS / "000_6c25788e2e4f38cc.txt").read_text(encoding="utf-8")
    for source in ("report.html", "report.pdf", "report.docx", GB_NAME):
        seeds, index = tmp_path_factory.mktemp("seeds"), tmp_path_factory.mktemp("index")
        if source == GB_NAME:
            (seeds / GB_NAME).write_bytes(text.encode("gb18030"))
        else:
            shutil.copy(FORMATS / source, seeds / source)
        apps[source], folders[source] = _app(seeds, index), seeds
    yield apps, folders
    for app in apps.values():
        app.extensions["kb"].close()


def _ids(client) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {d["source"]: d["doc_id"] for d in client.get("/api/docs").get_json()}


@pytest.mark.parametrize(
    ("source", "ctype", "kind"),
    [
        ("report.html", "application/octet-stream", "attachment"),
        ("report.pdf", "application/pdf", "inline"),
        ("report.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "attachment"),
        (GB_NAME, "text/plain; charset=gb18030", "inline"),
    ],
)
def test_original_file_is_served_safely(mixed, source: str, ctype: str, kind: str) -> None:
    client = mixed[0][source].test_client()
    seeds = mixed[1][source]
    doc_id = _ids(client)[source]
    r = client.get(f"/doc/{doc_id}/original")
    assert r.status_code == 200
    assert r.data == (seeds / source).read_bytes()
    assert r.headers["Content-Type"] == ctype
    disp = r.headers["Content-Disposition"]
    assert disp.startswith(f"{kind}; filename=\"") and f"filename*=UTF-8''{quote(source, safe='')}" in disp
    assert disp.encode("latin-1")  # the header itself is plain ASCII
    assert "default-src 'none'" in r.headers["Content-Security-Policy"]
    assert r.headers["X-Content-Type-Options"] == "nosniff"


def test_doc_page_links_the_original_and_names_its_format(mixed) -> None:
    pages = {}
    for source, app in mixed[0].items():
        client = app.test_client()
        doc_id = _ids(client)[source]
        pages[source] = client.get(f"/doc/{doc_id}").get_data(as_text=True)
        assert f"/doc/{doc_id}/original" in pages[source]
    assert "网页 saved web page" in pages["report.html"] and "网页只取正文" in pages["report.html"]
    assert "PDF 取其文字层" in pages["report.pdf"] and "Word (.docx)" in pages["report.docx"]
    assert "纯文本 text" in pages[GB_NAME]


def test_a_changed_or_missing_original_is_404(mixed, tmp_path: Path) -> None:
    client = mixed[0]["report.docx"].test_client()
    seeds = mixed[1]["report.docx"]
    doc_id = _ids(client)["report.docx"]
    keep = tmp_path / "keep.docx"
    shutil.copy(seeds / "report.docx", keep)
    try:
        (seeds / "report.docx").write_bytes(b"changed")
        r = client.get(f"/doc/{doc_id}/original")
        assert r.status_code == 404 and "changed since" in r.get_data(as_text=True)
        (seeds / "report.docx").unlink()
        assert client.get(f"/doc/{doc_id}/original").status_code == 404
    finally:
        shutil.copy(keep, seeds / "report.docx")
    assert client.get(f"/doc/{doc_id}/original").status_code == 200
    assert client.get("/doc/nope/original").status_code == 404


def test_seed_reports_serve_as_utf8_text(fake_client) -> None:
    doc_id = _ids(fake_client)["000_6c25788e2e4f38cc.txt"]
    r = fake_client.get(f"/doc/{doc_id}/original")
    assert r.status_code == 200 and r.headers["Content-Type"] == "text/plain; charset=utf-8"


@pytest.mark.skipif(shutil.which("antiword") is None and shutil.which("catdoc") is None,
                    reason="reading .doc needs antiword or catdoc (apt-get install antiword catdoc; scripts/test installs them as root)")
def test_a_doc_report_is_served_as_a_download(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    shutil.copy(FORMATS / "report.doc", seeds / "report.doc")
    app = _app(seeds, tmp_path / "index")
    try:
        client = app.test_client()
        doc_id = _ids(client)["report.doc"]
        r = client.get(f"/doc/{doc_id}/original")
        assert r.status_code == 200 and r.data == (seeds / "report.doc").read_bytes()
        assert r.headers["Content-Type"] == "application/msword"
        assert r.headers["Content-Disposition"].startswith("attachment; ")
        assert "Word 97–2003 (.doc)" in client.get(f"/doc/{doc_id}").get_data(as_text=True)
    finally:
        app.extensions["kb"].close()
