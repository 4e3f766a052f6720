"""The app factory: settings → a Flask app with the pages, export and API blueprints, hooks, Jinja globals."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, Response, g, request, url_for

from kb.embed import get_embedder
from kb.search import MAX_QUERY_CHARS
from web import api, errors, export, pages, render, upload
from web.errors import MAX_BODY, HttpError, check_raw_request, zh_message
from web.holder import SearcherHolder, app_holder, open_searcher, release_generation
from web.hosts import is_trusted
from web.settings import Settings, current_settings, request_body_limit

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


def _holder(settings: Settings) -> SearcherHolder:
    if settings.searcher is not None:
        searcher, owned = settings.searcher, settings.own_searcher
    else:
        searcher, owned = open_searcher(Path(settings.index), get_embedder(settings.model)), True
    return SearcherHolder(searcher, owned=owned, check_interval=settings.check_interval)


def create_app(settings: Settings | Mapping[str, Any] | None = None) -> Flask:
    """The web app over one index; the index is loaded here, once, and swapped when a rebuild replaces it."""
    if settings is None:
        settings = Settings()
    elif not isinstance(settings, Settings):
        settings = Settings.from_mapping(settings)
    app = Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=request_body_limit(settings, MAX_BODY), **settings.extra)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["kb"] = _holder(settings)
    app.extensions["kb_settings"] = settings
    _register_globals(app)
    _register_hooks(app)
    errors.init_app(app)
    for bp in (pages.bp, export.bp, api.bp, upload.bp):
        app.register_blueprint(bp)
    return app


def _register_globals(app: Flask) -> None:
    static = Path(app.static_folder or "")
    # a hash of each static file in its URL, so a changed file is never served from a stale browser cache
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
        passage_html=render.passage_html,
        doc_href=render.doc_href,
        bar_class=render.bar_class,
        MAX_QUERY_CHARS=MAX_QUERY_CHARS,
        zh_message=zh_message,
        upload_on=lambda: current_settings().allow_upload,
    )


def _start() -> None:
    g.t0 = time.perf_counter()
    # before anything reads request.host: a page under a name the server does not know (DNS rebinding) gets
    # nothing but the error, whose message does not repeat that name
    if not is_trusted(request.environ.get("HTTP_HOST"), current_settings().trusted_hosts):
        raise HttpError(
            400, "this server does not answer to the host name in the request; add it with kb serve"
            " --trusted-host NAME (or $KB_TRUSTED_HOSTS), or open the server by its address or localhost",
            code="untrusted_host",
        )
    check_raw_request(request.environ, request.query_string)
    # only the upload route takes a large body (and only while upload is on); every other route a small one
    limit = request_body_limit(current_settings(), MAX_BODY) if request.path == "/upload/files" else MAX_BODY
    g.body_limit = request.max_content_length = limit
    if (request.content_length or 0) > limit:
        raise HttpError(413, f"the request body is {request.content_length} bytes; the limit is {limit}")


def _headers(resp: Response) -> Response:
    for k, v in SECURITY_HEADERS.items():
        resp.headers.setdefault(k, v)
    t0 = g.get("t0")
    if t0 is not None:
        resp.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - t0) * 1000:.1f}"
    return resp


def _site() -> dict[str, Any]:
    """The footer's index facts, from this request's version (or the current one, if none was taken)."""
    gen = g.get("kb_gen") or app_holder().current
    try:
        docs = len(gen.documents())
    except Exception:  # the footer must never turn an error page into a 500
        return {"site": None}
    reader = gen.searcher.reader
    return {
        "site": {"version": reader.version, "documents": docs, "chunks": reader.n_chunks, "model": reader.model_id}
    }


def _register_hooks(app: Flask) -> None:
    app.before_request(_start)
    app.after_request(_headers)
    app.teardown_request(release_generation)
    app.context_processor(_site)
