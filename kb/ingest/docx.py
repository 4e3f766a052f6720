"""Word reports: .docx through python-docx, with Word's automatic numbering written out (一、 and （一）
are often numbering, not text); old .doc through antiword or catdoc."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from kb.ingest.base import Extracted, IngestError
from kb.ingest.text import checked

_DIGITS = "零一二三四五六七八九"
_TRADITIONAL = "甲乙丙丁戊己庚辛壬癸"
_CIRCLED = "①②③④⑤⑥⑦⑧⑨⑩⑪⑫⑬⑭⑮⑯⑰⑱⑲⑳"
_ROMAN = ((1000, "m"), (900, "cm"), (500, "d"), (400, "cd"), (100, "c"), (90, "xc"), (50, "l"), (40, "xl"),
          (10, "x"), (9, "ix"), (5, "v"), (4, "iv"), (1, "i"))
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def chinese_number(n: int) -> str:
    """1 → 一, 10 → 十, 12 → 十二, 20 → 二十, 105 → 一百零五 (Word's chineseCounting)."""
    if n < 10:
        return _DIGITS[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return ("" if tens == 1 else _DIGITS[tens]) + "十" + (_DIGITS[ones] if ones else "")
    hundreds, rest = divmod(n, 100)
    tail = "" if not rest else ("零" + _DIGITS[rest] if rest < 10 else ("一" if rest < 20 else "") + chinese_number(rest))
    return _DIGITS[hundreds] + "百" + tail


def _roman(n: int) -> str:
    out = ""
    for value, letters in _ROMAN:
        while n >= value:
            out, n = out + letters, n - value
    return out


def format_number(n: int, fmt: str) -> str:
    """A counter in one of Word's number formats (w:numFmt)."""
    if fmt in ("chineseCounting", "chineseCountingThousand", "chineseLegalSimplified", "japaneseCounting",
               "taiwaneseCounting", "ideographDigital"):
        return chinese_number(n)
    if fmt == "ideographTraditional" and 1 <= n <= 10:
        return _TRADITIONAL[n - 1]
    if fmt == "decimalEnclosedCircle" and 1 <= n <= 20:
        return _CIRCLED[n - 1]
    if fmt in ("lowerLetter", "upperLetter"):
        letter = chr(ord("a") + (n - 1) % 26) * ((n - 1) // 26 + 1)
        return letter.upper() if fmt == "upperLetter" else letter
    if fmt in ("lowerRoman", "upperRoman"):
        return _roman(n).upper() if fmt == "upperRoman" else _roman(n)
    if fmt == "decimalZero":
        return f"{n:02d}"
    return str(n)


class _Numbering:
    """Word's list counters, advanced paragraph by paragraph as Word renders them."""

    def __init__(self, doc: Any) -> None:
        from docx.oxml.ns import qn

        self.qn = qn
        try:
            root = doc.part.numbering_part.element
        except (KeyError, NotImplementedError):
            root = None
        self.levels: dict[str, dict[int, tuple[str, str, int]]] = {}
        self.abstract_of: dict[str, str] = {}
        self.counters: dict[str, dict[int, int]] = {}
        if root is None:
            return
        for ab in root.findall(qn("w:abstractNum")):
            self.levels[ab.get(qn("w:abstractNumId"))] = {
                int(lvl.get(qn("w:ilvl"))): (self._val(lvl, "w:numFmt", "decimal"), self._val(lvl, "w:lvlText", ""),
                                             int(self._val(lvl, "w:start", "1")))
                for lvl in ab.findall(qn("w:lvl"))
            }
        for num in root.findall(qn("w:num")):
            self.abstract_of[num.get(qn("w:numId"))] = self._val(num, "w:abstractNumId", "")

    def _val(self, el: Any, tag: str, default: str) -> str:
        child = el.find(self.qn(tag))
        return default if child is None else child.get(self.qn("w:val"), default)

    def label(self, num_id: str, ilvl: int) -> str:
        """The number Word shows before a paragraph of list num_id at level ilvl, counting it."""
        abstract = self.abstract_of.get(num_id)
        levels = self.levels.get(abstract or "", {})
        if ilvl not in levels:
            return ""
        counts = self.counters.setdefault(abstract or "", {})
        fmt, text, start = levels[ilvl]
        counts[ilvl] = counts.get(ilvl, start - 1) + 1
        for deeper in [k for k in counts if k > ilvl]:
            del counts[deeper]  # a higher level restarts the ones below it
        if fmt in ("bullet", "none"):
            return ""

        def one(m: re.Match[str]) -> str:
            lvl = int(m.group(1)) - 1
            lfmt, _, lstart = levels.get(lvl, ("decimal", "", 1))
            return format_number(counts.get(lvl, lstart), lfmt)

        return re.sub(r"%(\d)", one, text)


def _num_pr(paragraph: Any, qn: Any) -> tuple[str, int] | None:
    """(numId, ilvl) from the paragraph, else from its style and the styles it is based on."""
    candidates = [paragraph._p.pPr]
    style = paragraph.style
    while style is not None:
        candidates.append(style.element.pPr)
        style = style.base_style
    for ppr in candidates:
        num_pr = None if ppr is None else ppr.find(qn("w:numPr"))
        if num_pr is None:
            continue
        num_id = num_pr.find(qn("w:numId"))
        ilvl = num_pr.find(qn("w:ilvl"))
        if num_id is not None:
            return num_id.get(qn("w:val")), int(ilvl.get(qn("w:val"))) if ilvl is not None else 0
    return None


def _blocks(doc: Any) -> list[str]:
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    numbering = _Numbering(doc)
    lines: list[str] = []
    for child in doc.element.body.iterchildren():
        if child.tag == numbering.qn("w:p"):
            para = Paragraph(child, doc)
            text = para.text.strip()
            num = _num_pr(para, numbering.qn)
            label = numbering.label(*num) if num and num[0] != "0" else ""
            if text:
                lines.append(label + text)
        elif child.tag == numbering.qn("w:tbl"):
            for row in Table(child, doc).rows:
                cells = list(dict.fromkeys(c.text.strip() for c in row.cells))  # merged cells repeat
                if any(cells):
                    lines.append(" ".join(filter(None, cells)))
    return lines


def read_docx(data: bytes, path: Path) -> Extracted:
    """A .docx's paragraphs and table rows, one a line, numbered as Word shows them."""
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    name = str(path)
    try:
        doc = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, KeyError, ValueError, OSError) as exc:
        raise IngestError(f"{name}: not a Word .docx file ({type(exc).__name__}: {exc})") from exc
    except Exception as exc:  # a zip that is not a document fails deep in the parser, in many ways
        raise IngestError(f"{name}: not a readable .docx file ({type(exc).__name__}: {exc})") from exc
    title = (doc.core_properties.title or "").strip()
    text = "\n".join(_blocks(doc))
    return Extracted(checked(text + "\n", name), "docx", title if re.search(r"[\u4e00-\u9fff]", title) else None)


def doc_tools() -> list[list[str]]:
    """The commands that can turn a .doc into text here, best first (antiword, then catdoc)."""
    tools = []
    if shutil.which("antiword"):
        tools.append(["antiword", "-m", "UTF-8.txt", "-w", "0"])
    if shutil.which("catdoc"):
        tools.append(["catdoc", "-d", "utf-8", "-w"])
    return tools


def read_doc(data: bytes, path: Path) -> Extracted:
    """An old Word .doc through antiword or catdoc."""
    name = str(path)
    if not data.startswith(_OLE):
        raise IngestError(f"{name}: not a Word 97-2003 .doc file (no OLE header); open it in Word and save as .docx")
    tools = doc_tools()
    if not tools:
        raise IngestError(
            f"{name}: reading .doc needs antiword or catdoc, and neither is installed "
            "(apt-get install antiword catdoc); or save the file as .docx"
        )
    errors = []
    for cmd in tools:
        try:
            proc = subprocess.run([*cmd, str(path)], capture_output=True, timeout=120, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            errors.append(f"{cmd[0]}: {exc}")
            continue
        text = proc.stdout.decode("utf-8", "replace")
        if proc.returncode == 0 and re.search(r"[\u4e00-\u9fff]", text):
            lines = [ln.strip() for ln in text.splitlines()]
            return Extracted(checked("\n".join(ln for ln in lines if ln) + "\n", name), "doc")
        said = " ".join(proc.stderr.decode("utf-8", "replace").split())  # the error stays one line
        errors.append(f"{cmd[0]}: {said or 'no text'}")
    raise IngestError(f"{name}: the .doc could not be read ({'; '.join(errors)})")
