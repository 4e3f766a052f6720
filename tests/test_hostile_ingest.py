"""Hostile report files: invisible and control characters, an HTML page saved as .txt, junk that is no report."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from kb.corpus import process_file

BODY = "一、主要成效\n{town}今年开展普法宣传活动二十场，调解矛盾纠纷六十件。\n二、存在问题\n基层法治力量薄弱。\n"
INVISIBLE = "\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff"


def _write(folder: Path, name: str, text: str | bytes) -> Path:
    path = folder / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def test_bidi_overrides_and_zero_width_characters_leave_titles_and_text(tmp_path: Path) -> None:
    # the finding's title: an RLO reverses the rest of a table cell; a zero-width space split 法治 in two
    title = "\u202e北湖镇\u200b2024年法治政府建设年度报告\u200d"
    body = BODY.format(town="北\u200b湖\u2066镇") + "".join(f"法{c}治" for c in INVISIBLE) + "。\n"
    report = process_file(_write(tmp_path, "bidi.txt", title + "\n" + body)).report
    assert report.title == "北湖镇2024年法治政府建设年度报告" and report.locality == "北湖镇"
    for field in (report.title, report.headline or "", report.text):
        assert not set(field) & set(INVISIBLE), field
    assert "北湖镇今年开展" in report.text and "法治" * len(INVISIBLE) in report.text
    assert Counter(r.kind for r in report.repairs)["invisible"] == 3 + 2 + len(INVISIBLE)


def test_nul_and_control_characters_are_removed_and_counted(tmp_path: Path) -> None:
    # past the first 4 KB, where NULs do not make the file look binary (the finding's file: 5 NULs, kept)
    lead = "东湖镇2024年法治政府建设年度报告\n" + "".join(f"第{i}项工作按计划推进。\n" for i in range(200))
    text = lead + BODY.format(town="东\x00湖镇") + "基层\x00\x00法治\x07力量\x1b薄弱\x00。\n"
    page_break = "第一页完。\x0c第二页开始，继续加强法治宣传。\x0b\r\n"
    report = process_file(_write(tmp_path, "nul.txt", text + page_break)).report
    assert not [c for c in report.text if ord(c) < 32 and c not in "\n\t"]
    assert "东湖镇今年开展" in report.text and "基层法治力量薄弱。" in report.text
    assert "第一页完。\n第二页开始" in report.text  # a form feed ends a line: the words either side stay apart
    assert Counter(r.kind for r in report.repairs)["invisible"] == 7
    assert report.raw_text.count("\x00") == 4  # the text as scraped keeps them: /doc/<id>/raw shows what was read


PROSE = "".join(f"<p>网页镇第{i}项法治工作：开展普法宣传活动，调解矛盾纠纷，推进依法行政。</p>" for i in range(8))


@pytest.mark.parametrize("page", [
    # the finding's file: a page saved from the browser as .txt
    f"<html><body><script>alert(1)</script><h1>网页镇2024年法治政府建设年度报告</h1>{PROSE}</body></html>",
    f"\ufeff\n<!-- saved from url=(0041)http://example.gov.cn/ -->\n<!DOCTYPE html>\n<html lang=zh><head><meta charset=utf-8>"
    f"<title>网页镇2024年法治政府建设年度报告_网页镇人民政府</title><style>p{{color:red}}</style></head>"
    f"<body><nav><a href=/>首页</a></nav><h1>网页镇2024年法治政府建设年度报告</h1>{PROSE}</body></html>",
])
def test_a_web_page_saved_as_txt_is_read_as_a_page(tmp_path: Path, page: str) -> None:
    report = process_file(_write(tmp_path, "网页镇.txt", page)).report
    assert report.title == "网页镇2024年法治政府建设年度报告" and report.locality == "网页镇"
    for field in (report.title, report.headline or "", report.text):
        assert "<" not in field and "alert(1)" not in field and "color:red" not in field, field
    assert "网页镇第7项法治工作" in report.text


def test_a_text_report_that_mentions_tags_is_still_text(tmp_path: Path) -> None:
    text = "东湖镇2024年法治政府建设年度报告\n" + BODY.format(town="东湖镇") + "网站改版，<html>页面统一使用新模板。\n"
    report = process_file(_write(tmp_path, "tags.txt", text)).report
    assert "<html>页面统一使用新模板" in report.text and report.encoding == "utf-8"


HEADINGS = "".join(f"{n}、第{i}部分工作情况\n(一)主要做法\n(二)取得成效\n" for i, n in enumerate("一二三四五六七八九十" * 25))


@pytest.mark.parametrize(("content", "reason"), [
    ("法", "only 1 Chinese character,"),  # the finding's 3-byte file
    ("某某镇2024年法治政府建设年度报告\n", "only 14 Chinese characters"),
    ("report 2024: see the attached file, 法治.\n", "only 2 Chinese characters"),
    (HEADINGS, "not one sentence (only headings or a list)"),  # the finding's 253 chunks of headings
])
def test_junk_is_refused_with_one_line_and_listed_as_skipped(tmp_path: Path, content: str, reason: str) -> None:
    from kb.build import build
    from kb.embed import HashEmbedder
    from kb.errors import IngestError

    seeds = tmp_path / "seeds"
    seeds.mkdir()
    with pytest.raises(IngestError, match="not a report") as exc:
        process_file(_write(seeds, "junk.txt", content))
    assert reason in str(exc.value) and "\n" not in str(exc.value)
    _write(seeds, "good.txt", "东湖镇2024年法治政府建设年度报告\n" + BODY.format(town="东湖镇"))
    stats = build(seeds, tmp_path / "index", HashEmbedder(), progress=False)
    assert stats.documents == 1 and stats.skipped_files == ["junk.txt"] and reason in stats.skipped[0]


def test_the_shortest_reports_are_still_reports(tmp_path: Path) -> None:
    # a title and one sentence: the least a report can be (23 Chinese characters, the sentence ends in ASCII)
    report = process_file(_write(tmp_path, "short.txt", "某某镇2024年法治政府建设年度报告\n全年调解纠纷六十件;\n")).report
    assert report.locality == "某某镇"
