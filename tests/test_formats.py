"""Reports as users have them: a saved page, a PDF, a Word file, each indexed as its .txt twin is, and
the files that cannot be indexed each a clear one-line reason (fixtures: tests/data/formats/make_fixtures.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import GOLDEN
from test_golden import _compare

from kb.corpus import process_files, process_folder
from kb.errors import UsageError
from kb.ingest import IngestError, read_report

FORMATS = Path(__file__).resolve().parent / "data" / "formats"
TWIN = FORMATS / "twin.txt"
# every format of the twin report; each must come out as the twin does
COPIES = ["report.html", "report.pdf", "owner-password.pdf", "report.docx"]
# an old Word 97-2003 file (LibreOffice's MS Word 97 filter) of another report, and that report as text
DOC, DOC_TWIN = FORMATS / "report.doc", FORMATS / "twin-doc.txt"
DOC_TOOLS = ["antiword", "catdoc"]


def _tree(sections) -> list:  # type: ignore[no-untyped-def]
    return [(s.heading, s.kind, s.level, s.start, s.end, _tree(s.children)) for s in sections]


@pytest.mark.parametrize("name", COPIES)
def test_extracted_text_golden(name: str, update_goldens: bool) -> None:
    raw = read_report(FORMATS / name)
    _compare(GOLDEN / "formats" / f"{name}.txt", raw.text, update_goldens)


@pytest.mark.parametrize("name", COPIES)
def test_indexed_as_its_twin(name: str) -> None:
    _assert_indexed_as(FORMATS / name, TWIN)


def _assert_indexed_as(path: Path, twin_path: Path) -> None:
    (twin,) = process_files([twin_path]).items
    result = process_files([path])
    assert not result.errors
    (item,) = result.items
    got, want = item.report, twin.report
    fields = ("title", "locality", "level", "region", "province", "year", "published")
    assert {f: getattr(got, f) for f in fields} == {f: getattr(want, f) for f in fields}
    # the same cleaned text, so the same section tree (offsets included) and the same passages
    assert got.text == want.text
    assert _tree(got.sections) == _tree(want.sections)
    assert [(c.section_path, c.kind, c.text) for c in item.chunks] == [
        (c.section_path, c.kind, c.text) for c in twin.chunks
    ]


def test_saved_page_charset_title_and_date() -> None:
    raw = read_report(FORMATS / "report.html")
    assert (raw.format, raw.encoding) == ("html", "gbk")
    assert raw.title == "狮山镇2022年法治政府建设年度报告" and raw.published == "2023-02-10"
    for chrome in ("首页", "您当前的位置", "分享到", "打印本页", "相关链接", "粤ICP备", "扫一扫", "站长统计", "浏览次数", "_hmt"):
        assert chrome not in raw.text, chrome


def _reason(path: Path) -> str:
    with pytest.raises(IngestError) as exc:
        read_report(path)
    message = str(exc.value)
    assert str(path) in message and "\n" not in message
    return message


def test_printed_pdf_loses_its_running_header_and_page_numbers() -> None:
    raw = read_report(FORMATS / "report.pdf")
    assert raw.format == "pdf"
    # Chromium printed the date and the title atop each page, the file's address and "1/2" below
    assert raw.text.count("狮山镇2022年法治政府建设年度报告") == 1
    assert "file:" not in raw.text and "/2" not in raw.text and " PM" not in raw.text
    # a paragraph that runs onto the next page is one line again
    assert "完善人民调解、行政调解、司法调解联动工作体系" in raw.text


def test_scanned_pdf_needs_ocr() -> None:
    assert "needs OCR" in _reason(FORMATS / "scanned.pdf")


def test_pdf_with_a_user_password_is_a_clear_error() -> None:
    assert "password" in _reason(FORMATS / "user-password.pdf")


def test_size_limit_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KB_MAX_MB", "0.1")
    message = _reason(FORMATS / "report.pdf")
    assert "limit" in message and "KB_MAX_MB" in message
    monkeypatch.setenv("KB_MAX_MB", "5")
    assert read_report(FORMATS / "report.pdf").text
    for bad in ("abc", "0", "-1", "nan", "inf", "1025"):  # not a size, or a limit no report needs
        monkeypatch.setenv("KB_MAX_MB", bad)
        with pytest.raises(UsageError, match=f"KB_MAX_MB={bad!r}.*above 0 and at most 1024"):
            read_report(FORMATS / "report.pdf")


def test_docx_heading_numbers_come_from_word_numbering() -> None:
    import docx

    written = [p.text for p in docx.Document(str(FORMATS / "report.docx")).paragraphs]
    assert "主要举措和成效" in written and not any(t.startswith(("一、", "（一）")) for t in written)
    lines = read_report(FORMATS / "report.docx").text.splitlines()
    assert {"一、主要举措和成效", "三、2023年工作安排", "（三）推进行政复议和矛盾纠纷化解", "（二）着力提升基层执法能力"} <= set(lines)


@pytest.mark.parametrize(("n", "want"), [(1, "一"), (10, "十"), (12, "十二"), (20, "二十"), (35, "三十五"), (105, "一百零五"), (110, "一百一十")])
def test_chinese_counting(n: int, want: str) -> None:
    from kb.ingest.docx import chinese_number

    assert chinese_number(n) == want


OLE_DOC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504


def test_doc_without_antiword_or_catdoc_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = tmp_path / "old.doc"
    doc.write_bytes(OLE_DOC)
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    message = _reason(doc)
    assert "antiword" in message and "catdoc" in message and ".docx" in message


def test_doc_goes_through_antiword(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "antiword"
    # stands in for antiword: prints the twin's text, as antiword prints a document's paragraphs
    tool.write_text(f"#!/bin/sh\nexec /bin/cat '{TWIN}'\n", encoding="utf-8")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    doc = tmp_path / "old.doc"
    doc.write_bytes(OLE_DOC)
    raw = read_report(doc)
    assert (raw.format, raw.text) == ("doc", TWIN.read_text(encoding="utf-8"))


def _only_tool(tool: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """PATH holding the real `tool` alone, so that .doc goes through it and not the other one."""
    real = shutil.which(tool)
    if real is None:
        pytest.skip(f"{tool} is not installed (apt-get install {tool}; scripts/test installs it when run as root)")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / tool).symlink_to(real)
    monkeypatch.setenv("PATH", str(bin_dir))


@pytest.mark.parametrize("tool", DOC_TOOLS)
def test_doc_extracted_text_golden(tool: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   update_goldens: bool) -> None:
    # antiword and catdoc write the same lines (antiword adds blank ones, which read_doc drops): one golden
    _only_tool(tool, tmp_path, monkeypatch)
    raw = read_report(DOC)
    assert raw.format == "doc"
    _compare(GOLDEN / "formats" / "report.doc.txt", raw.text, update_goldens)
    lines = raw.text.splitlines()
    # the headings are typed in this file, not Word numbering: they come through as written
    assert {"一、主要工作和成效", "（三）夯实基层法治基础", "三、2024年工作打算", "（二）深化法治乡村建设"} <= set(lines)


@pytest.mark.parametrize("tool", DOC_TOOLS)
def test_doc_indexed_as_its_twin(tool: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _only_tool(tool, tmp_path, monkeypatch)
    _assert_indexed_as(DOC, DOC_TWIN)
    (item,) = process_files([DOC]).items
    assert [s.heading for s in item.report.sections] == ["一、主要工作和成效", "二、存在的不足", "三、2024年工作打算"]
    assert item.report.locality == "桐溪镇" and item.report.year == 2023


@pytest.mark.parametrize("tool", DOC_TOOLS)
def test_broken_doc_through_the_real_tool_is_a_clear_error(tool: str, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    _only_tool(tool, tmp_path, monkeypatch)
    broken = tmp_path / "broken.doc"
    broken.write_bytes(DOC.read_bytes()[:9000])  # an OLE header, and a file cut short
    message = _reason(broken)
    assert "could not be read" in message and tool in message


def test_page_of_links_only_is_a_clear_error() -> None:
    assert "no report text" in _reason(FORMATS / "nav-only.html")


def test_unknown_format_names_the_formats_that_work(tmp_path: Path) -> None:
    odd = tmp_path / "report.xlsx"
    odd.write_bytes(b"PK\x03\x04 not a report")
    message = _reason(odd)
    assert ".xlsx" in message and all(s in message for s in (".txt", ".html", ".pdf", ".docx", ".doc"))


def test_a_folder_reports_every_file_it_leaves_out(tmp_path: Path) -> None:
    for name in ("twin.txt", "report.html", "nav-only.html"):
        (tmp_path / name).write_bytes((FORMATS / name).read_bytes())
    (tmp_path / "notes.xlsx").write_bytes(b"PK\x03\x04")
    result = process_folder(tmp_path)
    assert sorted(it.report.source for it in result.items) == ["report.html", "twin.txt"]
    assert len(result.errors) == 2
    assert any("nav-only.html" in e for e in result.errors) and any("notes.xlsx" in e for e in result.errors)


BAD = {  # file → what its one-line reason says
    "scanned.pdf": "needs OCR",
    "user-password.pdf": "password",
    "nav-only.html": "no report text",
    "old.doc": "antiword",
    "big.pdf": "limit",
}


def _mixed_folder(folder: Path) -> Path:
    """The twin in every format, and one file of each kind that cannot be indexed."""
    folder.mkdir()
    # (names with different stems: a document's id is its file's stem)
    for name, src in [("page.html", "report.html"), ("printed.pdf", "report.pdf"), ("word.docx", "report.docx"),
                      *((n, n) for n in ("scanned.pdf", "user-password.pdf", "nav-only.html"))]:
        (folder / name).write_bytes((FORMATS / src).read_bytes())
    (folder / "old.doc").write_bytes(OLE_DOC)
    (folder / "big.pdf").write_bytes(b"%PDF-1.7\n" + b"0" * (2 * 2**20))
    return folder


def _cli_env(tmp_path: Path) -> dict[str, str]:
    import os

    from conftest import ROOT

    # no antiword or catdoc on this PATH, and a 1 MB size limit
    return dict(os.environ, PYTHONPATH=str(ROOT), KB_MODEL="fake", KB_MAX_MB="1", PATH=str(tmp_path / "bin-empty"))


def _kb(env: dict[str, str], *args: str):  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "kb.cli", *args], capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.slow  # `kb` processes
def test_build_apart_from_the_twins_reports_each_file_left_out(tmp_path: Path) -> None:
    import json

    seeds, index, env = _mixed_folder(tmp_path / "seeds"), tmp_path / "index", _cli_env(tmp_path)
    proc = _kb(env, "--seeds", str(seeds), "--index", str(index), "build", "--json", "--quiet")
    assert proc.returncode == 0, proc.stderr
    stats = json.loads(proc.stdout)
    # the PDF and the .docx clean to the page's text: one report, indexed once, the others named as copies
    assert stats["new"] == ["page.html"]
    skipped = [ln for ln in proc.stderr.splitlines() if ln.startswith("kb: skipped ")]
    assert len(skipped) == 2 + len(BAD)
    assert sum("the same report as page.html" in ln for ln in skipped) == 2
    for name, reason in BAD.items():
        (line,) = [ln for ln in skipped if f"/{name}: " in ln]
        assert reason in line
    proc = _kb(env, "--seeds", str(seeds), "docs", "--skipped", "--json")
    assert proc.returncode == 0, proc.stderr
    listed = {r["file"]: r["reason"] for r in json.loads(proc.stdout)}
    assert set(listed) == set(BAD) and all(BAD[f] in listed[f] for f in BAD)
    # `kb docs` processes each file on its own: every format is a document there, with the same facts
    docs = json.loads(_kb(env, "--seeds", str(seeds), "docs", "--json").stdout)
    assert isinstance(docs, list) and {d["source"] for d in docs} == {"page.html", "printed.pdf", "word.docx"}
    assert {(d["locality"], d["year"], d["published"]) for d in docs} == {("狮山镇", 2022, "2023-02-10")}
    from kb.store import open_index

    with open_index(index, expected_model_id=None, verify="sizes") as reader:
        recorded = {r["file"] for r in reader.manifest["build_info"]["skipped"]}
    assert set(BAD) <= recorded


@pytest.mark.slow
def test_add_indexes_what_it_can_read_and_exits_1(tmp_path: Path) -> None:
    seeds, index, env = tmp_path / "seeds", tmp_path / "index", _cli_env(tmp_path)
    seeds.mkdir()
    bad = _mixed_folder(tmp_path / "incoming")
    proc = _kb(env, "--seeds", str(seeds), "--index", str(index), "add", "--quiet",
               str(FORMATS / "report.docx"), str(bad / "scanned.pdf"), str(bad / "old.doc"))
    assert proc.returncode == 1, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("kb: error: ")]
    assert len(errors) == 2 and "needs OCR" in errors[0] and "antiword" in errors[1]
    assert sorted(p.name for p in seeds.iterdir()) == ["report.docx"]
    # a file that does not exist is still a usage error
    proc = _kb(env, "--seeds", str(seeds), "--index", str(index), "add", str(tmp_path / "missing.pdf"))
    assert proc.returncode == 2 and "no such file" in proc.stderr


def test_health_lists_the_skipped_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kb.build import build
    from kb.embed import HashEmbedder
    from web import create_app

    monkeypatch.setenv("KB_MAX_MB", "1")
    seeds, index = _mixed_folder(tmp_path / "seeds"), tmp_path / "index"
    build(seeds, index, HashEmbedder(), progress=False)
    app = create_app({"index": index, "model": "fake"})
    try:
        health = app.test_client().get("/api/health").get_json()
    finally:
        app.extensions["kb"].close()
    listed = {r["file"]: r["reason"] for r in health["skipped"]}
    assert {"scanned.pdf", "nav-only.html", "big.pdf"} <= set(listed) and "needs OCR" in listed["scanned.pdf"]


def _search_answers(folder: Path, index: Path, query: str) -> list[tuple]:  # type: ignore[type-arg]
    from kb.build import build
    from kb.embed import get_embedder
    from kb.search import Searcher
    from kb.store import open_index

    embedder = get_embedder("fake")
    build(folder, index, embedder, progress=False)
    with open_index(index, expected_model_id=None) as reader:
        out = Searcher(reader, embedder).search(query, k=10)
    # everything a user reads of a result, except which file it came from
    return [(r["locality"], r["year"], r["title"], r["section_path"], r["kind"], r["text"], r["highlights"], round(r["score"], 5))
            for r in out["results"]]


@pytest.mark.parametrize("name", ["report.html", "report.pdf", "report.docx"])
def test_a_format_built_apart_from_its_twin_answers_a_query_as_the_twin_does(name: str, tmp_path: Path) -> None:
    answers = {}
    for label, source in (("twin", TWIN), ("format", FORMATS / name)):
        folder = tmp_path / label / "seeds"
        folder.mkdir(parents=True)
        shutil.copy(source, folder / source.name)
        answers[label] = _search_answers(folder, tmp_path / label / "index", "行政复议 法律顾问")
    assert answers["twin"] and answers["format"] == answers["twin"]
