"""The benchmark corpus generator: passages of recombined sentences, tokens and vectors composed per sentence."""

from __future__ import annotations

import numpy as np
import pytest

from bench import corpus
from kb import tokens
from kb.model import Chunk, Report

SENTENCES = [
    "镇司法所全年受理法律援助案件一百二十件,为群众挽回经济损失三百万元。",
    "建立健全行政复议应诉工作机制,行政机关负责人出庭应诉率达到百分之百;",
    "持续深化综合行政执法改革,全面推行行政执法公示制度、执法全过程记录制度。",
    "组织开展宪法宣传周活动十二场,发放普法资料五千余份；",
    "依法治镇工作领导小组定期研究法治政府建设重大问题。",
    "基层干部运用法治思维和法治方式解决问题的能力仍有待提高。",
    "部分执法人员业务能力不强,执法规范化水平有待提升。",
    "下一步将继续加强府院联动,推动行政争议实质性化解。",
    "强化政府法律顾问作用,重大行政决策合法性审查率达到百分之百。",
]
KINDS = ["achievements"] * 5 + ["problems"] * 2 + ["plans"] * 2


def _material() -> corpus.Material:
    return corpus.Material(
        list(SENTENCES),
        list(KINDS),
        {"achievements": [("一、主要举措和成效", "(一)行政复议"), ()], "problems": [("二、存在的问题",)]},
    )


def test_extract_material_keeps_whole_sentences_with_their_kind():
    text = "一、主要举措和成效\n" + SENTENCES[0] + SENTENCES[1] + "\n二、存在的问题\n" + SENTENCES[5] + "短句。"
    a = text.index(SENTENCES[0])
    b = text.index("二、")
    report = Report("d", "d.txt", "x", "utf-8", text, text, "t", None, "某镇", "town", None, None, 2023, None)
    chunks = [
        Chunk("d:1", "d", 0, ["一、主要举措和成效"], "achievements", a, b - 1, text[a : b - 1]),
        Chunk("d:2", "d", 1, ["二、存在的问题"], "problems", b, len(text), text[b:]),
    ]

    class Item:
        pass

    item = Item()
    item.report, item.chunks = report, chunks  # type: ignore[attr-defined]
    m = corpus.extract_material([item])
    assert m.sentences == [SENTENCES[0], SENTENCES[1], SENTENCES[5]]  # headings and the fragment 短句。 dropped
    assert m.kinds == ["achievements", "achievements", "problems"]
    assert m.paths["problems"] == [("二、存在的问题",)]


def test_generate_is_deterministic_and_well_formed():
    m = _material()
    c = corpus.generate(m, 300, seed=3, passages_per_report=(20, 30), years_per_locality=2)
    again = corpus.generate(m, 300, seed=3, passages_per_report=(20, 30), years_per_locality=2)
    assert [x.text for x in c.chunks] == [x.text for x in again.chunks]
    assert len(c.chunks) == 300 and len(c.indptr) == 301
    assert len({x.chunk_id for x in c.chunks}) == 300
    docs = {r.doc_id: r for r in c.reports}
    assert sum(len(r.sections) > 0 for r in c.reports) == len(c.reports)
    for i, ch in enumerate(c.chunks):
        assert 150 <= len(ch.text) <= 400
        assert ch.text == "".join(m.sentences[s] for s in c.chunk_sentences(i))
        assert docs[ch.doc_id].text[ch.start : ch.end] == ch.text
        assert tuple(ch.section_path) == c.paths[c.path_ids[i]]
    assert c.localities >= 2 and len({r.locality for r in c.reports}) == c.localities
    assert all(r.year in corpus.YEARS for r in c.reports)
    # a locality reports once per year
    pairs = [(r.locality, r.year) for r in c.reports]
    assert len(pairs) == len(set(pairs))


def test_composed_tokens_equal_tokenizing_each_passage():
    m = _material()
    c = corpus.generate(m, 40, seed=1)
    st = tokens.tokenize_many(m.sentences)
    pt = [tokens.tokenize(" › ".join(p) + "\n") if p else [] for p in c.paths]
    assert corpus.compose_tokens(c, st, pt) == tokens.tokenize_many([x.embed_text() for x in c.chunks])


def test_composed_vectors_are_unit_and_follow_the_sentences():
    m = _material()
    c = corpus.generate(m, 200, seed=2)
    rng = np.random.default_rng(0)
    sv = rng.standard_normal((len(m.sentences), 32)).astype(np.float32)
    v = corpus.compose_vectors(c, sv, noise=0.0)
    assert v.shape == (200, 32) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-5)
    ids = c.chunk_sentences(0)
    w = np.array([len(m.sentences[i]) for i in ids], dtype=np.float32)
    x = (w[:, None] * sv[ids]).sum(0)
    np.testing.assert_allclose(v[0], x / np.linalg.norm(x), rtol=1e-4, atol=1e-5)
    noisy = corpus.compose_vectors(c, sv, noise=0.05)
    assert np.all(np.sum(noisy * v, axis=1) > 0.99)
    with pytest.raises(ValueError):
        corpus.compose_vectors(c, sv[:3])
