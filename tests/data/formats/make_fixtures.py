"""Writes the format fixtures beside this file from twin.txt (a saved GBK page, a printed PDF, a .docx) and
from twin-doc.txt (an old Word 97-2003 .doc).

Run `python tests/data/formats/make_fixtures.py` (needs /usr/bin/chromium and LibreOffice's soffice:
apt-get install chromium libreoffice-writer-nogui), or `... make_fixtures.py doc` for the .doc alone; the files
it writes are committed, so the tests never need Chromium or LibreOffice. Punctuation is full-width here, as in
the files officials get; cleaning folds it to the ASCII of the twin.
"""

from __future__ import annotations

import html
import io
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHROMIUM = "/usr/bin/chromium"
SOFFICE = "soffice"
_FULL = str.maketrans({",": "，", ":": "：", "(": "（", ")": "）", ";": "；"})


def twin_parts(twin: str = "twin.txt") -> tuple[str, str, list[str], list[str]]:
    """(title, published date, body lines, signature lines) of a twin report."""
    lines = (HERE / twin).read_text(encoding="utf-8").splitlines()
    title, published = lines[0], lines[1].split(":", 1)[1]
    return title, published, [ln.translate(_FULL) for ln in lines[2:-2]], lines[-2:]


def _heading_level(line: str) -> int:
    if re.match(r"^[一二三四五六七八九十]+、", line):
        return 1
    return 2 if re.match(r"^（[一二三四五六七八九十]+）", line) else 0


CHROME_HEAD = """<div class="top"><a href="/">首页</a> | <a href="/wza">无障碍</a> | <a href="/old">长者模式</a>
<form><input name="q" placeholder="请输入关键字"><button>搜索</button></form></div>
<ul class="nav"><li><a href="/">首页</a></li><li><a href="/zwgk">政务公开</a></li><li><a href="/bs">政务服务</a></li>
<li><a href="/hd">互动交流</a></li><li><a href="/zjss">走进狮山</a></li></ul>
<div class="crumb">您当前的位置：<a href="/">首页</a> &gt; <a href="/zwgk">政务公开</a> &gt; <a href="/fz">法治政府建设</a></div>
"""
CHROME_FOOT = """<div class="share">分享到：<a href="#">微信</a> <a href="#">微博</a> <a href="#">QQ空间</a></div>
<div class="tools">【<a href="javascript:window.print()">打印本页</a>】【<a href="javascript:window.close()">关闭窗口</a>】</div>
<div class="related"><h3>相关链接</h3><ul><li><a href="/a1">狮山镇2021年法治政府建设年度报告</a></li>
<li><a href="/a2">南海区关于开展法治宣传教育的通知</a></li><li><a href="/a3">狮山镇召开全面依法治镇委员会会议</a></li></ul></div>
<div class="footer"><p>主办：佛山市南海区狮山镇人民政府　承办：狮山镇党政办公室</p>
<p>网站标识码：4406050000　粤ICP备05012345号　粤公网安备 44060502000123号</p>
<p>扫一扫在手机打开当前页</p></div>
<script>var _hmt=_hmt||[];(function(){var hm=document.createElement("script");hm.src="/stat.js";})();</script>
<script>document.write('站长统计');</script>
"""


def saved_page(title: str, published: str, body: list[str], sign: list[str]) -> str:
    """A government site's article page as a browser saves it: chrome around the report."""
    paras = []
    for line in body:
        text = html.escape(line)
        paras.append(f"<p><strong>{text}</strong></p>" if _heading_level(line) else f"<p>　　{text}</p>")
    paras += [f'<p style="text-align:right">{html.escape(s)}</p>' for s in sign]
    return (
        '<!DOCTYPE html>\n<html><head><meta http-equiv="Content-Type" content="text/html; charset=gbk">\n'
        f"<title>{title}_佛山市南海区狮山镇人民政府</title>\n"
        '<meta name="keywords" content="法治政府"><link rel="stylesheet" href="/css/main.css"></head>\n<body>\n'
        + CHROME_HEAD
        + f'<div class="article"><h1>{title}</h1>\n'
        f'<div class="info">来源：狮山镇司法所　发布时间：{published} 09:30　浏览次数：1024　'
        "字体：[<a>大</a>] [<a>中</a>] [<a>小</a>]</div>\n"
        '<div class="content" id="zoom">\n' + "\n".join(paras) + "\n</div></div>\n" + CHROME_FOOT + "</body></html>\n"
    )


def print_page(title: str, published: str, body: list[str], sign: list[str]) -> str:
    """The report as a clean page for printing: Chromium adds the running header and page numbers."""
    paras = []
    for line in body:
        tag = "h2" if _heading_level(line) == 1 else "h3" if _heading_level(line) else "p"
        paras.append(f"<{tag}>{html.escape(line)}</{tag}>")
    paras += [f'<p class="sign">{html.escape(s)}</p>' for s in sign]
    style = (
        "body{font-family:'Noto Serif CJK SC','Noto Sans CJK SC',serif;font-size:16pt;line-height:1.7;margin:0 1cm}"
        "h1{font-size:20pt;text-align:center}h2,h3{font-size:16pt}p{text-indent:2em;margin:0}.sign{text-align:right}"
    )
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{title}</title><style>{style}</style></head>'
        f"<body><h1>{title}</h1>\n<p>发布时间：{published}</p>\n" + "\n".join(paras) + "\n</body></html>\n"
    )


def chromium_pdf(page: str, out: Path, *extra: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "report.html"
        src.write_text(page, encoding="utf-8")
        subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", *extra, f"--print-to-pdf={out}", src.as_uri()],
            check=True, capture_output=True, timeout=120,
        )


def encrypted_copies(pdf: Path) -> None:
    """The printed report with an owner password only (opens without one) and with a user password."""
    from pypdf import PdfReader, PdfWriter

    for name, user in (("owner-password.pdf", ""), ("user-password.pdf", "open-sesame")):
        writer = PdfWriter(clone_from=PdfReader(pdf))
        writer.encrypt(user_password=user, owner_password="owner-secret", algorithm="RC4-128")
        with (HERE / name).open("wb") as f:
            writer.write(f)


def word_document(title: str, published: str, body: list[str], sign: list[str]) -> bytes:
    """A .docx whose heading numbers 一、 and （一） come from Word's automatic numbering, not the text."""
    from docx import Document

    doc = Document()
    num_id = _chinese_numbering(doc)
    doc.add_paragraph(title, style="Title")
    doc.add_paragraph(f"发布时间：{published}")
    for line in body:
        level = _heading_level(line)
        if not level:
            doc.add_paragraph(line)
            continue
        text = re.sub(r"^([一二三四五六七八九十]+、|（[一二三四五六七八九十]+）)", "", line)
        para = doc.add_paragraph(text, style=f"Heading {level}")
        _number(para, num_id, level - 1)
    for s in sign:
        doc.add_paragraph(s)
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


def old_word_document(title: str, published: str, body: list[str], sign: list[str], out: Path) -> None:
    """A Word 97-2003 .doc as most old reports are: 一、 and （一） typed into heading-styled paragraphs,
    written by python-docx as a .docx and saved as .doc by LibreOffice (its MS Word 97 filter)."""
    from docx import Document

    doc = Document()
    props = doc.core_properties
    props.title, props.author, props.comments = title, "kb test fixture", "made up for kb's tests"
    doc.add_paragraph(title, style="Title")
    doc.add_paragraph(f"发布时间：{published}")
    for line in body:
        level = _heading_level(line)
        doc.add_paragraph(line, style=f"Heading {level}" if level else None)
    for s in sign:
        doc.add_paragraph(s)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / f"{out.stem}.docx"
        doc.save(str(src))
        subprocess.run(
            [SOFFICE, f"-env:UserInstallation={Path(tmp, 'profile').as_uri()}", "--headless", "--convert-to",
             "doc:MS Word 97", "--outdir", tmp, str(src)],
            check=True, capture_output=True, timeout=300,
        )
        out.write_bytes((Path(tmp) / f"{out.stem}.doc").read_bytes())


def _chinese_numbering(doc) -> str:  # type: ignore[no-untyped-def]
    from docx.oxml import parse_xml
    from docx.oxml.ns import nsdecls

    numbering = doc.part.numbering_part.element
    abstract = parse_xml(
        f'<w:abstractNum {nsdecls("w")} w:abstractNumId="90">'
        '<w:multiLevelType w:val="multilevel"/>'
        '<w:lvl w:ilvl="0"><w:start w:val="1"/><w:numFmt w:val="chineseCounting"/>'
        '<w:suff w:val="nothing"/><w:lvlText w:val="%1、"/><w:lvlJc w:val="left"/></w:lvl>'
        '<w:lvl w:ilvl="1"><w:start w:val="1"/><w:numFmt w:val="chineseCounting"/>'
        '<w:suff w:val="nothing"/><w:lvlText w:val="（%2）"/><w:lvlJc w:val="left"/></w:lvl>'
        "</w:abstractNum>"
    )
    first_num = numbering.find(abstract.tag.replace("abstractNum", "num"))
    if first_num is not None:
        first_num.addprevious(abstract)  # abstractNum elements come before num elements
    else:
        numbering.append(abstract)
    numbering.append(parse_xml(f'<w:num {nsdecls("w")} w:numId="90"><w:abstractNumId w:val="90"/></w:num>'))
    return "90"


def _number(para, num_id: str, ilvl: int) -> None:  # type: ignore[no-untyped-def]
    from docx.oxml import parse_xml
    from docx.oxml.ns import nsdecls

    ppr = para._p.get_or_add_pPr()
    ppr.append(parse_xml(f'<w:numPr {nsdecls("w")}><w:ilvl w:val="{ilvl}"/><w:numId w:val="{num_id}"/></w:numPr>'))


def svg_only_page() -> str:
    """A page of drawn shapes and no text: printed, a PDF with no text layer, as a scan is."""
    rects = "".join(f'<rect x="40" y="{60 + 40 * i}" width="{500 - 17 * i}" height="18" fill="#444"/>' for i in range(20))
    return f'<!DOCTYPE html><html><body><svg width="600" height="900">{rects}</svg></body></html>'


NAV_ONLY = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>政务公开_狮山镇人民政府</title></head><body>
<ul class="nav"><li><a href="/">首页</a></li><li><a href="/zwgk">政务公开</a></li><li><a href="/bs">政务服务</a></li></ul>
<div class="crumb">您当前的位置：<a href="/">首页</a> &gt; <a href="/zwgk">政务公开</a></div>
<ul class="list"><li><a href="/a1">狮山镇2022年法治政府建设年度报告</a></li><li><a href="/a2">狮山镇2021年法治政府建设年度报告</a></li>
<li><a href="/a3">关于开展法治宣传教育的通知</a></li></ul>
<div class="footer">主办：佛山市南海区狮山镇人民政府　粤ICP备05012345号</div></body></html>
"""


def main() -> None:
    old_word_document(*twin_parts("twin-doc.txt"), HERE / "report.doc")
    if sys.argv[1:] == ["doc"]:
        return
    title, published, body, sign = twin_parts()
    (HERE / "report.html").write_bytes(saved_page(title, published, body, sign).encode("gbk"))
    (HERE / "nav-only.html").write_text(NAV_ONLY, encoding="utf-8")
    chromium_pdf(print_page(title, published, body, sign), HERE / "report.pdf")
    chromium_pdf(svg_only_page(), HERE / "scanned.pdf", "--no-pdf-header-footer")
    encrypted_copies(HERE / "report.pdf")
    (HERE / "report.docx").write_bytes(word_document(title, published, body, sign))


if __name__ == "__main__":
    main()
