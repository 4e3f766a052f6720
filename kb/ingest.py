"""Ingestion: read a report file's bytes and decode them, detecting the encoding."""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from charset_normalizer import from_bytes

# Reports are small text files; anything larger is almost certainly not a report.
MAX_BYTES = 20 * 1024 * 1024
SUFFIXES = (".txt", ".text", ".md")

_BOMS = (
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)
# Candidates for BOM-less files, in the order a Chinese government site is likely to use them.
_CJK_ENCODINGS = ("utf_8", "gb18030", "big5", "utf_16")


class IngestError(Exception):
    """A report file that cannot be read as text; the message names the file and the reason."""


@dataclass(frozen=True)
class RawReport:
    """A report file decoded to text, untouched otherwise."""

    path: Path
    source: str
    text: str
    encoding: str
    sha256: str


def decode_bytes(data: bytes, name: str) -> tuple[str, str]:
    """Decode report bytes, returning (text, encoding); raise IngestError when they are not text."""
    if not data.strip():
        raise IngestError(f"{name}: file is empty")
    for bom, enc in _BOMS:
        if data.startswith(bom):
            try:
                # the utf-8-sig and utf-16 codecs consume the BOM themselves
                return _checked(data.decode(enc), name), enc.replace("-sig", "-bom")
            except UnicodeDecodeError as exc:
                raise IngestError(f"{name}: starts with a {enc} byte-order mark but is not {enc}: {exc}") from exc
    if b"\x00" in data[:4096] and not _looks_utf16(data):
        raise IngestError(f"{name}: binary file (NUL bytes), not a text report")
    try:
        return _checked(data.decode("utf-8"), name), "utf-8"
    except UnicodeDecodeError:
        pass
    best = from_bytes(data, cp_isolation=list(_CJK_ENCODINGS)).best()
    if best is None:
        best = from_bytes(data).best()
    if best is not None:
        return _checked(str(best), name), best.encoding
    # A few bad bytes (a cut last character, one stray byte, a mixed file) do not make a report binary: decode
    # in the candidate that replaces fewest and let _checked judge; the count is logged and kept in `encoding`.
    text, enc = min(((data.decode(e, errors="replace"), e) for e in _CJK_ENCODINGS[:3]), key=lambda t: t[0].count("\ufffd"))
    bad = text.count("\ufffd")
    if bad > max(8, len(text) // 50):
        raise IngestError(f"{name}: not text: binary, or an encoding other than UTF-8, UTF-16, GB18030 and Big5"
                          f" ({bad} undecodable bytes as {enc})")
    checked = _checked(text, name)
    logging.getLogger("kb.ingest").warning("%s: %d undecodable bytes replaced with U+FFFD (%s)", name, bad, enc)
    return checked, f"{enc.replace('_', '-')} ({bad} bad bytes replaced)"


def _looks_utf16(data: bytes) -> bool:
    # BOM-less UTF-16 of CJK text has NULs only in high bytes of ASCII; mostly non-NUL pairs otherwise.
    sample = data[:4096]
    return len(sample) % 2 == 0 and sample.count(b"\x00") < len(sample) // 2


def _checked(text: str, name: str) -> str:
    bad = sum(1 for ch in text if (ord(ch) < 32 and ch not in "\t\r\n\f\v") or ch == "\ufffd")
    if bad > max(8, len(text) // 50):
        raise IngestError(f"{name}: binary or corrupt content ({bad} control/undecodable characters)")
    if not re.search(r"[\u4e00-\u9fff\u3400-\u4dbf]", text):
        raise IngestError(f"{name}: no Chinese text found; not a report")
    return text


def read_report(path: Path) -> RawReport:
    """Read and decode one report file; raise IngestError naming the file if it is unusable."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise IngestError(f"{path}: cannot read: {exc.strerror}") from exc
    if size > MAX_BYTES:
        raise IngestError(f"{path}: {size / 2**20:.1f} MB is larger than the {MAX_BYTES // 2**20} MB limit")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise IngestError(f"{path}: cannot read: {exc.strerror}") from exc
    text, encoding = decode_bytes(data, str(path))
    return RawReport(
        path=path,
        source=path.name,
        text=text,
        encoding=encoding,
        sha256=hashlib.sha256(data).hexdigest(),
    )


def list_report_files(folder: Path) -> list[Path]:
    """Report files in a folder (not recursive), sorted by name; a dot-named report counts like any other (the
    temp files of `kb add` end in `.part`, never in a report suffix)."""
    if not folder.is_dir():
        raise IngestError(f"{folder}: not a folder")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)
