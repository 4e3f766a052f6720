"""Saved web pages: the charset from the bytes and <meta>, the article without the site's chrome
(trafilatura), and the page's title and 发布时间 kept."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from kb.ingest.base import Extracted, IngestError
from kb.ingest.text import checked, decode_bytes

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
# GB2312 and GBK pages routinely use characters only their superset GB18030 names
_SUPERSET = {"gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "gb_2312-80": "gb18030", "big5": "big5hkscs"}
_PUBLISHED = re.compile(
    r"(?:发布时间|发布日期|发文日期|成文日期|日期)\s*[:：]\s*(\d{4})\s*[-年/.]\s*(\d{1,2})\s*[-月/.]\s*(\d{1,2})"
)
# Chinese characters outside links that make a page a report rather than a list of links
MIN_PROSE = 50
# A saved page under another name (报告.txt): it opens with a doctype or one of a page's own tags, after an
# optional byte-order mark, blank space and comments. A plain-text report never starts with a tag.
_PAGE_START = re.compile(rb"\A(?:\xef\xbb\xbf)?\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body)[\s>]", re.I | re.S)
# what the article's parts become: one line each
_LINE_TAGS = {"head", "p", "item", "row", "quote", "code", "lb"}


def looks_like_page(data: bytes) -> bool:
    """Whether a file's bytes are a web page, whatever its name says."""
    return _PAGE_START.match(data[:4096]) is not None


def page_text(data: bytes, name: str) -> tuple[str, str]:
    """Decode a page: a byte-order mark or valid UTF-8 first, then the charset its <meta> declares,
    then detection (the declaration is often wrong on re-saved pages)."""
    if data.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        return decode_bytes(data, name)
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    declared = _META_CHARSET.search(data[:4096])
    if declared:
        label = declared.group(1).decode("ascii").lower()
        codec = _SUPERSET.get(label, label)
        try:
            return data.decode(codec), label
        except (LookupError, UnicodeDecodeError):
            pass
    return decode_bytes(data, name)


def _title(tree: object) -> str | None:
    for xpath in ("//h1", "//title"):
        for el in tree.xpath(xpath):  # type: ignore[attr-defined]
            text = re.sub(r"\s+", " ", el.text_content()).strip()
            if xpath == "//title":
                # a <title> carries the site's name after a separator: 报告标题_某某镇人民政府
                text = re.split(r"\s*[_|｜—–-]{1,2}\s*", text)[0]
            if re.search(r"[\u4e00-\u9fff]", text):
                return text
    return None


def _published(visible: str) -> str | None:
    m = _PUBLISHED.search(visible)
    if not m:
        return None
    y, mo, d = (int(g) for g in m.groups())
    return f"{y:04d}-{mo:02d}-{d:02d}" if 1 <= mo <= 12 and 1 <= d <= 31 else None


def _article_lines(page: str) -> list[str]:
    import trafilatura
    from lxml import etree

    logging.getLogger("trafilatura").setLevel(logging.ERROR)
    xml = trafilatura.extract(
        page, output_format="xml", include_tables=True, include_comments=False, include_links=False,
        include_images=False, deduplicate=False, with_metadata=False,
    )
    if not xml:
        return []
    root = etree.fromstring(xml.encode("utf-8"))
    lines: list[str] = []
    for el in root.iter(*_LINE_TAGS):
        if el.tag == "row":  # a layout table's row: its cells side by side
            text = " ".join(" ".join(c.itertext()).strip() for c in el.iter("cell"))
        elif el.getparent() is not None and el.getparent().tag in ("cell", "item"):
            continue  # already taken with its row or item
        else:
            text = "".join(el.itertext())
        text = re.sub(r"[ \t\u00a0]+", " ", text).strip()
        if text:
            lines.append(text)
    return lines


def _has_prose(body: list[str], tree: object) -> bool:
    """Whether the extracted lines hold prose once every link's text is taken out: a page that is only
    navigation or a list of articles extracts as its links."""
    rest = "\n".join(body)
    links = {re.sub(r"\s+", " ", a.text_content()).strip() for a in tree.xpath("//a")}  # type: ignore[attr-defined]
    for link in sorted(filter(None, links), key=len, reverse=True):
        rest = rest.replace(link, "")
    return len(re.findall(r"[\u4e00-\u9fff]", rest)) >= MIN_PROSE


def read_html(data: bytes, path: Path) -> Extracted:
    """A saved page's article as lines: title, 发布时间, then its paragraphs and headings."""
    import lxml.html

    name = str(path)
    page, encoding = page_text(data, name)
    try:
        tree = lxml.html.document_fromstring(page)
    except (ValueError, lxml.etree.ParserError) as exc:  # type: ignore[attr-defined]
        raise IngestError(f"{name}: not a web page: {exc}") from exc
    for junk in tree.xpath("//script|//style|//noscript"):
        junk.drop_tree()
    title, published = _title(tree), _published(tree.text_content())
    body = _article_lines(page)
    if not _has_prose(body, tree):
        raise IngestError(
            f"{name}: no report text on this page (only navigation, links or a few words); "
            "save the page of the report itself"
        )
    head = [title] if title and title not in body[:2] else []
    if published and not any(_PUBLISHED.search(ln) for ln in body[:5]):
        head.append(f"发布时间：{published}")
    return Extracted(checked("\n".join(head + body) + "\n", name), encoding, title, published)
