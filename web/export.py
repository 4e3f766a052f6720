"""/export.csv: the passages of a result set as a spreadsheet."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response

from web import views
from web.holder import searcher
from web.params import run_search, search_args

bp = Blueprint("export", __name__)

CSV_COLUMNS = ("locality", "region", "year", "kind", "section_path", "text", "score", "chunk_id", "source")


# A cell that starts like a formula is evaluated by Excel and LibreOffice (=HYPERLINK(…) leaks data): as
# OWASP recommends, such a text cell gets a leading apostrophe, in every column (titles and file names too).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _inert(*cells: Any) -> list[Any]:
    return ["'" + c if isinstance(c, str) and c.startswith(_FORMULA_START) else c for c in cells]


def _csv(rows: Iterable[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(CSV_COLUMNS)
    for r in rows:
        w.writerow(
            _inert(
                r.get("locality") or "",
                r.get("region") or "",
                r.get("year") or "",
                r.get("kind") or "",
                " › ".join(r.get("section_path") or []),
                r.get("text") or "",
                r.get("score"),
                r.get("chunk_id"),
                r.get("source"),
            )
        )
    return "\ufeff" + buf.getvalue()  # BOM: Excel reads UTF-8 as the local code page without it


def _content_disposition(name: str) -> str:
    ascii_name = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "kb-export.csv"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"


@bp.get("/export.csv")
def export_csv() -> Any:
    s = searcher()
    q, k, filters, mode = search_args(s)
    out = run_search(s, q, k, filters, mode)
    rows = (r for grp in views.display_groups(out, filters) for r in grp["results"])  # as the page shows them
    resp = Response(_csv(rows), mimetype="text/csv")
    resp.headers["Content-Type"] = "text/csv; charset=utf-8"
    resp.headers["Content-Disposition"] = _content_disposition(f"kb-{out['normalized_query'][:40]}.csv")
    return resp
