"""kb eval's measures on hand-made search answers: recall, shown (the UI's first page), metadata accuracy."""

from __future__ import annotations

from typing import Any

from kb.evaluate import evaluate, evaluate_meta, evaluate_offtopic


def _passage(source: str, text: str) -> dict[str, Any]:
    return {"source": source, "text": text}


def test_shown_counts_only_passages_on_the_listed_locality_cards() -> None:
    found = _passage("a1.txt", "全镇推行行政复议应诉")
    other = _passage("b2.txt", "开展普法宣传")
    answer = {"results": [other, found], "by_locality": [{"locality": "乙镇", "results": [other]}]}
    q = {"id": "q", "kind": "zh", "q": "行政复议", "rel": [["a1", "行政复议应诉"]]}
    report = evaluate([q], lambda _q, _k: answer)
    row = report["queries"][0]
    assert row["recall@5"] == 1.0 and row["rr"] == 0.5
    assert row["shown"] == 0.0  # ranked, but its locality's card is not listed
    assert row["localities"] == 1 and row["listed_without_judged"] == 1
    answer["by_locality"].append({"locality": "甲镇", "results": [found]})
    assert evaluate([q], lambda _q, _k: answer)["overall"]["shown"] == 1.0


def test_offtopic_counts_listed_localities() -> None:
    answers = {"a": {"by_locality": []}, "b": {"by_locality": [{"locality": "x"}, {"locality": "y"}]}}
    out = evaluate_offtopic(["a", "b"], lambda q, _k: answers[q])
    assert (out["max"], out["over_one"], out["mean"]) == (2, 1, 1.0)


def test_meta_accuracy_lists_every_miss_and_counts_unverified_as_wrong() -> None:
    expected = {"d1_": {"locality": "甲镇", "year": 2024}, "d2_": {"locality": None, "year": 2023},
                "d3_": {"locality": "丙街道", "year": 2022}, "d4_": {"locality": "丁乡", "year": 2021}}
    docs = [
        {"source": "d1_x.txt", "locality": "甲镇", "year": 2024},
        {"source": "d2_x.txt", "locality": None, "year": 2022},
        {"source": "d3_x.txt", "locality": "丙街道", "locality_status": "unverified", "year": 2022},
    ]
    out = evaluate_meta(expected, docs)
    assert (out["locality_right"], out["year_right"], out["reports"]) == (2, 2, 3)
    missed = {(m["source"], m["field"]) for m in out["misses"]}
    assert missed == {("d2_x.txt", "year"), ("d3_x.txt", "locality"), ("d4_", "report")}


def test_an_empty_queries_file_is_a_usage_error(tmp_path) -> None:
    import pytest

    from kb.errors import UsageError
    from kb.evaluate import load_queries

    (tmp_path / "q.jsonl").write_text("\n\n", encoding="utf-8")
    with pytest.raises(UsageError, match="holds no judged queries"):
        load_queries(tmp_path / "q.jsonl")


def test_judged_cards_count_what_the_first_page_shows(tmp_path) -> None:
    import pytest

    from kb.errors import UsageError
    from kb.evaluate import format_report, load_cards

    path = tmp_path / "cards.jsonl"
    path.write_text('{"id": "q", "locality": "甲镇", "verdict": 2}\n{"id": "q", "locality": "乙镇", "verdict": 0}\n'
                    '{"id": "other", "locality": "丙镇", "verdict": 1}\n', encoding="utf-8")
    cards = load_cards(str(path))
    card = {"results": [_passage("a1.txt", "行政复议")]}
    answer = {"results": card["results"],
              "by_locality": [card | {"locality": name} for name in ("甲镇", "乙镇", "丙镇")]}
    q = {"id": "q", "kind": "zh", "q": "行政复议", "rel": [["a1", "行政复议"]]}
    report = evaluate([q], lambda _q, _k: answer, cards)
    assert report["cards"] == {"answer": 1, "not": 1, "unjudged": 1}  # 丙镇 was judged for another query
    assert "1 answer the query, 1 do not, 1 not judged" in format_report(report)
    assert "cards" not in evaluate([q], lambda _q, _k: answer)
    path.write_text('{"id": "q", "locality": "甲镇", "verdict": "yes"}\n', encoding="utf-8")
    with pytest.raises(UsageError, match=r"cards.jsonl:1: verdict 'yes' is not one of 0, 1, 2"):
        load_cards(str(path))
