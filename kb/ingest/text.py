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


# A report says something in Chinese sentences. Its title alone (某某镇2024年法治政府建设年度报告) is 14 Chinese
# characters; the shortest of the 48 real reports of the evaluation set has 525, the shortest report the tests
# make about 25. So fewer than MIN_CJK is a word, a title or a stray file, never a report, with room to spare
# either way. And text in which no Chinese character is followed by a clause mark (，。；！？ or their ASCII
# forms) is headings or a list of names, not a report; real reports have hundreds.
MIN_CJK = 20
_CJK = re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf]")
_CLAUSE = re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf][，。；！？,;!?]")


def checked(text: str, name: str) -> str:
    """The text, unless it is mostly control characters or has no report-like Chinese text (IngestError)."""
    bad = sum(1 for ch in text if (ord(ch) < 32 and ch not in "\t\r\n\f\v") or ch == "\ufffd")
    if bad > max(8, len(text) // 50):
        raise IngestError(f"{name}: binary or corrupt content ({bad} control/undecodable characters)")
    cjk = len(_CJK.findall(text))
    if not cjk:
        raise IngestError(f"{name}: no Chinese text found; not a report")
    if cjk < MIN_CJK:
        raise IngestError(
            f"{name}: only {cjk} Chinese character{'s' * (cjk > 1)}, a word or a title; not a report (one has at"
            f" least {MIN_CJK})"
        )
    if not _CLAUSE.search(text):
        raise IngestError(
            f"{name}: {cjk} Chinese characters but not one sentence (only headings or a list); not a report"
        )
    return text
