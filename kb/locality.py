"""Which division a report is about: names found in the text, checked against the official table."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from kb.gazetteer import Division, Gazetteer, load, short_forms, stem

# The unit a division's name ends in → the level a report records.
LEVEL_OF_KIND = {"镇": "town", "乡": "township", "街道": "subdistrict", "区": "district", "县": "county",
                 "市": "city", "旗": "county"}
_TOWNSHIP_KINDS = ("镇", "乡", "街道")
# How a report refers to itself; 全区/全县 also name the parent in a town's report, so they count less.
_SELF_CUES = {
    "镇": (r"(?:我|本)镇", r"镇(?:党委|人民政府|政府)", r"全镇"),
    "乡": (r"(?:我|本)乡(?!镇|村)", r"乡(?:党委|人民政府|政府)", r"全乡"),
    # a clause that starts with 街道 ("2021年来,街道按照…") is the subdistrict speaking of itself too
    "街道": (r"(?:我|本)街道?(?![^\n]{0,2}[镇乡区县])|(?:^|(?<=[,。;:\n]))街道(?=[\u4e00-\u9fff])",
           r"街道(?:党工委|办事处|工委)", r"全街道?"),
    "区": (r"(?:我|本)区", r"区(?:人民政府|政府常务会)", r"全区"),
    "县": (r"(?:我|本)县", r"县(?:人民政府|政府常务会)", r"全县"),
    "市": (r"(?:我|本)市", r"市(?:人民政府|政府常务会)", r"全市"),
}
_CUE_WEIGHTS = (3.0, 1.0, 0.3)
# A report names itself in its opening pages: reading the first SCAN_CHARS characters bounds the work on a
# huge file (a 19 MB one would cost ~300 M table lookups) without changing what a report of normal length
# (5–30 thousand characters) says about itself.
SCAN_CHARS = 40_000
# A name followed by these is the reporting body speaking of itself (荔枝街道办事处, 东里镇人民政府 …).
_BODY_AFTER = re.compile(r"^(?:人民政府|办事处|党委|党工委|工作委员会|政府|关于|20\d\d年)")
_CJK = re.compile(r"[\u4e00-\u9fff]")


@dataclass(frozen=True)
class Locality:
    """The reporting locality: the name as written, and what the official table says about it."""

    written: str | None
    level: str
    status: str  # verified | ambiguous | unverified | unnamed
    official: str | None = None
    code: str | None = None
    chain: tuple[str, ...] = field(default_factory=tuple)


@dataclass
class _Name:
    """Every mention of one official name (under any of its written forms)."""

    divisions: list[Division]
    forms: Counter[str] = field(default_factory=Counter)
    score: float = 0.0
    head_end: int = -1

    @property
    def kind(self) -> str:
        return self.divisions[0].kind


def _mentions(g: Gazetteer, text: str) -> list[tuple[int, int, str]]:
    """(start, end, written name) of every table name in `text`, longest first where two overlap."""
    found: list[tuple[int, int, str]] = []
    for end in range(1, len(text) + 1):
        if text[end - 1] not in g.last_chars:
            continue
        for size in g.lengths:
            start = end - size
            if start < 0 or text[start:end] not in g.by_written:
                continue
            # a one-character name (房县, 和县) only where it is not the tail of another word (各区和县)
            if size == 2 and start > 0 and _CJK.match(text[start - 1]) and text[start - 1] not in "市州省":
                continue
            found.append((start, end, text[start:end]))
            break  # the longest name ending here (中梁山街道, not 梁山街道)
    kept: list[tuple[int, int, str]] = []
    for m in sorted(found, key=lambda m: (m[0], -m[1])):
        if kept and m[1] <= kept[-1][1]:
            continue  # inside a longer name
        kept.append(m)
    return kept


def _self_cues(text: str) -> dict[str, float]:
    return {kind: sum(w * len(re.findall(p, text)) for p, w in zip(pats, _CUE_WEIGHTS, strict=True))
            for kind, pats in _SELF_CUES.items()}


def _collect(g: Gazetteer, text: str, head: str) -> dict[str, _Name]:
    names: dict[str, _Name] = {}
    opening = text[: max(text.find("。"), 120)]
    for part, weight in ((head, 4.0), (text, 1.0)):
        for start, end, written in _mentions(g, part):
            divs = [d for d in g.lookup(written) if d.rank >= 3]
            if not divs:
                continue
            key = divs[0].name
            n = names.setdefault(key, _Name(divs))
            n.forms[written] += 1
            n.score += weight
            if part is head:
                n.head_end = max(n.head_end, end)
            elif _BODY_AFTER.match(text[end : end + 6]) or start < len(opening):
                n.score += 1.5
    return names


def _choose(names: dict[str, _Name], cues: dict[str, float]) -> _Name | None:
    """The reporting unit: the level the report speaks as (its self-references), then the strongest name."""
    if not names:
        return None
    town_cue = sum(cues[k] for k in _TOWNSHIP_KINDS)
    county_cue = sum(v for k, v in cues.items() if k not in _TOWNSHIP_KINDS)
    towns = [n for n in names.values() if n.kind in _TOWNSHIP_KINDS]
    counties = [n for n in names.values() if n.kind not in _TOWNSHIP_KINDS]
    if town_cue == county_cue == 0:
        group = list(names.values())
    elif town_cue > county_cue and not towns:
        # a town speaking of itself whose name the table lacks (renamed, merged, mistyped): its county is
        # not the answer
        return None
    else:
        group = towns if (towns and town_cue >= county_cue) or not counties else counties
    # the title names the reporting unit last ("汕头市龙湖区龙祥街道2023年…")
    titled = max(group, key=lambda n: n.head_end)
    if titled.head_end >= 0:
        return titled
    return max(group, key=lambda n: (n.score * (1 + cues.get(n.kind, 0.0)), n.score))


def _evidence(g: Gazetteer, div: Division, text: str) -> int:
    """How often the text names this division's parents (廉江市 or 廉江, 湛江市, 广东省 …)."""
    total = 0
    for parent in g.ancestors(div):
        # its official name and the short forms reports write (屏边县 for 屏边苗族自治县), then their bare stems
        forms = [parent.name, *short_forms(parent.name, parent.rank)]
        total += sum(text.count(f) for f in forms)
        stems = {s for s in (stem(f) for f in forms) if s is not None and s not in forms}
        for short in stems:
            total += text.count(short) - sum(text.count(f) for f in forms if short in f)
    return total


def _resolve(g: Gazetteer, name: _Name, text: str) -> tuple[Division | None, list[Division]]:
    """The one division the name means here, by the parents the text mentions; else None and the
    candidates the evidence leaves (all of them when the text names no parent of any)."""
    if len(name.divisions) == 1:
        return name.divisions[0], []
    scrubbed = text
    for form in name.forms:
        scrubbed = scrubbed.replace(form, "〇")  # 龙华街道's own 龙华 is no evidence for 龙华区
    ranked = sorted(((_evidence(g, d, scrubbed), d) for d in name.divisions), key=lambda x: -x[0])
    if ranked[0][0] > 0 and ranked[0][0] > ranked[1][0]:
        return ranked[0][1], []
    return None, [d for e, d in ranked if e == ranked[0][0]]


def _shared_chain(candidates: list[Division]) -> tuple[str, ...]:
    """The places above a name that all its candidates share (清溪镇 named with only 四川省: the province):
    what is known of an ambiguous locality, never a guess between them."""
    chains = [d.chain[:-1] for d in candidates]
    shared: list[str] = []
    for level in zip(*chains, strict=False):
        if len(set(level)) > 1:
            break
        shared.append(level[0])
    return tuple(shared)


def find_locality(text: str, head_text: str = "", gazetteer: Gazetteer | None = None) -> Locality:
    """The division a report is about, from its title lines and how it names itself in the body."""
    g = gazetteer or load()
    text = text[:SCAN_CHARS]
    cues = _self_cues(text)
    chosen = _choose(_collect(g, text, head_text), cues)
    if chosen is None:
        return Locality(None, "unknown", "unnamed")
    official = chosen.divisions[0].name
    written = official if chosen.forms[official] else chosen.forms.most_common(1)[0][0]
    level = LEVEL_OF_KIND.get(chosen.kind, "unknown")
    div, candidates = _resolve(g, chosen, head_text + "\n" + text)
    if div is None:
        shared = _shared_chain(candidates)  # ending with the name, as a resolved chain does
        return Locality(written, level, "ambiguous", official, chain=(*shared, official) if shared else ())
    return Locality(written, level, "verified", div.name, div.code, div.chain)
