"""One error type for the web layer, raw-input checks, and the error handlers: one JSON shape for /api."""

from __future__ import annotations

import contextlib
import logging
import re
import unicodedata
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote_to_bytes

from flask import Flask, Response, g, jsonify, render_template, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from kb.errors import KbError
from kb.search import MAX_QUERY_CHARS

log = logging.getLogger("kb.web")

CODES = {
    400: "bad_request",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    408: "request_timeout",
    411: "length_required",
    413: "payload_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    429: "too_many_requests",
    431: "request_header_fields_too_large",
    500: "internal_error",
    501: "not_implemented",
    503: "unavailable",
}

# The longest query string a page needs: /compare's three topics (pages.MAX_TOPICS) of MAX_QUERY_CHARS each,
# percent-encoded at up to 12 bytes a character (4 UTF-8 bytes, each %XX), plus room for the filters. 8 KB,
# the limit once, refused three topics of 500 Chinese characters (P8) though each was within its own limit.
MAX_QUERY_STRING = 3 * MAX_QUERY_CHARS * 12 + 6 * 1024  # 24,144 bytes
MAX_PATH = 2048
MAX_BODY = 64 * 1024  # no route takes a body; anything larger is refused before it is read

# Control characters (tab, line feed and carriage return excepted: pasted text carries them), surrogates
# and non-characters.
_BAD_CHAR = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff]")
_BAD_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")


class HttpError(Exception):
    """An error answered with `status`; `param` names the query parameter at fault, if one is."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code or CODES.get(status, "error")

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {"status": self.status, "code": self.code, "message": self.message}
        if self.param is not None:
            err["param"] = self.param
        return {"error": err}


@contextlib.contextmanager
def param(name: str) -> Iterator[None]:
    """Turn a KbError raised while handling one parameter into an HttpError naming that parameter."""
    try:
        yield
    except KbError as exc:
        raise HttpError(exc.http_status, str(exc), param=name, code=exc.code) from exc


def _describe(ch: str) -> str:
    return f"U+{ord(ch):04X}" + (f" {unicodedata.name(ch)}" if unicodedata.name(ch, "") else "")


def check_text(value: str, what: str, param_name: str | None) -> None:
    m = _BAD_CHAR.search(value)
    if m:
        raise HttpError(
            400,
            f"{what} contains a control or invalid character ({_describe(m.group())}) at position {m.start()};"
            " remove it and try again",
            param=param_name,
        )


def check_raw_request(environ: dict[str, Any], query_string: bytes) -> None:
    """Refuse, before any route runs, URLs that are not clean UTF-8 text: undecodable bytes, lone
    surrogates, invalid percent-escapes, control characters, or ones too long to be a real query."""
    raw_path = environ.get("PATH_INFO", "") or ""
    if len(raw_path) > MAX_PATH:
        raise HttpError(414, f"the URL path is {len(raw_path)} bytes long; the limit is {MAX_PATH}")
    try:
        path = raw_path.encode("latin-1").decode("utf-8")
    except UnicodeError:
        raise HttpError(400, "the URL path is not valid UTF-8 (a lone surrogate or a broken byte sequence)") from None
    check_text(path, "the URL path", None)
    # Some servers (and werkzeug's test client) have already decoded PATH_INFO with replacement characters;
    # the request line as sent, where the server keeps it, still has the original bytes.
    raw_uri = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw_uri:
        raw_uri_path = raw_uri.split("?", 1)[0]
        if _BAD_ESCAPE.search(raw_uri_path.encode("latin-1", "replace")):
            raise HttpError(400, "the URL path has an invalid percent-escape (use %XX with two hex digits)")
        try:
            check_text(unquote_to_bytes(raw_uri_path).decode("utf-8"), "the URL path", None)
        except UnicodeDecodeError:
            raise HttpError(
                400, "the URL path is not valid UTF-8 (a lone surrogate or a broken byte sequence)"
            ) from None
    if len(query_string) > MAX_QUERY_STRING:
        raise HttpError(
            414, f"the query string is {len(query_string)} bytes long; the limit is {MAX_QUERY_STRING}"
        )
    for part in query_string.split(b"&"):
        if not part:
            continue
        raw_name, _, raw_value = part.partition(b"=")
        name = unquote_to_bytes(raw_name.replace(b"+", b" ")).decode("utf-8", "replace")
        if _BAD_ESCAPE.search(part):
            raise HttpError(400, f"parameter {name!r} has an invalid percent-escape (use %XX with two hex digits)", name)
        for piece, what in ((raw_name, "a parameter name"), (raw_value, f"parameter {name!r}")):
            try:
                text = unquote_to_bytes(piece.replace(b"+", b" ")).decode("utf-8")
            except UnicodeDecodeError:
                raise HttpError(
                    400, f"{what} is not valid UTF-8 (a lone surrogate or a broken byte sequence)", name
                ) from None
            check_text(text, what, name)


_ZH_BY_PARAM = {
    "q": "检索词有误",
    "k": "条数 k 须为 1 到 100 之间的整数",
    "locality": "没有这个地区的报告",
    "year": "年份无效，或没有该年份的报告",
    "region": "没有这个区域的报告",
    "kind": "章节类型无效（可选：成效、问题、计划）",
    "page": "页码超出范围",
    "mode": "检索模式无效（hybrid、dense、bm25）",
    "hl": "段落位置无效",
    "id": "段落编号无效",
    "chunk_id": "没有这个段落",
    "doc_id": "没有这份报告",
    "per_locality": "每地段落数须为 1 到 10 之间的整数",
    "same_locality": "same_locality 须为 true 或 false",
}


def zh_message(err: HttpError) -> str:
    """A short Chinese lead for an error; the English message (with the bad and valid values) follows it."""
    msg = err.message
    if err.param == "q" and msg.startswith("query is empty"):
        return "请输入要检索的主题，例如「行政复议」或「legal aid」"
    if err.param == "q" and "characters long" in msg:
        return f"检索词过长，最多 {msg.rsplit(' ', 1)[-1]} 个字符"
    if "control or invalid character" in msg or "not valid UTF-8" in msg or "percent-escape" in msg:
        return "链接中含有无效字符"
    if err.code == "untrusted_host":
        return "服务器不接受以此主机名访问"
    if err.param in _ZH_BY_PARAM:
        return _ZH_BY_PARAM[err.param]
    return {
        403: "请求未通过安全校验，请刷新页面后重试",
        404: "没有找到该页面或资源",
        405: "不支持该请求方法",
        413: "请求内容过大",
        414: "链接过长",
        415: "文件类型不支持",
        500: "服务器内部错误",
    }.get(err.status, "请求有误")


# ----------------------------------------------------------------------------- handlers


def _is_api() -> bool:
    # /upload/files and /upload/status are what the upload page's script calls: JSON like the API
    return request.path == "/api" or request.path.startswith(("/api/", "/upload/"))


def error_response(err: HttpError) -> Response:
    """The one JSON shape on /api routes; on pages, the error in the page's own form or on the error page."""
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


def _http_error(exc: HttpError) -> Response:
    return error_response(exc)


def _kb_error(exc: KbError) -> Response:
    return error_response(HttpError(exc.http_status, str(exc), code=exc.code))


def _werkzeug_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    messages = {
        404: f"no such page or resource: {request.path}",
        405: f"{request.method} is not allowed on {request.path}",
        413: f"the request body is too large; the limit is {g.get('body_limit', MAX_BODY)} bytes",
    }
    resp = error_response(HttpError(status, messages.get(status, exc.description or exc.name)))
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        resp.headers["Allow"] = ", ".join(exc.valid_methods)
    return resp


def _unexpected(exc: Exception) -> Response:
    log.exception("kb: unexpected error on %s", request.path)
    return error_response(HttpError(500, "internal error; the server log has the details"))


def init_app(app: Flask) -> None:
    """Answer every error, ours, the library's, werkzeug's or an unexpected one, through error_response."""
    app.register_error_handler(HttpError, _http_error)
    app.register_error_handler(KbError, _kb_error)
    app.register_error_handler(HTTPException, _werkzeug_error)
    app.register_error_handler(Exception, _unexpected)
