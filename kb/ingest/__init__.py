"""Ingestion: turn a report file (text, saved web page, PDF, Word) into text, by its format."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

from kb.errors import UsageError
from kb.ingest.base import Extracted, IngestError, RawReport
from kb.ingest.text import decode_bytes

__all__ = [
    "FORMATS", "MAX_BYTES", "SUFFIXES", "IngestError", "RawReport", "decode_bytes",
    "list_report_files", "max_bytes", "max_mb", "read_report",
]

# A report is rarely above a few MB, even as a PDF with its fonts; the limit is a setting (KB_MAX_MB). It is the one
# size limit: the upload page's (web/settings.py) defaults to it and never exceeds it, so a file taken in there is
# never refused here for its size.
MAX_MB = 50
MAX_BYTES = MAX_MB * 2**20
MAX_MB_CEILING = 1024  # a "report" above 1 GB is a mistake, and so is a limit that lets one in
MAX_ENV = "KB_MAX_MB"
# file name ending → format
FORMATS = {
    ".txt": "text", ".text": "text", ".md": "text",
    ".html": "html", ".htm": "html", ".xhtml": "html", ".shtml": "html",
    ".pdf": "pdf", ".docx": "docx", ".doc": "doc",
}
SUFFIXES = tuple(FORMATS)


def megabytes(value: str, most: float) -> float | None:
    """`value` as megabytes above 0 and at most `most`, else None (not a number, nan and inf included)."""
    try:
        mb = float(value)
    except ValueError:
        return None
    return mb if 0 < mb <= most else None


def max_mb() -> float:
    """The size limit for one report file in megabytes: $KB_MAX_MB (above 0, at most MAX_MB_CEILING), else MAX_MB."""
    value = os.environ.get(MAX_ENV, "").strip()
    if not value:
        return float(MAX_MB)
    mb = megabytes(value, MAX_MB_CEILING)
    if mb is None:
        raise UsageError(
            f"{MAX_ENV}={value!r} is not a size in megabytes; give a number above 0 and at most {MAX_MB_CEILING},"
            f" such as {MAX_MB}"
        )
    return mb


def max_bytes() -> int:
    """The size limit for one report file in bytes (max_mb)."""
    return int(max_mb() * 2**20)


def _reader(fmt: str) -> Callable[[bytes, Path], Extracted]:
    # imported on use: a folder of text reports never loads the PDF or HTML libraries
    if fmt == "html":
        from kb.ingest.html import read_html

        return read_html
    if fmt == "pdf":
        from kb.ingest.pdf import read_pdf

        return read_pdf
    if fmt in ("docx", "doc"):
        from kb.ingest import docx

        return docx.read_docx if fmt == "docx" else docx.read_doc
    return _read_text


def _read_text(data: bytes, path: Path) -> Extracted:
    from kb.ingest.html import looks_like_page, read_html  # no parsing library imported before it is used

    if looks_like_page(data):  # a page saved as .txt: read as the page it is, or its tags and scripts stay
        return read_html(data, path)
    text, encoding = decode_bytes(data, str(path))
    return Extracted(text, encoding)


def read_report(path: Path) -> RawReport:
    """Read one report file in any supported format; raise IngestError naming the file if it is unusable."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise IngestError(
            f"{path}: {path.suffix or 'no extension'} is not a report format; the formats that work: "
            "text (.txt), web page (.html, .htm), PDF (.pdf), Word (.docx, .doc)"
        )
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise IngestError(f"{path}: cannot read: {exc.strerror}") from exc
    limit = max_bytes()
    if size > limit:
        raise IngestError(
            f"{path}: {size / 2**20:.1f} MB is larger than the {limit / 2**20:g} MB limit (setting {MAX_ENV})"
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise IngestError(f"{path}: cannot read: {exc.strerror}") from exc
    if not data.strip():
        raise IngestError(f"{path}: file is empty")
    got = _reader(fmt)(data, path)
    return RawReport(
        path=path,
        source=path.name,
        text=got.text,
        encoding=got.encoding,
        sha256=hashlib.sha256(data).hexdigest(),
        format=fmt,
        title=got.title,
        published=got.published,
    )


def _ignored(name: str) -> bool:
    # the lock files Word leaves beside an open document (~$报告.docx), kb add's temporary files (.part) and
    # hidden files that are not reports (.DS_Store); a dot-named report (.x.txt) counts like any other
    if name.startswith("~$") or name.endswith(".part"):
        return True
    return name.startswith(".") and not name.lower().endswith(SUFFIXES)


def list_report_files(folder: Path) -> list[Path]:
    """Every file of a folder (not recursive) but hidden ones, sorted by name; a file in a format that
    does not work is listed too, so that reading it reports why it is left out."""
    if not folder.is_dir():
        raise IngestError(f"{folder}: not a folder")
    return sorted(p for p in folder.iterdir() if p.is_file() and not _ignored(p.name))
