"""The OpenAPI 3 description of the JSON API (served at /api/openapi.json): data, and one function."""

from __future__ import annotations

from typing import Any

from kb.model import KINDS
from kb.search import MAX_K, MAX_QUERY_CHARS
from web.params import MAX_PER_LOCALITY, MODES


def _q(name: str, description: str, schema: dict[str, Any], required: bool = False, example: Any = None) -> dict[str, Any]:
    p: dict[str, Any] = {"name": name, "in": "query", "required": required, "description": description, "schema": schema}
    if example is not None:
        p["example"] = example
    return p


_STR = {"type": "string"}
_NULL_STR = {"type": ["string", "null"]}
_NULL_INT = {"type": ["integer", "null"]}

FILTER_PARAMS = [
    _q("locality", "Only this locality (substring match, e.g. 阜沙 finds 阜沙镇).", {"type": "string", "maxLength": 100}),
    _q("year", "Only reports of this year (four digits).", {"type": "string", "pattern": "^[0-9]{4}$"}, example="2023"),
    _q("region", "Only this region: any level of the locality's chain (substring match, e.g. 广东省, 中山市, 白云区).", {"type": "string", "maxLength": 100}),
    _q("province", "Only this province (substring match, e.g. 广东省, 重庆).", {"type": "string", "maxLength": 100}),
    _q("kind", "Only passages from this kind of section.", {"type": "string", "enum": list(KINDS)}),
]

RESULT = {
    "type": "object",
    "required": ["chunk_id", "doc_id", "source", "locality", "year", "section_path", "kind", "text", "score"],
    "properties": {
        "chunk_id": {"type": "string", "description": "Passage id; use with /api/similar?id= and /similar/{id}."},
        "doc_id": {"type": "string"},
        "source": {"type": "string", "description": "The report file name."},
        "locality": _NULL_STR,
        "region": _NULL_STR,
        "province": _NULL_STR,
        "chain": {"type": "array", "items": _STR},
        "year": _NULL_INT,
        "title": _NULL_STR,
        "section_path": {"type": "array", "items": _STR, "description": "Headings from the top, e.g. 二、… › (八)…"},
        "kind": {"type": "string", "enum": list(KINDS)},
        "text": _STR,
        "start": {"type": "integer", "description": "Offset of the passage in the document's cleaned text."},
        "end": {"type": "integer"},
        "score": {"type": "number"},
        "relative_score": {"type": "number", "minimum": 0, "maximum": 1},
        "highlights": {
            "type": "array",
            "items": {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2},
            "description": "[start, end] offsets into text of matched terms.",
        },
    },
}

GROUP = {
    "type": "object",
    "required": ["locality", "results"],
    "properties": {
        "locality": _STR,
        "region": _NULL_STR,
        "province": _NULL_STR,
        "years": {"type": "array", "items": {"type": "integer"}},
        "score": {"type": "number"},
        "keyword_match": {"type": "boolean"},
        "match": {"type": "string", "enum": ["keyword", "meaning", "none"]},
        "chain": {"type": "array", "items": _STR},
        "results": {"type": "array", "items": {"$ref": "#/components/schemas/Result"}},
    },
}

SEARCH = {
    "type": "object",
    "required": ["query", "normalized_query", "took_ms", "results", "by_locality"],
    "properties": {
        "query": _STR,
        "normalized_query": _STR,
        "expansions": {"type": "array", "items": _STR, "description": "Glossary terms also searched."},
        "expansions_by_meaning": {"type": "array", "items": _STR,
                                  "description": "Those of the expansions the query means without naming them."},
        "translations": {"type": "array", "description": "English words of the query the glossary has no phrase "
                         "for, and the Chinese words the dictionary (CC-CEDICT) gave them, also searched.",
                         "items": {"type": "object", "required": ["en", "zh"],
                                   "properties": {"en": _STR, "zh": {"type": "array", "items": _STR}}}},
        "filters": {"type": "object"},
        "took_ms": {"type": "number"},
        "results": {"type": "array", "items": {"$ref": "#/components/schemas/Result"}},
        "by_locality": {"type": "array", "items": {"$ref": "#/components/schemas/LocalityGroup"}},
        "unmatched_localities": {"type": "array", "items": _STR},
    },
}

SIMILAR = {
    "type": "object",
    "required": ["query", "results", "by_locality"],
    "properties": {
        "query": _STR,
        "normalized_query": _STR,
        "filters": {"type": "object", "description": "The filters applied (as in a search)."},
        "similar_by": {"type": "array", "items": _STR,
                       "description": "The source's most distinctive words (tf·idf), searched by BM25 beside its meaning."},
        "source_passage": {"oneOf": [{"$ref": "#/components/schemas/Result"}, {"type": "null"}]},
        "took_ms": {"type": "number"},
        "results": {"type": "array", "items": {"$ref": "#/components/schemas/Result"}},
        "by_locality": {"type": "array", "items": {"$ref": "#/components/schemas/LocalityGroup"}},
    },
}

DOC_SUMMARY = {
    "type": "object",
    "required": ["doc_id", "source", "title", "locality", "level", "region", "year", "published", "repairs"],
    "properties": {
        "doc_id": _STR,
        "source": _STR,
        "title": _NULL_STR,
        "locality": _NULL_STR,
        "level": _NULL_STR,
        "region": _NULL_STR,
        "province": _NULL_STR,
        "year": _NULL_INT,
        "published": _NULL_STR,
        "repairs": {"type": "object", "additionalProperties": {"type": "integer"}, "description": "Repair counts by kind."},
    },
}

SECTION = {
    "type": "object",
    "required": ["heading", "kind", "start", "end", "children"],
    "properties": {
        "heading": _STR,
        "level": {"type": "integer"},
        "kind": {"type": "string", "enum": list(KINDS)},
        "start": {"type": "integer"},
        "end": {"type": "integer"},
        "children": {"type": "array", "items": {"$ref": "#/components/schemas/Section"}},
    },
}

DOCUMENT = {
    "allOf": [
        {"$ref": "#/components/schemas/DocumentSummary"},
        {
            "type": "object",
            "required": ["text", "sections", "repair_log"],
            "properties": {
                "encoding": _NULL_STR,
                "headline": _NULL_STR,
                "text": {"type": "string", "description": "The cleaned text; offsets elsewhere point into it."},
                "sections": {"type": "array", "items": {"$ref": "#/components/schemas/Section"}},
                "repair_log": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["kind", "start", "end", "before", "after"],
                        "properties": {
                            "kind": _STR,
                            "start": {"type": "integer"},
                            "end": {"type": "integer"},
                            "before": _STR,
                            "after": _STR,
                        },
                    },
                },
            },
        },
    ]
}

HEALTH = {
    "type": "object",
    "required": ["status", "index", "model", "documents", "chunks"],
    "properties": {
        "status": {"type": "string", "enum": ["ok"]},
        "index": {
            "type": "object",
            "properties": {
                "version": _STR,
                "built_at": _NULL_STR,
                "model_id": _STR,
                "format_version": {"type": "integer"},
                "dense": {"type": "object"},
                "counts": {"type": "object"},
            },
        },
        "model": _STR,
        "documents": {"type": "integer"},
        "chunks": {"type": "integer"},
        "localities": {"type": "integer"},
        "swaps": {"type": "integer", "description": "Index versions swapped in since the server started."},
        "reload_error": _NULL_STR,
    },
}

ERROR = {
    "type": "object",
    "required": ["error"],
    "additionalProperties": False,
    "properties": {
        "error": {
            "type": "object",
            "required": ["status", "code", "message"],
            "additionalProperties": False,
            "properties": {
                "status": {"type": "integer", "minimum": 400, "maximum": 599},
                "code": {
                    "type": "string",
                    "description": "bad_request, not_found, method_not_allowed, payload_too_large, uri_too_long, internal_error …",
                },
                "message": {"type": "string", "description": "What was wrong, naming the bad value and the valid ones."},
                "param": {"type": "string", "description": "The query or path parameter at fault, when one is."},
            },
        }
    },
    "example": {"error": {"status": 400, "code": "bad_request", "message": "k must be from 1 to 100; got 0", "param": "k"}},
}


def _err(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _ok(ref: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}


ERRORS = {"400": {"$ref": "#/components/responses/BadRequest"}, "414": {"$ref": "#/components/responses/UriTooLong"}}


K_PARAM = _q("k", f"Number of passages (1–{MAX_K}).", {"type": "integer", "minimum": 1, "maximum": MAX_K, "default": 10})
DOC_ID_PARAM = {
    "name": "doc_id",
    "in": "path",
    "required": True,
    "description": "A document id from /api/docs (or a unique prefix, e.g. 003).",
    "schema": {"type": "string", "maxLength": 128},
}

INFO = {
    "title": "kb — 法治政府建设年度报告 knowledge base",
    "version": "1",
    "description": (
        "Search Chinese local governments' annual rule-of-law reports. Every error, on every /api route, "
        "is one JSON shape (Error) with a 4xx status."
    ),
}

PATHS = {
    "/api/search": {
        "get": {
            "operationId": "search",
            "summary": "Passages about a topic, grouped by locality (the JSON of `kb search --json`).",
            "parameters": [
                _q("q", f"The topic, in Chinese (simplified or traditional) or English; at most {MAX_QUERY_CHARS} characters.",
                   {"type": "string", "minLength": 1, "maxLength": MAX_QUERY_CHARS}, required=True, example="行政复议"),
                K_PARAM,
                *FILTER_PARAMS,
                _q("mode", "Retrieval mode.", {"type": "string", "enum": list(MODES), "default": "hybrid"}),
            ],
            "responses": {"200": _ok("SearchResponse", "Ranked passages and locality groups."), **ERRORS},
        }
    },
    "/api/similar": {
        "get": {
            "operationId": "similar",
            "summary": "Passages like a given one (or like a text) from other localities (`kb similar --json`).",
            "parameters": [
                _q("id", "A passage id (chunk_id) from search results. Give id or text, not both.", {"type": "string", "maxLength": 200}),
                _q("text", "Free text to compare with, instead of id.", {"type": "string", "maxLength": MAX_QUERY_CHARS * 4}),
                K_PARAM,
                _q("per_locality", f"Passages per locality (1–{MAX_PER_LOCALITY}).",
                   {"type": "integer", "minimum": 1, "maximum": MAX_PER_LOCALITY, "default": 1}),
                _q("same_locality", "Include the passage's own locality.", {"type": "boolean", "default": False}),
                *FILTER_PARAMS,
            ],
            "responses": {
                "200": _ok("SimilarResponse", "Nearest passages, a few per locality."),
                **ERRORS,
                "404": {"$ref": "#/components/responses/NotFound"},
            },
        }
    },
    "/api/docs": {
        "get": {
            "operationId": "listDocuments",
            "summary": "Every indexed report with its metadata and repair counts (`kb docs --json`).",
            "responses": {
                "200": {
                    "description": "Documents ordered by doc_id.",
                    "content": {"application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/DocumentSummary"}}}},
                },
                **ERRORS,
            },
        }
    },
    "/api/docs/{doc_id}": {
        "get": {
            "operationId": "getDocument",
            "summary": "One report: metadata, cleaned text, section tree and repair log (`kb show --json`).",
            "parameters": [DOC_ID_PARAM],
            "responses": {
                "200": _ok("Document", "The document."),
                **ERRORS,
                "404": {"$ref": "#/components/responses/NotFound"},
            },
        }
    },
    "/api/health": {
        "get": {
            "operationId": "health",
            "summary": "Server status: the index version being served, its model and counts.",
            "responses": {"200": _ok("Health", "The server is answering from the index described."), **ERRORS},
        }
    },
    "/api/openapi.json": {
        "get": {
            "operationId": "openapi",
            "summary": "This document.",
            "responses": {"200": {"description": "OpenAPI 3.1 document.", "content": {"application/json": {"schema": {"type": "object"}}}}, **ERRORS},
        }
    },
}

COMPONENTS = {
    "schemas": {
        "Result": RESULT,
        "LocalityGroup": GROUP,
        "SearchResponse": SEARCH,
        "SimilarResponse": SIMILAR,
        "DocumentSummary": DOC_SUMMARY,
        "Section": SECTION,
        "Document": DOCUMENT,
        "Health": HEALTH,
        "Error": ERROR,
    },
    "responses": {
        "BadRequest": _err("A parameter is missing or invalid; `param` names it and `message` says what is valid."),
        "NotFound": _err("Unknown document, passage or route."),
        "MethodNotAllowed": _err("Only GET (and HEAD) are allowed."),
        "PayloadTooLarge": _err("Request body too large (no route takes a body)."),
        "UriTooLong": _err("Query string or path too long."),
    },
}


def openapi_document(server_url: str = "") -> dict[str, Any]:
    """The document, naming `server_url` as the server (the URL the request came to)."""
    return {"openapi": "3.1.0", "info": INFO, "servers": [{"url": server_url or "/"}], "paths": PATHS, "components": COMPONENTS}
