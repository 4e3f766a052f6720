"""Cost bounds on generated worst cases, counted in calls and passes rather than timed."""

from __future__ import annotations

import collections
import hashlib
from pathlib import Path

import pytest

QMARK_LINE = "我?深入推?法治政府建?，?展行政复??范化工作，完善法律??制度，加?普法宣?教育。"


def _count_calls(monkeypatch: pytest.MonkeyPatch, module: object, name: str) -> collections.Counter:
    calls: collections.Counter = collections.Counter()
    orig = getattr(module, name)

    def counted(*a: object, **k: object) -> object:
        calls[name] += 1
        return orig(*a, **k)

    monkeypatch.setattr(module, name, counted)
    return calls


def test_cleaning_lost_character_marks_is_linear_and_bounded_per_mark(monkeypatch: pytest.MonkeyPatch) -> None:
    from kb.clean import clean, lexicon

    calls = _count_calls(monkeypatch, lexicon, "context_score")
    counts = []
    for n in (1, 2, 4):
        calls.clear()
        clean(QMARK_LINE * n)
        counts.append(calls["context_score"])
    marks = QMARK_LINE.count("?")
    # 77de572 made 1,167,101 dictionary look-ups for the one line (about 1 s of cleaning per mark)
    assert counts[0] <= 2_000 * marks, counts
    assert counts[2] <= 4.4 * counts[0], counts


def test_kb_add_cleans_only_the_new_report(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from kb import add as add_mod
    from kb import corpus
    from kb.build import build
    from kb.embed import HashEmbedder

    seeds, index = tmp_path / "seeds", tmp_path / "index"
    seeds.mkdir()
    for i in range(12):
        (seeds / f"r{i:02d}.txt").write_text(f"某{i}镇{2000 + i}年法治政府建设年度报告\n一、主要成效\n开展普法宣传{i}次。\n", "utf-8")
    build(seeds, index, HashEmbedder(), progress=False)
    calls = _count_calls(monkeypatch, corpus, "clean")
    (tmp_path / "new.txt").write_text("新镇2025年法治政府建设年度报告\n一、主要成效\n开展普法宣传。\n", "utf-8")
    add_mod.add_reports([tmp_path / "new.txt"], seeds, index)
    assert calls["clean"] == 1  # 77de572 cleaned every existing report again: 13 here, 1,001 with 1,000 reports


def test_repeated_passages_get_their_ids_by_counting(monkeypatch: pytest.MonkeyPatch) -> None:
    from kb.chunk import chunk_report
    from kb.segment import segment

    text = "一、主要成效\n" + "\n".join(["开展普法宣传活动二十场，调解矛盾纠纷六十件，法治政府建设取得新进展。" * 6] * 400)
    digests = _count_calls(monkeypatch, hashlib, "sha1")
    chunks = chunk_report("d", text, segment(text))
    ids = [c.chunk_id for c in chunks]
    assert len(ids) == len(set(ids)) >= 400 and digests["sha1"] == len(chunks)
    copies = collections.Counter(i.split("-")[0] for i in ids)
    assert max(copies.values()) >= 100  # the worst case: one passage repeated, each copy numbered by its count
    top = copies.most_common(1)[0][0]
    assert [i for i in ids if i.startswith(top)][-1] == f"{top}-{copies[top]}"
