"""What every format reader returns and raises."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kb.errors import IngestError  # noqa: F401  (re-exported: kb.ingest.IngestError)


@dataclass(frozen=True)
class RawReport:
    """A report file turned into text, untouched otherwise, with what the file itself told us.

    `encoding` is the character encoding the text was decoded from (a text file, a saved page) or the
    format's name where the text comes out of a structure (pdf, docx, doc). `title` and `published`
    (YYYY-MM-DD) are what the file declares, when it does: a page's <h1> and 发布时间, a document's
    properties."""

    path: Path
    source: str
    text: str
    encoding: str
    sha256: str
    format: str = "text"
    title: str | None = None
    published: str | None = None


@dataclass(frozen=True)
class Extracted:
    """A format reader's result, before read_report adds the file's name and hash."""

    text: str
    encoding: str
    title: str | None = None
    published: str | None = None
