"""The JSON API under /api: search, similar, documents, health and the OpenAPI document."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request, url_for

from web.errors import HttpError, param
from web.holder import app_holder, generation, searcher
from web.openapi import openapi_document
from web.params import arg, doc_arg, run_search, search_args, similar_args

bp = Blueprint("api", __name__, url_prefix="/api")

# the shape of `kb show --json`: the summary, then encoding, headline, text, sections, repair_log
DOC_KEYS = ("doc_id", "source", "title", "locality", "level", "region", "province", "year", "published",
            "repairs", "encoding", "headline", "text", "sections", "repair_log")


@bp.get("/search")
def api_search() -> Any:
    s = searcher()
    q, k, filters, mode = search_args(s)
    return jsonify(run_search(s, q, k, filters, mode))


@bp.get("/similar")
def api_similar() -> Any:
    chunk_id, text = arg("id"), request.args.get("text")
    if (chunk_id is None) == (text is None):
        raise HttpError(400, "give either id (a passage id from search results) or text, not both", param="id")
    s = searcher()
    k, per, same, filters = similar_args(s)
    with param("id" if chunk_id is not None else "text"):
        out = s.similar(
            chunk_id=chunk_id, text=text, k=k, per_locality=per, include_same_locality=same, filters=filters
        )
    return jsonify(out)


@bp.get("/docs")
def api_docs() -> Any:
    return jsonify(searcher().reader.documents())


@bp.get("/docs/<doc_id>")
def api_doc(doc_id: str) -> Any:
    doc = searcher().reader.document(doc_arg(doc_id))
    if doc is None:
        raise HttpError(404, f"unknown document {doc_id!r}", param="doc_id")
    return jsonify({k: doc.get(k) for k in DOC_KEYS} | {k: v for k, v in doc.items() if k not in DOC_KEYS})


@bp.get("/health")
def api_health() -> Any:
    gen = generation()
    reader, docs, holder = gen.searcher.reader, gen.documents(), app_holder()
    m = reader.manifest
    problems = reader.problems()
    if problems:  # the files changed under the live version: pages would fail, so health does too
        raise HttpError(503, f"index {reader.version} is damaged: {'; '.join(problems)}; rebuild with `kb build --full`")
    return jsonify(
        {
            "status": "ok",
            "index": {
                "version": reader.version,
                "built_at": m.get("built_at"),
                "model_id": reader.model_id,
                "format_version": m.get("format_version"),
                "dense": m.get("dense"),
                "counts": m.get("counts"),
            },
            "model": gen.searcher.embedder.model_id,
            "documents": len(docs),
            "chunks": reader.n_chunks,
            "localities": len({d.get("locality") for d in docs}),
            "swaps": holder.swaps,
            "reload_error": holder.last_error,
            # the report files the build left out, each with the reason
            "skipped": m.get("build_info", {}).get("skipped", []),
        }
    )


@bp.get("/openapi.json")
def api_openapi() -> Any:
    return jsonify(openapi_document(request.host_url.rstrip("/")))


@bp.get("")
@bp.get("/")
def api_index() -> Any:
    return jsonify(
        {
            "openapi": url_for("api.api_openapi"),
            "endpoints": ["/api/search", "/api/similar", "/api/docs", "/api/docs/{doc_id}", "/api/health"],
        }
    )
