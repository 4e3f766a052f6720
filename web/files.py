"""A report's original file from the seeds folder: where it is, its format, and the headers that serve it
safely (a saved web page is never rendered on this origin)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from flask import Response

from kb.ingest import FORMATS
from web.errors import HttpError

FORMAT_LABELS = {
    "text": "纯文本 text",
    "html": "网页 saved web page",
    "pdf": "PDF",
    "docx": "Word (.docx)",
    "doc": "Word 97–2003 (.doc)",
}
# format → (content type, disposition): text and PDF shown in the browser; a saved page, its scripts and
# all, and Word files are downloaded, so nothing in them runs or renders here
_SERVE_AS = {
    "pdf": ("application/pdf", "inline"),
    "html": ("application/octet-stream", "attachment"),
    "docx": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "attachment"),
    "doc": ("application/msword", "attachment"),
}
_CHARSET = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,39}")
# a file that is shown, not downloaded, still may not load anything or run anything
ORIGINAL_CSP = "default-src 'none'; object-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


def format_of(source: str) -> str | None:
    """A report's format from its file name, as kb.ingest reads it (None: not a report format)."""
    return FORMATS.get(Path(source).suffix.lower())


def format_label(fmt: str | None) -> str:
    return FORMAT_LABELS.get(fmt or "", fmt or "—")


def extraction_notes(doc: dict[str, Any]) -> list[str]:
    """What turning the file into the indexed text left out, as far as the index records it."""
    fmt = format_of(doc.get("source") or "")
    repairs = doc.get("repairs") or {}
    notes = []
    if fmt == "html":
        notes.append("网页只取正文：脚本、样式、导航与页脚不计入 (the article only, without scripts, styles, menus)")
    elif fmt == "pdf":
        notes.append("PDF 取其文字层：图片与扫描页中的文字不计入 (the text layer; text in images is not read)")
    elif fmt in ("docx", "doc"):
        notes.append("Word 取正文与表格文字：图片、批注不计入 (body and table text; images and comments are not read)")
    if repairs.get("chrome"):
        notes.append(f"去除网页杂项行 {repairs['chrome']} 处 (page chrome lines removed)")
    if repairs.get("header_title"):
        notes.append(f"去除标题行 {repairs['header_title']} 处 (header title lines removed)")
    return notes


def content_disposition(kind: str, name: str) -> str:
    """`kind` with an ASCII filename for old clients and the real one (Chinese kept) as RFC 5987 filename*."""
    fallback = re.sub(r'[^A-Za-z0-9._-]', "_", name).strip("._") or "report"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def original_path(seeds: Path, source: str) -> Path:
    """The seeds file a document was read from; a name with path parts never leaves seeds/."""
    if not source or Path(source).name != source or source in (".", ".."):
        raise HttpError(404, f"the report's file name {source!r} is not a plain file name", param="doc_id")
    root = seeds.resolve()
    path = (root / source).resolve()
    if path.parent != root or not path.is_file():
        raise HttpError(404, f"{source} is no longer in the seeds folder", param="doc_id")
    return path


def original_response(seeds: Path, doc: dict[str, Any]) -> Response:
    """The file itself, if it still has the bytes the index was built from."""
    source = doc["source"]
    data = original_path(seeds, source).read_bytes()
    if doc.get("sha256") and hashlib.sha256(data).hexdigest() != doc["sha256"]:
        raise HttpError(404, f"{source} has changed since the index was built; rebuild to see it", param="doc_id")
    fmt = format_of(source) or ""
    if fmt in _SERVE_AS:
        ctype, kind = _SERVE_AS[fmt]
    else:
        enc = doc.get("encoding") or "utf-8"
        enc = "utf-8" if enc.lower().startswith("utf-8") or not _CHARSET.fullmatch(enc) else enc
        ctype, kind = f"text/plain; charset={enc}", "inline"
    resp = Response(data, status=200)
    resp.headers["Content-Type"] = ctype
    resp.headers["Content-Disposition"] = content_disposition(kind, source)
    resp.headers["Content-Security-Policy"] = ORIGINAL_CSP
    return resp
