"""/upload: off by default; on, a report uploaded from the browser is added with kb add's code, the index
rebuilt and swapped in without a restart; wrong types, oversized files and POSTs without the page's token are
refused with the one JSON error shape; a file name never leads outside seeds/."""

from __future__ import annotations

import io
import re
import shutil
import zipfile
from pathlib import Path

import pytest

from kb.build import build
from kb.embed import HashEmbedder
from kb.errors import UsageError
from web import create_app
from web.upload import safe_name

pytest_plugins = ["web_fixtures"]  # fake_client

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
MARK = "青稞坪智慧调解驿站"  # a term no seed report has


def _report(extra: str = MARK) -> bytes:
    text = (SEEDS / "001_53274d73b52dab04.txt").read_text(encoding="utf-8")
    return (text + f"\n我们在全区推广{extra}，一年来化解矛盾纠纷三百余件。\n").encode("utf-8")


def _app(tmp: Path, **settings):  # type: ignore[no-untyped-def]
    seeds, index = tmp / "seeds", tmp / "index"
    seeds.mkdir()
    for p in sorted(SEEDS.glob("*.txt"))[:2]:
        shutil.copy(p, seeds / p.name)
    build(seeds, index, HashEmbedder(), progress=False)
    app = create_app({"index": index, "model": "fake", "seeds": seeds, "allow_upload": True,
                      "check_interval": 0.05, **settings})
    app.config.update(TESTING=True)
    return app, seeds


@pytest.fixture()
def upload_app(tmp_path: Path):
    app, seeds = _app(tmp_path)
    yield app, seeds
    uploads = app.extensions.get("kb_uploads")
    if uploads is not None:
        uploads.wait()
    app.extensions["kb"].close()


def _token(client) -> str:  # type: ignore[no-untyped-def]
    page = client.get("/upload")
    assert page.status_code == 200
    m = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.get_data(as_text=True))
    assert m
    return m.group(1)


def _post(client, token: str | None, *files: tuple[bytes, str]):  # type: ignore[no-untyped-def]
    data = {"files": [(io.BytesIO(b), name) for b, name in files]}
    headers = {"Accept": "application/json"}
    if token is not None:
        headers["X-CSRF-Token"] = token
    return client.post("/upload/files", data=data, headers=headers, content_type="multipart/form-data")


def _is_error(r, status: int) -> dict:  # type: ignore[no-untyped-def]
    assert r.status_code == status, r.get_data(as_text=True)
    assert r.mimetype == "application/json"
    err = r.get_json()["error"]
    assert set(err) >= {"status", "code", "message"} and err["status"] == status
    return err


def test_upload_is_off_by_default(fake_client) -> None:
    assert fake_client.get("/upload").status_code == 404
    _is_error(fake_client.post("/upload/files", data={}), 404)
    _is_error(fake_client.get("/upload/status/1-1"), 404)
    assert "/upload" not in fake_client.get("/").get_data(as_text=True)
    assert fake_client.application.config["MAX_CONTENT_LENGTH"] == 64 * 1024


def test_an_uploaded_report_becomes_searchable_without_a_restart(upload_app) -> None:
    app, seeds = upload_app
    client = app.test_client()
    assert 'href="/upload"' in client.get("/").get_data(as_text=True)
    before = client.get("/api/search", query_string={"q": MARK, "mode": "bm25"}).get_json()["results"]
    assert not any(MARK in h["text"] for h in before)
    token = _token(client)
    r = _post(client, token, (_report(), "青稞坪区2023年法治政府建设报告.txt"), (b"\x00", "坏的.pdf"))
    assert r.status_code == 202, r.get_data(as_text=True)
    job = r.get_json()
    app.extensions["kb_uploads"].wait()
    st = client.get(job["status_url"]).get_json()
    assert st["state"] == "done", st
    assert [a["source"] for a in st["added"]] == ["青稞坪区2023年法治政府建设报告.txt"]
    assert len(st["errors"]) == 1 and st["errors"][0].startswith("坏的.pdf:")  # named, without the temp folder
    assert (seeds / "青稞坪区2023年法治政府建设报告.txt").read_bytes() == _report()
    client.get("/api/health")  # the next request sees the swapped version
    hits = client.get("/api/search", query_string={"q": MARK, "mode": "bm25"}).get_json()["results"]
    assert any(MARK in h["text"] for h in hits)
    page = client.get(f"/upload?job={job['job']}").get_data(as_text=True)
    assert "完成 done" in page and "青稞坪区2023年法治政府建设报告.txt" in page


def test_the_same_report_again_is_refused_per_file(upload_app) -> None:
    app, _ = upload_app
    client = app.test_client()
    r = _post(client, _token(client), ((SEEDS / "000_6c25788e2e4f38cc.txt").read_bytes(), "again.txt"))
    app.extensions["kb_uploads"].wait()
    st = client.get(r.get_json()["status_url"]).get_json()
    assert st["state"] == "failed" and not st["added"] and "already in" in st["errors"][0]


def test_a_post_without_the_token_is_refused(upload_app) -> None:
    app, seeds = upload_app
    client = app.test_client()
    err = _is_error(_post(client, None, (_report(), "x.txt")), 403)
    assert err["code"] == "csrf_failed"
    _token(client)  # a cookie, but a token made up
    _is_error(_post(client, "0" * 64, (_report(), "x.txt")), 403)
    other = app.test_client()  # a token of another browser (another cookie)
    _is_error(_post(other, _token(client), (_report(), "x.txt")), 403)
    assert not (seeds / "x.txt").exists()


def test_wrong_type_and_oversized_uploads_are_4xx_json(tmp_path: Path) -> None:
    app, seeds = _app(tmp_path, upload_max_mb=0.01)
    try:
        client = app.test_client()
        token = _token(client)
        err = _is_error(_post(client, token, (b"MZ\x90\x00", "setup.exe")), 415)
        assert err["code"] == "unsupported_media_type" and ".zip" in err["message"]
        err = _is_error(_post(client, token, (b"x" * 20_000, "big.txt")), 413)
        assert "0.01 MB limit" in err["message"]
        packed = io.BytesIO()
        with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("a.txt", "法" * 50_000)  # 150 KB unpacked, far beyond 4 × 0.01 MB
        err = _is_error(_post(client, token, (packed.getvalue(), "bomb.zip")), 413)
        assert "unpacks to" in err["message"]
        # a body larger than the request limit is refused before it is read
        _is_error(_post(client, token, (b"x" * 400_000, "bigger.txt")), 413)
        assert sorted(p.name for p in seeds.iterdir()) == sorted(p.name for p in sorted(SEEDS.glob("*.txt"))[:2])
        # other routes keep the small limit while upload is on
        _is_error(client.post("/api/search", data=b"x" * 100_000), 413)
    finally:
        app.extensions["kb"].close()


def test_a_name_with_path_parts_lands_inside_seeds(upload_app, tmp_path: Path) -> None:
    app, seeds = upload_app
    client = app.test_client()
    r = _post(client, _token(client), (_report("翻山越岭"), "../../逃逸报告.txt"))
    assert r.status_code == 202
    app.extensions["kb_uploads"].wait()
    assert client.get(r.get_json()["status_url"]).get_json()["state"] == "done"
    assert (seeds / "逃逸报告.txt").is_file()
    assert not (seeds.parent / "逃逸报告.txt").exists() and not (tmp_path.parent / "逃逸报告.txt").exists()


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("../../逃逸报告.txt", "逃逸报告.txt"),
        ("C:\\Users\\李\\报告.DOCX", "报告.docx"),
        ("/etc/passwd", "passwd"),
        ("..", "report"),
        (".hidden.txt", "hidden.txt"),
        ("a<b>:c?.pdf", "a_b__c_.pdf"),
        ("报告\x00.txt", "报告_.txt"),
        ("法" * 200 + ".pdf", "法" * 65 + ".pdf"),  # 65 × 3 + 4 bytes: within MAX_NAME_BYTES
    ],
)
def test_safe_name(raw: str, want: str) -> None:
    assert safe_name(raw) == want


def test_upload_on_a_public_host_needs_its_own_flag(tmp_path: Path) -> None:
    from web.serve import is_loopback, serve

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
    with pytest.raises(UsageError, match="--allow-remote-upload"):
        serve(tmp_path / "seeds", tmp_path / "index", HashEmbedder(), host="0.0.0.0", allow_upload=True)


def test_the_form_works_without_script(upload_app) -> None:
    app, _ = upload_app
    client = app.test_client()
    token = _token(client)
    r = client.post("/upload/files", data={"csrf_token": token, "files": [(io.BytesIO(_report("无脚本")), "无脚本.txt")]},
                    content_type="multipart/form-data")
    assert r.status_code == 303 and r.headers["Location"].startswith("/upload?job=")
    assert client.get(r.headers["Location"]).status_code == 200  # refreshes itself while the job runs
    app.extensions["kb_uploads"].wait()
    page = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "完成 done" in page and 'http-equiv="refresh"' not in page


def _exactly(size: int) -> bytes:
    """A report file of exactly `size` bytes: a report, more measures, blank lines to fill."""
    data = _report("尺寸正好")
    n = 0
    while len(data) + 200 < size:
        n += 1
        data += f"第{n}项举措已经完成，群众满意度持续提升。\n".encode()
    assert len(data) <= size
    return data + b"\n" * (size - len(data))


def test_an_upload_the_page_takes_is_never_refused_by_ingest_for_its_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kb.ingest import max_bytes
    from web.settings import Settings, upload_limit, upload_max_mb

    monkeypatch.setenv("KB_MAX_MB", "0.05")  # the reading limit: 52428 bytes
    limit = max_bytes()
    # one source of truth: the upload limit is the reading limit unless set lower, and never above it
    assert upload_limit(Settings()) == limit and upload_max_mb(Settings()) == 0.05
    assert upload_limit(Settings(upload_max_mb=1000)) == limit
    assert upload_limit(Settings(upload_max_mb=0.01)) == int(0.01 * 2**20) < limit
    app, seeds = _app(tmp_path, upload_max_mb=10)  # set above the reading limit: capped
    try:
        client = app.test_client()
        assert "up to 0.05 MB a file" in client.get("/upload").get_data(as_text=True)
        token = _token(client)
        err = _is_error(_post(client, token, (_exactly(limit + 1), "大了一点.txt")), 413)
        assert "0.05 MB limit" in err["message"]
        r = _post(client, token, (_exactly(limit), "正好.txt"))
        assert r.status_code == 202, r.get_data(as_text=True)
        app.extensions["kb_uploads"].wait()
        st = client.get(r.get_json()["status_url"]).get_json()
        assert st["state"] == "done" and not st["errors"], st
        assert [a["source"] for a in st["added"]] == ["正好.txt"] and (seeds / "正好.txt").stat().st_size == limit
    finally:
        app.extensions["kb"].close()


@pytest.mark.parametrize("value", ["abc", "0", "-3", "nan", "inf", "51", "1e9", ""])
def test_serve_refuses_a_bad_upload_limit_in_one_line(value: str, capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from kb.cli import main

    monkeypatch.delenv("KB_MAX_MB", raising=False)
    assert main(["serve", "--allow-upload", "--upload-max-mb", value]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("kb: error: --upload-max-mb ") and repr(value) in line
    assert "above 0 and at most 50" in line and "KB_MAX_MB" in line


def test_serve_takes_the_upload_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    import web.serve
    from kb.cli import main

    got: dict = {}
    monkeypatch.setattr(web.serve, "serve", lambda *a, **kw: got.update(kw) or 0)
    monkeypatch.setenv("KB_MODEL", "fake")
    monkeypatch.setenv("KB_MAX_MB", "100")
    assert main(["serve", "--allow-upload", "--max-upload-mb", "80"]) == 0 and got["upload_max_mb"] == 80.0
    assert main(["serve", "--allow-upload"]) == 0 and got["upload_max_mb"] is None  # the reading limit
