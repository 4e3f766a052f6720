"""Synthetic corpora for the benchmarks: real seed sentences recombined into passages of synthetic localities."""

from __future__ import annotations

import bisect
import hashlib
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kb.model import KINDS, Chunk, Report, Section

# A sentence ends at 。 ； or ; (the seeds' full-width semicolons were folded to ASCII). Every kept sentence
# ends with one of them, and none of them is a character jieba joins into a word, so the tokens of a passage
# are exactly the tokens of its sentences, one after the other (checked by the benchmark on real text).
_SENTENCE = re.compile(r"[^。；;\n]*[。；;]")
_CJK = re.compile(r"[\u4e00-\u9fff]")

PASSAGE_CHARS = (150, 400)
PASSAGES_PER_REPORT = (25, 55)  # the seeds have 11-27 passages; whole-year reports of bigger towns have more
YEARS = tuple(range(2019, 2025))
YEARS_PER_LOCALITY = 5
KIND_HEADINGS = {
    "preamble": "",
    "achievements": "一、主要举措和成效",
    "problems": "二、存在的问题和不足",
    "plans": "三、下一年度工作安排",
}
PROVINCES = (
    "广东省", "河南省", "山东省", "江苏省", "浙江省", "四川省", "湖北省", "湖南省", "河北省", "安徽省",
    "福建省", "江西省", "广西壮族自治区", "云南省", "贵州省", "陕西省", "山西省", "辽宁省", "吉林省",
    "黑龙江省", "甘肃省", "内蒙古自治区", "新疆维吾尔自治区", "海南省", "宁夏回族自治区", "青海省",
)
# Characters that make plausible place names (none of them a glossary term on its own).
_NAME_CHARS = (
    "安宁平泰和兴隆昌盛丰乐康福寿永长清河山川江湖溪石桥林松柏竹梅兰新东西南北中上下龙凤鹤鹿青白红金"
    "银玉宝华荣春秋云阳明光德仁义礼信忠孝文武成德源泉湾港塘坪坝岭峰台洲沙田庄"
)
_TOWN_SUFFIX = (("镇", "town"), ("镇", "town"), ("乡", "township"), ("街道", "subdistrict"))


@dataclass
class Material:
    """What synthetic passages are made of: sentences of the real reports (each ending in 。；or ;), the kind
    (preamble/achievements/problems/plans) of the passage each came from, and the real section paths by kind."""

    sentences: list[str]
    kinds: list[str]
    paths: dict[str, list[tuple[str, ...]]] = field(default_factory=dict)

    def by_kind(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {k: [] for k in KINDS}
        for i, k in enumerate(self.kinds):
            out.setdefault(k, []).append(i)
        return out


def split_sentences(text: str) -> list[tuple[int, str]]:
    """(offset, sentence) for every run of text ending in 。；or ; within one line."""
    return [(m.start(), m.group()) for m in _SENTENCE.finditer(text)]


def extract_material(items: Sequence[Any], min_cjk: int = 8, max_chars: int = 250) -> Material:
    """Sentences of processed reports (kb.corpus.Processed: .report.text and .chunks with offsets), each with
    the kind of the chunk it lies in; duplicates, fragments under `min_cjk` CJK characters and sentences over
    `max_chars` (which would not fit a passage) are dropped."""
    sentences: list[str] = []
    kinds: list[str] = []
    seen: set[str] = set()
    paths: dict[str, list[tuple[str, ...]]] = {}
    for item in items:
        chunks = sorted(item.chunks, key=lambda c: c.start)
        starts = [c.start for c in chunks]
        for c in chunks:
            path = tuple(c.section_path)
            if path not in paths.setdefault(c.kind, []):
                paths[c.kind].append(path)
        for off, raw in split_sentences(item.report.text):
            s = raw.strip()
            if s in seen or len(s) > max_chars or len(_CJK.findall(s)) < min_cjk:
                continue
            j = bisect.bisect_right(starts, off) - 1
            kind = chunks[j].kind if j >= 0 and off < chunks[j].end else "preamble"
            seen.add(s)
            sentences.append(s)
            kinds.append(kind)
    if not sentences:
        raise ValueError("no usable sentences in the given reports")
    return Material(sentences, kinds, paths)


@dataclass
class SyntheticCorpus:
    """Reports and chunks ready for kb.store.write_index, with each chunk's recipe: the material sentences it
    is made of (CSR: sentence_ids[indptr[i]:indptr[i+1]]) and the index of its section path in `paths`."""

    reports: list[Report]
    chunks: list[Chunk]
    indptr: np.ndarray
    sentence_ids: np.ndarray
    path_ids: np.ndarray
    paths: list[tuple[str, ...]]
    localities: int
    sentence_chars: np.ndarray  # length of each material sentence (compose_vectors weights by it)

    def chunk_sentences(self, i: int) -> np.ndarray:
        return self.sentence_ids[self.indptr[i] : self.indptr[i + 1]]


def _names(rng: random.Random, count: int, length: int, suffix: str, taken: set[str]) -> list[str]:
    out: list[str] = []
    while len(out) < count:
        name = "".join(rng.choice(_NAME_CHARS) for _ in range(length)) + suffix
        if name not in taken:
            taken.add(name)
            out.append(name)
    return out


def _kind_plan(rng: random.Random, m: int) -> list[str]:
    """Kinds of a report's m passages in reading order, in the seeds' proportions (about 1 : 14 : 2 : 3)."""
    pre = 1 if m >= 4 else 0
    rest = m - pre
    problems = max(1, round(rest * rng.uniform(0.08, 0.15))) if rest >= 3 else 0
    plans = max(1, round(rest * rng.uniform(0.12, 0.2))) if rest >= 3 else 0
    ach = rest - problems - plans
    return ["preamble"] * pre + ["achievements"] * ach + ["problems"] * problems + ["plans"] * plans


def generate(
    material: Material,
    n_passages: int,
    seed: int = 0,
    passage_chars: tuple[int, int] = PASSAGE_CHARS,
    passages_per_report: tuple[int, int] = PASSAGES_PER_REPORT,
    years: Sequence[int] = YEARS,
    years_per_locality: int = YEARS_PER_LOCALITY,
) -> SyntheticCorpus:
    """n_passages passages of `passage_chars` characters, each a random run of material sentences of one kind,
    in reports of `passages_per_report` passages; each report belongs to one synthetic locality (town,
    township or subdistrict of a synthetic city in a real province) and one year, `years_per_locality`
    consecutive years per locality. Deterministic for a given seed."""
    lo, hi = passage_chars
    if not 0 < lo <= hi:
        raise ValueError(f"passage_chars must be (min, max) with 0 < min <= max; got {passage_chars}")
    if n_passages < 0:
        raise ValueError(f"n_passages must be >= 0; got {n_passages}")
    rng = random.Random(seed)
    pools = {k: v for k, v in material.by_kind().items() if v}
    lens = [len(s) for s in material.sentences]
    fits = [i for i in range(len(material.sentences)) if lens[i] <= hi]
    if not fits:
        raise ValueError(f"no material sentence is at most {hi} characters long")
    pools = {k: [i for i in v if lens[i] <= hi] or fits for k, v in pools.items()}
    path_list: list[tuple[str, ...]] = []
    path_ids_by_kind: dict[str, list[int]] = {}
    for k in KINDS:
        ps = material.paths.get(k) or [()]
        path_ids_by_kind[k] = list(range(len(path_list), len(path_list) + len(ps)))
        path_list.extend(ps)
    sizes = _report_sizes(rng, n_passages, passages_per_report)  # first, so the number of localities is known
    places = _Places(rng, len(sizes), years_per_locality, years)
    reports: list[Report] = []
    chunks: list[Chunk] = []
    indptr = [0]
    sids: list[int] = []
    pids: list[int] = []
    for r, m in enumerate(sizes):
        doc_chunks: list[tuple[str, int, str]] = []
        for kind in _kind_plan(rng, m):
            parts = _passage(rng, pools.get(kind) or fits, fits, lens, lo, hi)
            sids.extend(parts)
            indptr.append(len(sids))
            pid = rng.choice(path_ids_by_kind[kind])
            pids.append(pid)
            doc_chunks.append((kind, pid, "".join(material.sentences[i] for i in parts)))
        report, report_chunks = _report(f"syn{r:07d}", doc_chunks, path_list, *places.of(r))
        reports.append(report)
        chunks.extend(report_chunks)
    return SyntheticCorpus(
        reports=reports,
        chunks=chunks,
        indptr=np.asarray(indptr, dtype=np.int64),
        sentence_ids=np.asarray(sids, dtype=np.int32),
        path_ids=np.asarray(pids, dtype=np.int32),
        paths=path_list,
        localities=places.count,
        sentence_chars=np.asarray(lens, dtype=np.int32),
    )


def _report_sizes(rng: random.Random, n_passages: int, passages_per_report: tuple[int, int]) -> list[int]:
    sizes: list[int] = []
    left = n_passages
    a, b = passages_per_report
    while left > 0:
        m = min(left, rng.randint(a, b))
        sizes.append(m)
        left -= m
    return sizes


class _Places:
    """The synthetic localities of a corpus (a town and its city, in a real province) and their years."""

    def __init__(self, rng: random.Random, n_reports: int, years_per_locality: int, years: Sequence[int]) -> None:
        self.count = n_loc = max(1, -(-n_reports // max(1, years_per_locality)))
        self.years = years
        taken: set[str] = set()
        cities = _names(rng, max(1, n_loc // 8), 2, "市", taken)
        self.towns = []
        for _ in range(n_loc):
            suffix, level = rng.choice(_TOWN_SUFFIX)
            self.towns.append((_names(rng, 1, 2, suffix, taken)[0], level))
        self.city_of = [(rng.choice(cities), rng.choice(PROVINCES)) for _ in range(len(cities))]
        self.start_years = [rng.randrange(0, max(1, len(years) - years_per_locality + 1)) for _ in range(n_loc)]

    def of(self, r: int) -> tuple[str, str, str, str, int]:
        """Report r's town, level, city, province and year: localities take turns, one year after another."""
        loc_i = r % self.count
        town, level = self.towns[loc_i]
        city, province = self.city_of[loc_i % len(self.city_of)]
        year = self.years[(self.start_years[loc_i] + r // self.count) % len(self.years)]
        return town, level, city, province, year


def _passage(rng: random.Random, pool: list[int], fits: list[int], lens: list[int], lo: int, hi: int) -> list[int]:
    """Material sentences for one passage of lo..hi characters, drawn from `pool`."""
    target = rng.randint(lo, hi)
    parts: list[int] = []
    length = 0
    tries = 0
    while length < target and tries < 64:
        s = pool[rng.randrange(len(pool))]
        if length + lens[s] > hi:
            tries += 1
            if length >= lo:
                break
            continue
        parts.append(s)
        length += lens[s]
    while length < lo:  # tiny pools: fill from the shortest sentences
        s = min(fits, key=lambda i: lens[i])
        parts.append(s)
        length += lens[s]
    return parts


def _report(
    doc_id: str,
    doc_chunks: list[tuple[str, int, str]],
    path_list: list[tuple[str, ...]],
    town: str,
    level: str,
    city: str,
    province: str,
    year: int,
) -> tuple[Report, list[Chunk]]:
    """A report of the given (kind, path id, text) passages, one per line, with its chunks and sections."""
    body = "\n".join(text for _, _, text in doc_chunks)
    chunks: list[Chunk] = []
    sections: list[Section] = []
    pos = 0
    for ordinal, (kind, pid, text) in enumerate(doc_chunks):
        start, end = pos, pos + len(text)
        pos = end + 1
        h = hashlib.blake2b(f"{doc_id}:{ordinal}".encode(), digest_size=5).hexdigest()
        chunks.append(Chunk(f"{doc_id}:{h}", doc_id, ordinal, list(path_list[pid]), kind, start, end, text))
        if sections and sections[-1].kind == kind:
            sections[-1].end = end
        else:
            sections.append(Section(KIND_HEADINGS.get(kind, ""), 1, kind, start, end))
    report = Report(
        doc_id=doc_id,
        source=f"{doc_id}.txt",
        sha256=hashlib.sha256(body.encode()).hexdigest(),
        encoding="utf-8",
        raw_text=body,
        text=body,
        title=f"{city}{town}{year}年法治政府建设年度报告",
        headline=None,
        locality=town,
        level=level,
        region=city,
        province=province,
        year=year,
        published=None,
        sections=sections,
    )
    return report, chunks


def compose_tokens(
    corpus: SyntheticCorpus, sentence_tokens: Sequence[list[str]], path_tokens: Sequence[list[str]]
) -> list[list[str]]:
    """BM25 tokens of every chunk's embed_text() assembled from the tokens of its path and sentences
    (tokenize each material sentence and path once: 10^6 passages take seconds instead of ~15 min of jieba).
    path_tokens[i] must be tokenize(" › ".join(paths[i]) + "\\n"), or [] for an empty path."""
    out: list[list[str]] = []
    ind, ids, pids = corpus.indptr, corpus.sentence_ids.tolist(), corpus.path_ids.tolist()
    for i in range(len(corpus.chunks)):
        toks = list(path_tokens[pids[i]])
        for s in ids[ind[i] : ind[i + 1]]:
            toks.extend(sentence_tokens[s])
        out.append(toks)
    return out


def compose_vectors(
    corpus: SyntheticCorpus, sentence_vectors: np.ndarray, noise: float = 0.05, seed: int = 0, block: int = 65536
) -> np.ndarray:
    """Unit vectors for the chunks: the mean of their sentences' real vectors weighted by sentence length,
    plus isotropic gaussian noise of relative norm `noise` (breaks ties between passages made of the same
    sentences), normalized. Stands in for embedding passages that cannot all be embedded."""
    from scipy import sparse

    sv = np.ascontiguousarray(sentence_vectors, dtype=np.float32)
    n, d = len(corpus.chunks), sv.shape[1]
    if sv.shape[0] != len(corpus.sentence_chars):
        raise ValueError(f"{sv.shape[0]} sentence vectors for {len(corpus.sentence_chars)} material sentences")
    w = corpus.sentence_chars[corpus.sentence_ids].astype(np.float32)
    mat = sparse.csr_matrix((w, corpus.sentence_ids, corpus.indptr), shape=(n, sv.shape[0]), dtype=np.float32)
    out = np.empty((n, d), dtype=np.float32)
    rng = np.random.default_rng(seed)
    for s in range(0, n, block):
        x = np.asarray(mat[s : s + block] @ sv, dtype=np.float32)
        x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        if noise:
            e = rng.standard_normal(x.shape, dtype=np.float32)
            e *= noise / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
            x += e
            x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        out[s : s + block] = x
    return out
