"""Ingestion and metadata: the seeds' expected facts, and reports in other encodings the code has never seen."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import UNSEEN

from kb.corpus import process_files, process_folder
from kb.ingest import IngestError, decode_bytes, read_report

SEED_FACTS = {
    "000": ("阜沙镇", "town", "中山市", 2023, None),
    "001": ("荷塘镇", "town", "江门市蓬江区", 2019, None),
    "002": ("清溪镇", "town", "东莞市", 2021, "2022-01-21"),
    "003": ("平桥区", "district", "信阳市", 2024, "2025-02-21"),
    "004": ("龙祥街道", "subdistrict", "汕头市龙湖区", 2023, "2024-01-29"),
}


@pytest.mark.parametrize("key", sorted(SEED_FACTS))
def test_seed_metadata(key: str, seed_items) -> None:
    r = seed_items[key].report
    assert (r.locality, r.level, r.region, r.year, r.published) == SEED_FACTS[key]
    assert r.title and str(r.year) in r.title


UNSEEN_FACTS = {
    # file: (encoding family, locality, level, region, province, year, published)
    "county_gb18030": ("gb18030", "宁陵县", "county", "商丘市", "河南省", 2022, "2023-02-15"),
    # 三里屯街道 is in 朝阳区, which the text names: of the table's two 三里屯街道, Beijing's
    "subdistrict_big5": ("big5", "三里屯街道", "subdistrict", "朝阳区", "北京市", 2020, None),
    # the table has one 龙泉乡 (its 18 namesakes are 龙泉镇)
    "township_utf16": ("utf-16", "龙泉乡", "township", "兰州市榆中县", "甘肃省", 2021, None),
}


def test_unseen_reports_in_other_encodings() -> None:
    result = process_folder(UNSEEN)
    assert not result.errors
    got = {it.report.doc_id: it.report for it in result.items}
    for doc_id, (enc, loc, level, region, province, year, published) in UNSEEN_FACTS.items():
        r = got[doc_id]
        assert r.encoding.replace("_", "-").startswith(enc), (doc_id, r.encoding)
        assert (r.locality, r.level, r.region, r.province, r.year, r.published) == (
            loc, level, region, province, year, published,
        ), doc_id
    assert "打印本页" not in got["county_gb18030"].text and "浏览次数" not in got["county_gb18030"].text
    assert "(xiāng)" not in got["township_utf16"].text


def test_unknown_locality_and_year_still_index(tmp_path: Path) -> None:
    p = tmp_path / "vague.txt"
    p.write_text("加强法治建设。\n一、主要做法\n开展普法宣传活动,提高群众法治意识。\n", encoding="utf-8")
    result = process_files([p])
    (item,) = result.items
    assert item.report.locality is None and item.report.level == "unknown" and item.report.year is None
    assert item.chunks and item.report.title


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"   \n\n", "empty"),
        (bytes(range(256)) * 20, "binary"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "binary"),
        (b"just some english text without any chinese", "no Chinese"),
    ],
)
def test_unusable_files_get_a_clear_error(tmp_path: Path, data: bytes, reason: str) -> None:
    p = tmp_path / "bad.txt"
    p.write_bytes(data)
    with pytest.raises(IngestError) as exc:
        read_report(p)
    assert str(p) in str(exc.value) and reason in str(exc.value)


def test_bad_file_does_not_stop_the_others(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(b"")
    good = tmp_path / "b.txt"
    good.write_text("2022年,某某镇推进法治建设。\n一、主要做法\n开展普法宣传。\n", encoding="utf-8")
    result = process_folder(tmp_path)
    assert [it.report.doc_id for it in result.items] == ["b"]
    assert len(result.errors) == 1 and "a.txt" in result.errors[0]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "gb18030"])
def test_decode_round_trip(encoding: str) -> None:
    # a sentence among the headings: text of headings only is refused as no report (tests/test_hostile_ingest.py)
    text = "清溪镇2021年法治政府建设年度报告\n一、加强党对法治建设的领导\n全年开展普法宣传二十场。\n" * 3
    decoded, _ = decode_bytes(text.encode(encoding), "x")
    assert decoded == text
