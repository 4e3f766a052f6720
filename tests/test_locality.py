"""Locality and year from the official table of divisions, on short reports written for these tests."""

from __future__ import annotations

import pytest

from kb.clean import clean
from kb.gazetteer import load, short_forms
from kb.locality import find_locality
from kb.meta import find_year, infer_meta


def _meta(raw: str):
    c = clean(raw)
    return infer_meta(c.text, c.header)


def test_a_name_in_several_places_is_resolved_by_the_parents_the_text_names() -> None:
    assert len(load().lookup("清溪镇")) > 3
    sichuan = _meta("2024年,在犍为县委、县政府的领导下,清溪镇扎实推进法治政府建设。我镇全年开展普法活动12场。")
    assert (sichuan.locality, sichuan.province, sichuan.place.status) == ("清溪镇", "四川省", "verified")
    assert sichuan.place.chain == ("四川省", "乐山市", "犍为县", "清溪镇")
    assert sichuan.place.code and sichuan.place.code.startswith("5111")
    hunan = _meta("2024年,清溪镇在韶山市委、市政府的领导下推进依法行政。我镇完成行政执法案卷评查。")
    assert hunan.province == "湖南省"


def test_a_name_no_parent_tells_apart_is_ambiguous_not_guessed() -> None:
    m = _meta("2023年,清溪镇坚持以习近平法治思想为指导,全面推进依法行政。我镇调处矛盾纠纷30件。")
    assert (m.locality, m.level, m.place.status, m.place.code, m.place.chain) == (
        "清溪镇", "town", "ambiguous", None, ())


def test_an_ambiguous_name_keeps_the_places_all_its_candidates_share() -> None:
    # 四川省 has two 清溪镇 (乐山市 犍为县, 达州市 大竹县): the province is known, the city is not
    m = _meta("2023年,四川省清溪镇坚持以习近平法治思想为指导,全面推进依法行政。我镇调处矛盾纠纷30件。")
    assert (m.place.status, m.place.code, m.place.chain) == ("ambiguous", None, ("四川省", "清溪镇"))


@pytest.mark.parametrize(
    ("raw", "chain"),
    [
        # 双山子镇 is in 青龙满族自治县 and in 宽甸满族自治县: reports write 宽甸县, never the official name
        ("2023年,在宽甸县委、县政府的领导下,双山子镇全面推进依法行政。我镇调处矛盾纠纷18件。",
         ("辽宁省", "丹东市", "宽甸满族自治县", "双山子镇")),
        # 威州镇 is in 井陉县 and in 阿坝藏族羌族自治州: 阿坝州 is how a report names the prefecture
        ("2024年,威州镇在阿坝州委、州政府的领导下推进法治政府建设。我镇开展普法宣传20场。",
         ("四川省", "阿坝藏族羌族自治州", "汶川县", "威州镇")),
    ],
)
def test_a_parent_written_in_its_short_form_resolves_a_shared_name(raw: str, chain: tuple[str, ...]) -> None:
    assert len(load().lookup(chain[-1])) > 1
    m = _meta(raw)
    assert (m.place.status, m.place.chain, m.province) == ("verified", chain, chain[0])


def test_a_metadata_block_with_glued_labels_gives_its_issuer_and_date_not_text() -> None:
    page = "\n".join(["- 乡镇信息公开", "-", "索引号qlxx/2026-00001", "-", "发布机构宽甸县双山子镇人民政府", "-", "文号",
                      "-", "发布日期2026-01-27", "-", "时效性有效", "双山子镇2025年法治政府建设工作情况报告",
                      "县委全面依法治县委员会办公室:", "2025年,双山子镇坚持依法行政。"])
    c = clean(page)
    assert c.text == "县委全面依法治县委员会办公室:\n2025年,双山子镇坚持依法行政。"
    assert c.header.place_lines == ["宽甸县双山子镇人民政府"] and c.header.dates == ["2026-01-27"]
    m = infer_meta(c.text, c.header)
    assert (m.place.chain[-2:], m.year, m.published) == (("宽甸满族自治县", "双山子镇"), 2025, "2026-01-27")


def test_an_unknown_county_is_no_place_rather_than_chongqing() -> None:
    # cpca answers 重庆市 for any "…县" it does not know (its placeholder city 县); that names no place
    from kb.meta import resolve_admin

    assert resolve_admin("某某县") == (None, None, None)
    assert resolve_admin("城口县")[0] == "重庆市"


def test_short_forms_are_resolved_to_the_official_name() -> None:
    assert "景宁县" in short_forms("景宁畲族自治县", 3)
    county = _meta("2022年,我县坚持依法行政。景宁县在丽水市委、市政府领导下完成各项任务。全县开展普法宣传。")
    assert (county.locality, county.place.official, county.level) == ("景宁县", "景宁畲族自治县", "county")
    street = _meta("2024年,东城街在东莞市委、市政府的领导下推进法治建设。本街道全年办理行政复议案件3件。")
    assert street.locality == "东城街" and street.place.official == "东城街道"
    assert street.place.chain == ("广东省", "东莞市", "东城街道") and street.level == "subdistrict"


def test_a_town_report_addressed_to_its_county_is_about_the_town() -> None:
    m = _meta("县委、县政府:\n2023年,永兴镇在县委县政府的坚强领导下扎实推进法治政府建设,现报告如下:\n"
              "一、主要做法\n我镇成立法治建设领导小组。镇党委书记履行第一责任人职责。\n")
    assert m.level == "town" and m.locality == "永兴镇"


def test_a_district_report_that_lists_its_towns_is_about_the_district() -> None:
    text = ("2024年,浔阳区坚持以习近平法治思想为指导,全面推进法治政府建设。我区各街道、乡镇共建成公共法律服务站点"
            "32个,其中白水湖街道、湓浦街道、人民路街道各5个。全区行政复议案件办结率100%。我区持续深化综合执法改革。")
    m = _meta(text)
    assert (m.locality, m.level, m.province) == ("浔阳区", "district", "江西省")


def test_the_longest_official_name_wins_over_its_tail() -> None:
    place = find_locality("中梁山街道坚持依法行政,本街道全年无行政败诉案件。")
    assert place.written == "中梁山街道" and place.status == "verified"


def test_a_report_that_never_names_itself_has_no_locality() -> None:
    m = _meta("2022年以来,我镇认真贯彻上级部署,全面推进依法行政。我镇全年调解纠纷40件,普法宣传20场。")
    assert m.locality is None and m.level == "unknown" and m.place.status == "unnamed"


def test_a_title_name_the_table_does_not_know_is_flagged_unverified() -> None:
    m = _meta("示例湾镇2023年法治政府建设年度报告\n2023年,我镇坚持依法行政,全面推进法治政府建设工作。\n")
    assert m.locality == "示例湾镇" and m.place.status == "unverified"


@pytest.mark.parametrize(
    ("text", "year"),
    [
        ("今天是2019年5月3日 星期五\n今年以来,我镇按照《2023年度法治政府建设工作要点》推进工作。", 2023),
        ("今年以来,我街道贯彻《法治政府建设实施纲要(2021—2025年)》,落实《区2022年度法治政府建设工作方案》。"
         "对照纲要(2021-2025年)要求完成任务。", 2022),
        # the sentence that says which year is reported on outweighs the years the opening cites
        ("在上级的领导下,我镇在2023年工作基础上稳步提升,2023年度考核优秀。现将我镇2024年法治政府建设情况报告如下。"
         "一、压实责任。全镇完成2023年度遗留任务。", 2024),
    ],
)
def test_the_year_comes_from_the_report_not_page_dates_or_outline_spans(text: str, year: int) -> None:
    assert find_year(text, None, None) == year


def test_a_town_the_table_lacks_is_not_replaced_by_its_county() -> None:
    # 新晖镇 is not a division; the report speaks as a town, so its county (房县) is not the answer
    m = _meta("2023年,新晖镇坚持以习近平法治思想为指导,我镇推进依法行政。房县县委要求全镇落实。我镇开展普法20场。")
    assert (m.locality, m.level, m.place.status) == ("新晖镇", "town", "unverified")
    m = _meta("2022年以来,我镇认真贯彻上级部署,紧密结合镇情推进依法行政。房县县委要求。我镇调解纠纷40件。")
    assert m.locality is None and m.place.status == "unnamed"


def test_the_scan_is_bounded_on_a_huge_report(monkeypatch: pytest.MonkeyPatch) -> None:
    import kb.locality as loc

    seen: list[int] = []
    real = loc._mentions
    monkeypatch.setattr(loc, "_mentions", lambda g, text: seen.append(len(text)) or real(g, text))
    body = "2024年,清溪镇在东莞市委领导下推进依法行政。" + "我镇开展普法宣传活动,调解矛盾纠纷。" * 200_000
    place = loc.find_locality(body)
    assert place.written == "清溪镇" and place.chain[1] == "东莞市"
    assert max(seen) <= loc.SCAN_CHARS  # the work does not grow with the report


def test_a_subdistrict_that_speaks_as_街道_without_its_name_is_not_its_county() -> None:
    # "街道按照《房县…》": the report is a subdistrict's, which it never names; 房县 is only its county
    m = _meta("为进一步加强法治政府建设,2021年来,街道按照《房县法治政府建设实施方案》的要求,创建全县法治文明辖区。"
              "现将2021年工作情况报告如下。")
    assert m.locality is None and m.place.status == "unnamed"
