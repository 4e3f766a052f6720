"""Request → values: each query parameter read and checked, every error naming the parameter at fault."""

from __future__ import annotations

import re
from typing import Any

from flask import request, url_for

from kb.errors import NotFound
from kb.ids import DOC_ID_RE, resolve_doc_id
from kb.search import Filters, Searcher, parse_filters, parse_k
from web.errors import HttpError, param
from web.holder import generation

MODES = ("hybrid", "dense", "bm25")
FORM_FIELDS = ("q", "k", "locality", "year", "region", "province", "kind")
MAX_PAGE = 10_000
MAX_PER_LOCALITY = 10  # passages per locality, on the similar page and /api/similar alike
_HL = re.compile(r"^(\d{1,9})-(\d{1,9})$")


def arg(name: str) -> str | None:
    """A parameter's value stripped; None when it is absent or blank."""
    v = request.args.get(name)
    return v if v is None else v.strip() or None


def int_arg(name: str, lo: int, hi: int, default: int) -> int:
    value = request.args.get(name)
    if value is None or value.strip() == "":
        return default
    text = value.strip()
    if not re.fullmatch(r"[+]?\d{1,9}", text) or not lo <= int(text) <= hi:
        raise HttpError(400, f"{name} must be a whole number from {lo} to {hi}; got {value!r}", param=name)
    return int(text)


def bool_arg(name: str) -> bool:
    value = request.args.get(name)
    if value is None or value.strip() == "":
        return False
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise HttpError(400, f"{name} must be true or false (1/0, yes/no); got {value!r}", param=name)


def k_arg() -> int:
    """k, parsed as `kb search -k` parses it."""
    with param("k"):
        return parse_k(request.args.get("k"))


def filters_arg(s: Searcher) -> Filters:
    """Each filter validated on its own, so an error names the parameter at fault."""
    values: dict[str, Any] = {}
    for name in ("locality", "year", "region", "province", "kind"):
        raw = arg(name)
        if raw is None:
            continue
        with param(name):
            values[name] = getattr(parse_filters(s.reader, **{name: raw}), name)
    return Filters(**values)


def search_args(s: Searcher) -> tuple[str, int, Filters, str]:
    """q, k, filters and mode of a search."""
    q = request.args.get("q")
    if q is None:
        raise HttpError(400, "parameter q is required: a topic such as 行政复议 or 'legal aid'", param="q")
    k = k_arg()
    filters = filters_arg(s)
    mode = arg("mode") or "hybrid"
    if mode not in MODES:
        raise HttpError(400, f"unknown mode {mode!r}; valid modes: {', '.join(MODES)}", param="mode")
    return q, k, filters, mode


def run_search(s: Searcher, q: str, k: int, filters: Filters, mode: str = "hybrid") -> dict[str, Any]:
    """The search, with the library's complaints about the query attributed to q."""
    with param("q"):
        return s.search(q, k=k, filters=filters, mode=mode)


def similar_args(s: Searcher) -> tuple[int, int, bool, Filters]:
    """k, per_locality, same_locality and the filters of a similar-passages view."""
    return k_arg(), int_arg("per_locality", 1, MAX_PER_LOCALITY, 1), bool_arg("same_locality"), filters_arg(s)


def hl_arg(text_len: int) -> tuple[int, int] | None:
    """The passage to mark in a document: hl=START-END, offsets into its cleaned text."""
    raw = arg("hl")
    if raw is None:
        return None
    m = _HL.match(raw)
    if not m or not 0 <= int(m.group(1)) < int(m.group(2)) <= text_len:
        raise HttpError(
            400,
            f"hl must be START-END with 0 <= START < END <= {text_len} (offsets into this report); got {raw!r}",
            param="hl",
        )
    return int(m.group(1)), int(m.group(2))


def doc_arg(doc_id: str) -> str:
    """A document id from the index (exact, or a unique prefix like 003); anything else is a 404."""
    if not DOC_ID_RE.match(doc_id):
        raise HttpError(404, f"unknown document {doc_id!r}", param="doc_id")
    docs = generation().documents()
    try:
        return resolve_doc_id(doc_id, [d["doc_id"] for d in docs], [d["source"] for d in docs])
    except NotFound as exc:
        raise HttpError(404, str(exc), param="doc_id") from exc


def form_state() -> dict[str, str]:
    """What was typed into the search form, to show it again."""
    return {name: (request.args.get(name) or "").strip() for name in FORM_FIELDS}


def export_args() -> dict[str, Any]:
    """The parameters that define a result set, for links to it elsewhere (CSV, JSON, compare)."""
    return {k: v for k in (*FORM_FIELDS, "mode") if (v := (request.args.get(k) or "").strip())}


# The parameters a page's links carry over. Only these: any other name would reach url_for, which reads
# `_external`, `_anchor`, `_method`, `_scheme` itself (links to whatever Host: says) and clashes with
# `endpoint` and the route's own arguments (500s).
LINK_PARAMS = (*FORM_FIELDS, "mode", "page", "per_locality", "same_locality", "hl")


def link_args() -> dict[str, Any]:
    """This request's known parameters, non-empty, for links and redirects."""
    return {k: v for k in LINK_PARAMS if (v := request.args.get(k)) not in ("", None)}


def query_url(endpoint: str, **changes: Any) -> str:
    """This request's URL with some parameters changed (None drops one), at `endpoint`."""
    args: dict[str, Any] = link_args()
    for k, v in changes.items():
        if v is None:
            args.pop(k, None)
        else:
            args[k] = v
    return url_for(endpoint, **args)
