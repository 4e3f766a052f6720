"""The Milvus collection of one index version: its fields, its indexes by target, and filters as expressions."""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kb.errors import UsageError
from kb.model import KINDS
from kb.store.bm25 import BM25_PARAMS

COLLECTION_PREFIX = "kb_"
DOC_FREQS = "token_df.json"  # in the version folder: BM25 document frequencies, which Milvus does not return
TEXT_MAX = 65535  # VARCHAR's limit, in bytes: chunks are at most 480 characters, so far below it
# The chunk record's own fields, as stored (section_path as JSON); the report's fields come from kb.sqlite.
CHUNK_FIELDS = ("row", "chunk_id", "doc_id", "ordinal", "section_path", "kind", "start", "end", "text")
# The report fields every chunk carries for filtering (denormalized: an engine has no join).
FILTER_FIELDS = ("locality", "region", "province", "chain", "level")
# Values written into a filter expression literally: the engine's templates do not cover LIKE in Milvus 2.5,
# so anything with a quote, a backslash or a LIKE wildcard is matched through doc ids instead.
_SAFE_LITERAL = re.compile(r'^[^"\\%_\x00-\x1f]+$')
_SAFE_ID = re.compile(r"^[A-Za-z0-9_.:-]+$")


def engine_token(token: str) -> str:
    """A kb token as the collection holds it: the whitespace analyzer splits on spaces, so none is left inside."""
    return "".join(token.split())


def collection_name(version: str, prefix: str = COLLECTION_PREFIX) -> str:
    """The collection of version folder `version` (v-20250101T…-ab12cd → kb_v_20250101T…_ab12cd)."""
    return prefix + re.sub(r"[^0-9A-Za-z_]", "_", version)


def bm25_scale() -> float:
    """Milvus's BM25 scores carry the (k1 + 1) numerator that bm25s's lucene method leaves out."""
    return float(str(BM25_PARAMS["k1"])) + 1.0


def make_schema(client: Any, dim: int) -> Any:
    from pymilvus import DataType, Function, FunctionType

    s = client.create_schema(auto_id=False, enable_dynamic_field=False)
    s.add_field("row", DataType.INT64, is_primary=True)
    s.add_field("chunk_id", DataType.VARCHAR, max_length=256)
    s.add_field("doc_id", DataType.VARCHAR, max_length=512)
    s.add_field("ordinal", DataType.INT64)
    s.add_field("section_path", DataType.VARCHAR, max_length=TEXT_MAX)
    s.add_field("kind", DataType.VARCHAR, max_length=32)
    s.add_field("start", DataType.INT64)
    s.add_field("end", DataType.INT64)
    s.add_field("text", DataType.VARCHAR, max_length=TEXT_MAX)
    for name in FILTER_FIELDS:
        s.add_field(name, DataType.VARCHAR, max_length=2048)
    s.add_field("year", DataType.INT64)  # 0: year unknown (no filter value matches it)
    # kb's own jieba tokens, space-joined: corpus and queries keep one tokenizer, so no analyzer but spaces
    s.add_field(
        "tokens", DataType.VARCHAR, max_length=TEXT_MAX, enable_analyzer=True,
        analyzer_params={"tokenizer": "whitespace"},
    )
    s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    s.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    s.add_function(
        Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["tokens"],
                 output_field_names=["sparse"])
    )
    return s


SERVER_INDEXES = ("IVF_SQ8", "HNSW", "IVF_FLAT", "FLAT")
LITE_INDEXES = ("FLAT", "IVF_FLAT")  # all Milvus Lite builds


def dense_spec(n: int, lite: bool) -> dict[str, Any]:
    """The vector index, $KB_MILVUS_INDEX or by target: IVF_SQ8 on a server, exact (FLAT) on Milvus Lite, which
    builds only FLAT and IVF_FLAT (IVF_FLAT there runs the same sizing code a server's IVF_SQ8 does); IVF lists
    sized by the row count."""
    asked = (os.environ.get("KB_MILVUS_INDEX") or "").strip().upper()
    kind = asked or ("FLAT" if lite else "IVF_SQ8")
    valid = LITE_INDEXES if lite else SERVER_INDEXES
    if kind not in valid:
        where = "Milvus Lite (a .db file)" if lite else "a Milvus server"
        raise UsageError(f"KB_MILVUS_INDEX={asked!r} is not an index {where} builds; valid: {', '.join(valid)}")
    if kind == "FLAT":
        return {"index_type": "FLAT", "params": {}, "search": {}}
    if kind == "HNSW":
        return {"index_type": "HNSW", "params": {"M": 16, "efConstruction": 200}, "search": {"ef": 128}}
    nlist = max(1, min(65536, int(4 * math.sqrt(max(n, 1)))))
    return {"index_type": kind, "params": {"nlist": nlist}, "search": {"nprobe": min(nlist, 160 if n <= 300_000 else 96)}}


def index_params(client: Any, spec: dict[str, Any]) -> Any:
    ip = client.prepare_index_params()
    ip.add_index("vector", index_type=spec["index_type"], metric_type="IP", params=spec["params"])
    ip.add_index(
        "sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
        params={"bm25_k1": BM25_PARAMS["k1"], "bm25_b": BM25_PARAMS["b"]},
    )
    return ip


@dataclass(frozen=True)
class Scope:
    """Filters passed down to the engine: an expression over the denormalized fields, and the documents
    they admit (from kb.sqlite), which say whether anything matches and which localities are in scope."""

    expr: str
    doc_ids: frozenset[str]

    def __len__(self) -> int:  # a scope that admits no document is empty, as an empty row array is
        return len(self.doc_ids)


def _list(values: Sequence[Any]) -> str:
    return "[" + ", ".join(json.dumps(v, ensure_ascii=False) for v in values) + "]"


def _as_list(v: Any) -> list[Any]:
    return list(v) if isinstance(v, (list, tuple, set, frozenset)) else [v]


def _like_any(fields: Sequence[str], values: list[str]) -> str:
    return "(" + " or ".join(f'{f} like "%{v}%"' for v in values for f in fields) + ")"


def filter_expr(filters: dict[str, Any], doc_ids: frozenset[str]) -> str:
    """The Milvus boolean expression of kb's filters (the semantics of Records.rows_where): locality, region
    and province as substrings (region also in the province and the chain), a list as any of its values."""
    doc_level = {k: v for k, v in filters.items() if v is not None and k != "kind"}
    clauses: list[str] = []
    literal = all(_SAFE_LITERAL.match(str(v)) for k, vs in doc_level.items() for v in _as_list(vs) if k != "year")
    if doc_level and (not literal or "doc_ids" in doc_level):
        safe = sorted(d for d in doc_ids if _SAFE_ID.match(d))
        clauses.append(f"doc_id in {_list(safe)}")
    elif doc_level:
        for key, fields in (("locality", ["locality"]), ("region", ["region", "province", "chain"]),
                            ("province", ["province"])):
            if doc_level.get(key) is not None:
                clauses.append(_like_any(fields, [str(v) for v in _as_list(doc_level[key])]))
        if doc_level.get("year") is not None:
            clauses.append(f"year in {_list([int(y) for y in _as_list(doc_level['year'])])}")
        if doc_level.get("level") is not None:
            clauses.append(f"level in {_list([str(v) for v in _as_list(doc_level['level'])])}")
    if filters.get("kind") is not None:
        kinds = [str(v) for v in _as_list(filters["kind"])]
        bad = [k for k in kinds if k not in KINDS]
        if bad:
            raise ValueError(f"kind {bad[0]!r} is not one of: {', '.join(KINDS)}")
        clauses.append(f"kind in {_list(kinds)}")
    return " and ".join(clauses)
