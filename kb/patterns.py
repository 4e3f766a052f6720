"""Shapes of a report's lines (header, signature, sentence ends), shared by ingest, cleaning, metadata and chunking."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_DATE = r"(20\d\d|19\d\d)\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?"
# A date anywhere in a line (`发布时间: 2022-01-21`), and a line that is only a date (a signature).
DATE_IN_LINE = re.compile(_DATE)
DATE_LINE = re.compile(rf"^{_DATE}$")
# What ends a sentence (or a clause a heading may follow), as the last character of a line.
SENTENCE_END = "。！？；：!?;:"
# A line that is only a place or an issuing body: `江门市蓬江区荷塘镇人民政府`.
PLACE_LINE = re.compile(r"^[\u4e00-\u9fff]{2,24}(省|市|区|县|镇|乡|街道|街道办事处|人民政府|委员会)$")


def iso_date(m: re.Match[str]) -> str | None:
    """YYYY-MM-DD from a DATE_IN_LINE or DATE_LINE match, or None if it names no real month and day."""
    year, month, day = int(m.group(1)), int(m.group(2)), int(m.group(3))
    if 1 <= month <= 12 and 1 <= day <= 31:
        return f"{year:04d}-{month:02d}-{day:02d}"
    return None


@dataclass
class Header:
    """Facts found in the page chrome and header lines before they were removed from the text."""

    title: str | None = None
    headline: str | None = None
    dates: list[str] = field(default_factory=list)
    place_lines: list[str] = field(default_factory=list)
