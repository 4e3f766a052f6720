"""Plain-text reports: decode the bytes, detecting the encoding."""

from __future__ import annotations

import logging
import re

from charset_normalizer import from_bytes

from kb.ingest.base import IngestError

_BOMS = (
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)
# Candidates for BOM-less files, in the order a Chinese government site is likely to use them.
_CJK_ENCODINGS = ("utf_8", "gb18030", "big5", "utf_16")


def decode_bytes(data: bytes, name: str) -> tuple[str, str]:
    """Decode report bytes, returning (text, encoding); raise IngestError when they are not text."""
    if not data.strip():
        raise IngestError(f"{name}: file is empty")
    for bom, enc in _BOMS:
        if data.startswith(bom):
            try:
                # the utf-8-sig and utf-16 codecs consume the BOM themselves
                return checked(data.decode(enc), name), enc.replace("-sig", "-bom")
            except UnicodeDecodeError as exc:
                raise IngestError(f"{name}: starts with a {enc} byte-order mark but is not {enc}: {exc}") from exc
    if b"\x00" in data[:4096] and not _looks_utf16(data):
        raise IngestError(f"{name}: binary file (NUL bytes), not a text report")
    try:
        return checked(data.decode("utf-8"), name), "utf-8"
    except UnicodeDecodeError:
        pass
    best = from_bytes(data, cp_isolation=list(_CJK_ENCODINGS)).best()
    if best is None:
        best = from_bytes(data).best()
    if best is not None:
        return checked(str(best), name), best.encoding
    # A few bad bytes (a cut last character, one stray byte, a mixed file) do not make a report binary: decode
    # in the candidate that replaces fewest and let `checked` judge; the count is logged and kept in `encoding`.
    text, enc = min(((data.decode(e, errors="replace"), e) for e in _CJK_ENCODINGS[:3]), key=lambda t: t[0].count("\ufffd"))
    bad = text.count("\ufffd")
    if bad > max(8, len(text) // 50):
        raise IngestError(f"{name}: not text: binary, or an encoding other than UTF-8, UTF-16, GB18030 and Big5"
                          f" ({bad} undecodable bytes as {enc})")
    text = checked(text, name)
    logging.getLogger("kb.ingest").warning("%s: %d undecodable bytes replaced with U+FFFD (%s)", name, bad, enc)
    return text, f"{enc.replace('_', '-')} ({bad} bad bytes replaced)"


def _looks_utf16(data: bytes) -> bool:
    # BOM-less UTF-16 of CJK text has NULs only in high bytes of ASCII; mostly non-NUL pairs otherwise.
    sample = data[:4096]
    return len(sample) % 2 == 0 and sample.count(b"\x00") < len(sample) // 2


def checked(text: str, name: str) -> str:
    """The text, unless it is mostly control characters or has no Chinese at all (IngestError)."""
    bad = sum(1 for ch in text if (ord(ch) < 32 and ch not in "\t\r\n\f\v") or ch == "\ufffd")
    if bad > max(8, len(text) // 50):
        raise IngestError(f"{name}: binary or corrupt content ({bad} control/undecodable characters)")
    if not re.search(r"[\u4e00-\u9fff\u3400-\u4dbf]", text):
        raise IngestError(f"{name}: no Chinese text found; not a report")
    return text
