"""PDF reports: the text layer (pdfminer.six) as paragraphs, lines a page broke mid-sentence joined,
page numbers and running headers and footers dropped; a scan or a locked file is a clear error."""

from __future__ import annotations

import io
import logging
import re
import statistics
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from kb.ingest.base import Extracted, IngestError
from kb.ingest.text import checked
from kb.patterns import SENTENCE_END

# Fonts often map CJK characters to their radical forms; NFKC folds the Kangxi ones (⼭ → 山), these remain.
_RADICALS = str.maketrans({
    "⺠": "民", "⻓": "长", "⻔": "门", "⻢": "马", "⻅": "见", "⻉": "贝", "⻋": "车", "⻜": "飞", "⻛": "风",
    "⻚": "页", "⻄": "西", "⻘": "青", "⻬": "齐", "⻰": "龙", "⻥": "鱼", "⻦": "鸟", "⻩": "黄", "⻨": "麦",
    "⻳": "龟", "⻮": "齿", "⻆": "角", "⻁": "虎", "⺟": "母",
})
_PAGE_NUMBER = re.compile(r"^[-—–_\s]*(第\s*\d+\s*页(\s*[,，/]?\s*共\s*\d+\s*页)?|\d+(\s*/\s*\d+)?|page\s*\d+(\s*of\s*\d+)?)[-—–_\s]*$", re.I)
_HEADING = re.compile(r"^([一二三四五六七八九十]+、|[(（][一二三四五六七八九十]+[)）]|第[一二三四五六七八九十]+[章节部分])")
# how many lines at the top and bottom of a page are looked at for running headers and footers
_BAND = 3


@dataclass
class _Line:
    text: str
    x0: float
    x1: float
    top: float
    size: float


def _fold(text: str) -> str:
    out = "".join(unicodedata.normalize("NFKC", ch) if "\u2f00" <= ch <= "\u2fdf" else ch for ch in text)
    return out.translate(_RADICALS).replace("\ufb01", "fi").replace("\ufb02", "fl")


def _pages(data: bytes, name: str) -> list[list[_Line]]:
    from pdfminer.high_level import extract_pages
    from pdfminer.layout import LAParams, LTTextContainer, LTTextLine
    from pdfminer.pdfdocument import PDFEncryptionError, PDFPasswordIncorrect
    from pdfminer.pdfparser import PDFSyntaxError
    from pdfminer.psparser import PSException

    logging.getLogger("pdfminer").setLevel(logging.ERROR)  # font warnings that do not affect the text
    pages: list[list[_Line]] = []
    try:
        for layout in extract_pages(io.BytesIO(data), password="", laparams=LAParams()):
            lines = [
                _Line(_fold(ln.get_text()).strip(), ln.x0, ln.x1, ln.y1, ln.height)
                for box in layout if isinstance(box, LTTextContainer)
                for ln in box if isinstance(ln, LTTextLine) and ln.get_text().strip()
            ]
            pages.append(sorted(lines, key=lambda ln: (-round(ln.top), ln.x0)))
    except PDFPasswordIncorrect as exc:
        raise IngestError(f"{name}: the PDF needs a password to open; save a copy without one") from exc
    except PDFEncryptionError as exc:
        raise IngestError(f"{name}: the PDF's encryption is not supported ({exc}); save a copy without it") from exc
    except (PDFSyntaxError, PSException, ValueError, TypeError, KeyError) as exc:
        raise IngestError(f"{name}: not a readable PDF ({type(exc).__name__}: {exc})") from exc
    return pages


def _shape(line: _Line) -> tuple[str, int]:
    # the text with its numbers folded, and where on the page it stands: a title printed in the running
    # header stays where it is on the first page
    return re.sub(r"\d+", "#", re.sub(r"\s+", "", line.text)), round(line.top / 4)


def _running_lines(pages: list[list[_Line]]) -> set[tuple[str, int]]:
    """Lines (numbers folded) at the same place at the top or bottom of half the pages, and two or more."""
    seen: Counter[tuple[str, int]] = Counter()
    for lines in pages:
        seen.update({_shape(ln) for ln in lines[:_BAND] + lines[-_BAND:]})
    need = max(2, (len(pages) + 1) // 2)
    return {shape for shape, n in seen.items() if n >= need}


def _body(pages: list[list[_Line]]) -> list[list[_Line]]:
    running = _running_lines(pages)
    out = []
    for lines in pages:
        edge = {id(ln) for ln in lines[:_BAND] + lines[-_BAND:]}
        out.append([
            ln for ln in lines
            if not (_PAGE_NUMBER.match(ln.text) or (id(ln) in edge and _shape(ln) in running))
        ])
    return out


def _paragraphs(pages: list[list[_Line]]) -> list[str]:
    """Join the lines a page broke: a line starts a paragraph when it is indented, follows a line that
    stopped short of the right margin, or is a heading after a finished sentence."""
    paras: list[str] = []
    prev: _Line | None = None
    prev_right = 0.0
    for lines in pages:
        if not lines:
            continue
        left = min(ln.x0 for ln in lines)
        right = max(ln.x1 for ln in lines)
        em = statistics.median(ln.size for ln in lines) or 10.0
        for ln in lines:
            indented = ln.x0 - left > 0.8 * em
            short = prev is not None and prev.x1 < prev_right - 2.5 * em
            heading = bool(_HEADING.match(ln.text)) and bool(paras) and paras[-1][-1:] in SENTENCE_END
            if prev is None or indented or short or heading:
                paras.append(ln.text)
            else:
                # Chinese runs on without a space; a Latin word broken at a line end keeps one
                sep = " " if re.match(r"[A-Za-z0-9]", ln.text) and re.search(r"[A-Za-z]$", paras[-1]) else ""
                paras[-1] += sep + ln.text
            prev, prev_right = ln, right
    return paras


def _date(info: dict, key: str) -> str | None:
    raw = info.get(key)
    value = raw.decode("latin-1", "replace") if isinstance(raw, bytes) else str(raw or "")
    m = re.match(r"(?:D:)?(\d{4})(\d{2})(\d{2})", value)
    return f"{m.group(1)}-{m.group(2)}-{m.group(3)}" if m else None


def read_pdf(data: bytes, path: Path) -> Extracted:
    """A PDF's text layer as paragraphs, one a line."""
    name = str(path)
    if not data.lstrip().startswith(b"%PDF"):
        raise IngestError(f"{name}: not a PDF (it does not start with %PDF)")
    pages = _pages(data, name)
    text = "\n".join(_paragraphs(_body(pages)))
    if len(re.findall(r"[\u4e00-\u9fff]", text)) < 20:
        raise IngestError(
            f"{name}: the PDF has no text layer ({len(pages)} page{'s' if len(pages) != 1 else ''} of images or"
            " drawings, as a scan has); "
            "it needs OCR before it can be indexed"
        )
    return Extracted(checked(text + "\n", name), "pdf")
