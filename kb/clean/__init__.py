"""Cleaning: a pure function from a scraped report's text to clean text, a repair log and header facts."""

from __future__ import annotations

from dataclasses import dataclass

from kb.clean.chrome import strip_chrome
from kb.clean.edits import EditableText
from kb.clean.mojibake import LOST_MARK, repair_mojibake
from kb.clean.normalize import (
    drop_blank_lines,
    drop_invisible,
    fix_punctuation_runs,
    fold_punctuation,
    normalize_spaces,
    remove_glosses,
    simplify,
)
from kb.clean.wrap import join_wrapped_lines, split_flattened_lines
from kb.model import Repair
from kb.patterns import Header

__all__ = ["LOST_MARK", "Cleaned", "Header", "clean"]


@dataclass
class Cleaned:
    """The result of cleaning: text, the log of repairs (offsets into text) and header facts."""

    text: str
    repairs: list[Repair]
    header: Header


def clean(raw: str) -> Cleaned:
    """Repair a scraped report: invisible characters, mojibake, pinyin glosses, traditional characters,
    punctuation, spaces, flattened and hard-wrapped lines, chrome."""
    doc = EditableText(raw.replace("\r\n", "\n").replace("\r", "\n"))
    doc.apply(drop_invisible(doc.text))  # first: a NUL or zero-width space inside a word hides it from every pass
    doc.apply(repair_mojibake(doc.text))
    doc.apply(remove_glosses(doc.text))
    doc.apply(simplify(doc.text))
    doc.apply(fold_punctuation(doc.text))
    doc.apply(fix_punctuation_runs(doc.text))
    doc.apply(normalize_spaces(doc.text))
    doc.apply(split_flattened_lines(doc.text))  # after the spaces: one space sets a flattened line's parts apart
    doc.apply(join_wrapped_lines(doc.text))  # after the spaces: a line's width is counted on its clean form
    header = Header()
    doc.apply(strip_chrome(doc.text, header))
    doc.apply(drop_blank_lines(doc.text))
    return Cleaned(doc.text, doc.repairs, header)
