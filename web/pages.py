"""The HTML pages: search, compare, similar measures, the report list and one report."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from flask import Blueprint, Response, g, redirect, render_template, request, url_for

from kb.search import Filters
from web import files, render, views
from web.errors import HttpError, param
from web.holder import generation, searcher
from web.params import (
    MAX_PAGE,
    doc_arg,
    export_args,
    filters_arg,
    form_state,
    hl_arg,
    int_arg,
    k_arg,
    link_args,
    query_url,
    run_search,
    search_args,
    similar_args,
)
from web.settings import current_settings

bp = Blueprint("pages", __name__)
T = TypeVar("T")

EXAMPLES = ["行政复议", "如何化解基层矛盾纠纷", "legal aid", "府院联动", "綜合行政執法改革"]
COMPARE_EXAMPLES = ["法律援助", "行政复议", "矛盾纠纷化解"]
MAX_TOPICS = 3
_FILTER_NAMES = (("locality", "地区"), ("year", "年份"), ("province", "省份"), ("region", "区域"), ("kind", "章节"))


def _result_links(k: int, filters: Filters, page: int, pages: int) -> dict[str, Any]:
    """The links around a page of results: previous/next page, a locality's other passages, filters to drop,
    and the same result set as compare, CSV and JSON."""
    here = "pages.search_page"
    return {
        "prev_url": query_url(here, page=page - 1 if page > 2 else None) if page > 1 else None,
        "next_url": query_url(here, page=page + 1) if page < pages else None,
        "more_url": lambda loc: query_url(here, locality=loc, page=None, k=max(k, 10)),
        "active_filters": [
            (label, views.filter_label(name, value), query_url(here, **{name: None, "page": None}))
            for name, label in _FILTER_NAMES
            if (value := getattr(filters, name)) is not None
        ],
        "compare_url": url_for("pages.compare_page", **export_args()),
        "csv_url": url_for("export.export_csv", **export_args()),
        "json_url": url_for("api.api_search", **export_args()),
    }


@bp.get("/")
def search_page() -> Any:
    gen = generation()
    s = gen.searcher
    ctx: dict[str, Any] = {
        "form": form_state(),
        "options": views.filter_options(gen.documents()),
        "examples": EXAMPLES,
        "out": None,
        "docs": gen.documents(),
    }
    g.error_page = ("search.html", ctx)
    if request.args.get("q") is None:
        return render_template("search.html", **ctx)
    q, k, filters, mode = search_args(s)
    page = int_arg("page", 1, MAX_PAGE, 1)
    out = run_search(s, q, k, filters, mode)
    groups = views.display_groups(out, filters)
    page_size = max(1, int(current_settings().page_size))
    pages = max(1, -(-len(groups) // page_size))
    if page > pages:
        raise HttpError(400, f"page must be from 1 to {pages} for this search; got {page}", param="page")
    first = (page - 1) * page_size
    ctx.update(
        out=out,
        groups=groups[first : first + page_size],
        n_groups=len(groups),
        first=first,
        page=page,
        pages=pages,
        flt=filters,
        **_result_links(k, filters, page, pages),
    )
    return render_template("search.html", **ctx)


def _compare_exports(topics: list[str], outs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per topic: its result set and the links to it as CSV, JSON and a search."""
    base: dict[str, Any] = {k: v for k, v in export_args().items() if k != "q"}
    return [
        {
            "topic": t,
            "out": out,
            "matched": len(out["by_locality"]),
            "csv": url_for("export.export_csv", q=t, **base),
            "json": url_for("api.api_search", q=t, **base),
            "search": url_for("pages.search_page", q=t, **base),
        }
        for t, out in zip(topics, outs, strict=True)
    ]


@bp.get("/compare")
def compare_page() -> Any:
    gen = generation()
    topics = [t.strip() for t in request.args.getlist("q") if t.strip()][:MAX_TOPICS]
    ctx: dict[str, Any] = {
        "form": form_state(),
        "topics": topics,
        "topic_inputs": (topics + [""] * MAX_TOPICS)[:MAX_TOPICS],
        "options": views.filter_options(gen.documents()),
        "examples": COMPARE_EXAMPLES,
        "rows": None,
    }
    g.error_page = ("compare.html", ctx)
    if not request.args.getlist("q"):
        return render_template("compare.html", **ctx)
    if not topics:
        raise HttpError(400, "type at least one topic, such as 法律援助", param="q")
    k = k_arg()
    filters = filters_arg(gen.searcher)
    outs = [run_search(gen.searcher, t, k, filters) for t in topics]
    rows = views.compare_rows(gen.documents(), outs)
    ctx.update(rows=rows, exports=_compare_exports(topics, outs), n_scope=len(rows))
    return render_template("compare.html", **ctx)


@bp.get("/similar/<chunk_id>")
def similar_page(chunk_id: str) -> Any:
    s = searcher()
    k, per, same, filters = similar_args(s)
    with param("chunk_id"):
        out = s.similar(chunk_id=chunk_id, k=k, per_locality=per, include_same_locality=same, filters=filters)
    return render_template(
        "similar.html",
        out=out,
        src=out["source_passage"],
        per=per,
        same=same,
        toggle_url=lambda **kw: query_url("pages.similar_page", chunk_id=chunk_id, **kw),
    )


@bp.get("/docs")
def docs_page() -> Any:
    return render_template("docs.html", docs=generation().documents())


@bp.get("/doc/<doc_id>")
def doc_page(doc_id: str) -> Any:
    gen = generation()
    reader = gen.searcher.reader
    real = doc_arg(doc_id)
    if real != doc_id:
        return redirect(url_for("pages.doc_page", doc_id=real, **link_args()), code=302)
    doc = reader.document(real)
    if doc is None:  # removed between the two reads by an index swap
        raise HttpError(404, f"unknown document {doc_id!r}", param="doc_id")
    hl = hl_arg(len(doc["text"]))
    chunks = reader.doc_chunks(real)
    paras = render.render_document(doc["text"], doc["sections"], [c["start"] for c in chunks], hl)
    # the repair log is rendered once per version: a version's documents never change
    repair_groups = gen.memo(
        ("repair_groups", real), lambda: views.repair_groups(doc["text"], doc["repair_log"], paras)
    )
    hl_passage = None
    if hl:
        hl_passage = next((c for c in chunks if c["start"] == hl[0] and c["end"] == hl[1]), None)
    return render_template(
        "doc.html",
        doc=doc,
        paras=paras,
        toc=render.toc(doc["sections"]),
        repair_groups=repair_groups,
        hl=hl,
        hl_passage=hl_passage,
        n_chunks=len(chunks),
        fmt_label=files.format_label(files.format_of(doc["source"])),
        extraction=files.extraction_notes(doc),
    )


def _read(doc_id: str, read: Callable[[str], T | None]) -> tuple[str, T]:
    """The canonical id and what `read` gives for it; 404 when the document is unknown."""
    real = doc_arg(doc_id)
    value = read(real)
    if value is None:
        raise HttpError(404, f"unknown document {doc_id!r}", param="doc_id")
    return real, value


@bp.get("/doc/<doc_id>/original")
def doc_original(doc_id: str) -> Any:
    """The report's file as it sits in seeds/ (a text or PDF shown, a saved page or Word file downloaded)."""
    _, doc = _read(doc_id, searcher().reader.document)
    return files.original_response(Path(current_settings().seeds), doc)


@bp.get("/doc/<doc_id>/raw")
def doc_raw(doc_id: str) -> Any:
    real, raw = _read(doc_id, searcher().reader.raw_text)
    resp = Response(raw, mimetype="text/plain")
    resp.headers["Content-Type"] = "text/plain; charset=utf-8"
    resp.headers["Content-Disposition"] = f'inline; filename="{real}.raw.txt"'
    return resp
