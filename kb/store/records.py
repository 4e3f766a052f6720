"""An index version's SQLite records: schema and writer; chunk and document records, filters, reports."""

from __future__ import annotations

import contextlib
import json
import queue
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kb.model import KINDS, Chunk, Repair, Report, Section
from kb.store.layout import SQLITE, _fail

_SCHEMA = """
CREATE TABLE documents(
  doc_id TEXT PRIMARY KEY, source TEXT NOT NULL, sha256 TEXT NOT NULL, encoding TEXT,
  title TEXT, headline TEXT, locality TEXT, level TEXT, region TEXT, province TEXT, year INTEGER,
  published TEXT, meta TEXT NOT NULL, text TEXT NOT NULL, raw_text TEXT NOT NULL, sections TEXT NOT NULL,
  chain TEXT NOT NULL DEFAULT '');
CREATE TABLE chunks(
  "row" INTEGER PRIMARY KEY, chunk_id TEXT NOT NULL UNIQUE, doc_id TEXT NOT NULL REFERENCES documents(doc_id),
  ordinal INTEGER NOT NULL, section_path TEXT NOT NULL, kind TEXT NOT NULL, start INTEGER NOT NULL,
  "end" INTEGER NOT NULL, text TEXT NOT NULL, tokens TEXT NOT NULL);
CREATE TABLE repairs(
  doc_id TEXT NOT NULL REFERENCES documents(doc_id), seq INTEGER NOT NULL, kind TEXT NOT NULL,
  start INTEGER NOT NULL, "end" INTEGER NOT NULL, "before" TEXT NOT NULL, "after" TEXT NOT NULL,
  PRIMARY KEY (doc_id, seq));
CREATE INDEX chunks_doc ON chunks(doc_id, ordinal);
CREATE INDEX chunks_kind ON chunks(kind);
CREATE INDEX documents_locality ON documents(locality);
CREATE INDEX documents_year ON documents(year);
"""
# A chunk record is its row's columns plus its report's fields (held in memory by Records).
_ROW_COLS = ("row", "chunk_id", "doc_id", "ordinal", "section_path", "kind", "start", "end", "text")
_ROW_SELECT = ", ".join(f'c."{c}"' for c in _ROW_COLS)
_DOC_COLS = ("source", "locality", "region", "province", "year", "level", "title", "chain")
CHAIN_SEP = " › "  # province › city › county › township, as stored (the region filter matches any level)
_DOC_SELECT = ", ".join(f'"{c}"' for c in _DOC_COLS)
_REPAIRS_SELECT = 'SELECT kind, start, "end", "before", "after" FROM repairs WHERE doc_id = ? ORDER BY seq'
FILTER_CACHE_SIZE = 256  # distinct filter combinations whose rows a reader keeps


def _json(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def _write_sqlite(
    path: Path, reports: Sequence[Report], chunks: Sequence[Chunk], tokens: Sequence[list[str]]
) -> int:
    con = sqlite3.connect(path)
    try:
        # No journal: atomicity comes from publishing the whole folder; durability from our fsync.
        con.execute("PRAGMA journal_mode=OFF")
        con.execute("PRAGMA synchronous=OFF")
        con.executescript(_SCHEMA)
        con.executemany(
            "INSERT INTO documents VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                (r.doc_id, r.source, r.sha256, r.encoding, r.title, r.headline, r.locality, r.level, r.region,
                 r.province, r.year, r.published, _json(r.summary()), r.text, r.raw_text,
                 _json([s.to_dict() for s in r.sections]), CHAIN_SEP.join(r.chain))
                for r in reports
            ),
        )
        con.executemany(
            "INSERT INTO chunks VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                (i, c.chunk_id, c.doc_id, c.ordinal, _json(list(c.section_path)), c.kind, c.start, c.end, c.text,
                 _json(list(t)))
                for i, (c, t) in enumerate(zip(chunks, tokens, strict=True))
            ),
        )
        n_repairs = 0
        for r in reports:
            con.executemany(
                "INSERT INTO repairs VALUES (?,?,?,?,?,?,?)",
                ((r.doc_id, j, p.kind, p.start, p.end, p.before, p.after) for j, p in enumerate(r.repairs)),
            )
            n_repairs += len(r.repairs)
        con.commit()
    finally:
        con.close()
    return n_repairs


def _as_list(v: Any) -> list[Any]:
    return list(v) if isinstance(v, (list, tuple, set, frozenset)) else [v]


def _filter_sql(
    locality: str | Sequence[str] | None,
    year: int | str | Sequence[int | str] | None,
    region: str | Sequence[str] | None,
    kind: str | Sequence[str] | None,
    doc_ids: Sequence[str] | None,
    level: str | Sequence[str] | None,
    province: str | Sequence[str] | None = None,
) -> tuple[list[str], list[Any]]:
    """The WHERE clauses (joined by AND) and their parameters for Records.rows_where's filters."""
    clauses: list[str] = []
    params: list[Any] = []

    def any_of(exprs: list[str], values: list[Any]) -> None:
        clauses.append("(" + " OR ".join(exprs) + ")")
        params.extend(values)

    if locality is not None:
        vals = [str(v) for v in _as_list(locality)]
        any_of(["instr(d.locality, ?) > 0"] * len(vals), vals)
    if region is not None:
        vals = [str(v) for v in _as_list(region)]
        any_of(
            ["(instr(d.region, ?) > 0 OR instr(d.province, ?) > 0 OR instr(d.chain, ?) > 0)"] * len(vals),
            [v for v in vals for _ in (0, 1, 2)],
        )
    if province is not None:
        vals = [str(v) for v in _as_list(province)]
        any_of(["instr(d.province, ?) > 0"] * len(vals), vals)
    if year is not None:
        years = []
        for y in _as_list(year):
            try:
                years.append(int(y))
            except (TypeError, ValueError):
                raise ValueError(f"year {y!r} is not a year (e.g. 2023)") from None
        any_of(["d.year = ?"] * len(years), years)
    if kind is not None:
        kinds = [str(v) for v in _as_list(kind)]
        for v in kinds:
            if v not in KINDS:
                raise ValueError(f"kind {v!r} is not one of: {', '.join(KINDS)}")
        any_of(["c.kind = ?"] * len(kinds), kinds)
    if level is not None:
        levels = [str(v) for v in _as_list(level)]
        any_of(["d.level = ?"] * len(levels), levels)
    if doc_ids is not None:
        clauses.append("c.doc_id IN (SELECT value FROM json_each(?))")
        params.append(json.dumps([str(d) for d in _as_list(doc_ids)]))
    return clauses, params


class Records:
    """A version's kb.sqlite, read-only through a pool of connections opened at load, for many threads."""

    def __init__(self, folder: Path, n_chunks: int, n_documents: int, pool_size: int) -> None:
        self.folder = folder
        self.n_chunks = n_chunks
        self._closed = False
        self._pool: queue.Queue[sqlite3.Connection] = queue.Queue()
        self._conns: list[sqlite3.Connection] = []
        self._filter_cache: dict[tuple[Any, ...], np.ndarray | None] = {}
        self._cache_lock = threading.Lock()
        try:
            self._open(pool_size, n_documents)
        except BaseException:
            self.close()
            raise

    def _open(self, pool_size: int, n_documents: int) -> None:
        path, n = self.folder / SQLITE, self.n_chunks
        uri = path.resolve().as_uri() + "?mode=ro&immutable=1"
        try:
            # Connections are opened now, not per thread later: once a newer build deletes this version
            # folder, the open files keep working but the path no longer does.
            for _ in range(max(1, pool_size)):
                con = sqlite3.connect(uri, uri=True, check_same_thread=False)
                con.row_factory = sqlite3.Row
                self._conns.append(con)
                self._pool.put(con)
            with self._db() as con:
                docs = con.execute("SELECT count(*) FROM documents").fetchone()[0]
                rows = con.execute(
                    'SELECT count(*), coalesce(min("row"), 0), coalesce(max("row"), -1) FROM chunks'
                ).fetchone()
                # The few fields of a report that every chunk record carries, held in memory (~0.3 KB a
                # report): a search's chunk lookups then skip the join, 2.2 → 1.3 ms for 120 rows at 10^6.
                self._doc_fields: dict[str, dict[str, Any]] = {
                    r[0]: dict(zip(_DOC_COLS, tuple(r)[1:], strict=True))
                    for r in con.execute(f"SELECT doc_id, {_DOC_SELECT} FROM documents")
                }
        except sqlite3.Error as e:
            raise _fail(f"{path} is unreadable: {e}") from e
        if docs != n_documents:
            raise _fail(f"{path} has {docs} documents, the manifest counts {n_documents}")
        if tuple(rows) != (n, 0, n - 1) and n:
            raise _fail(f"{path} has {rows[0]} chunk rows ({rows[1]}..{rows[2]}); expected 0..{n - 1}")

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        if self._closed:
            raise RuntimeError(f"index reader for {self.folder} is closed")
        con = self._pool.get()
        try:
            yield con
        finally:
            self._pool.put(con)

    def close(self) -> None:
        self._closed = True
        for con in self._conns:
            with contextlib.suppress(sqlite3.Error):
                con.close()
        self._conns.clear()

    def chunks(self, rows: Sequence[int] | np.ndarray) -> list[dict[str, Any]]:
        """Chunk records in the order of `rows` (see IndexReader.chunks)."""
        rr = [int(r) for r in np.asarray(rows, dtype=np.int64).reshape(-1)]
        for r in rr:
            if not 0 <= r < self.n_chunks:
                raise IndexError(f"row {r} is out of range 0..{self.n_chunks - 1}")
        if not rr:
            return []
        with self._db() as con:
            got = con.execute(
                f'SELECT {_ROW_SELECT} FROM json_each(?) j JOIN chunks c ON c."row" = j.value ORDER BY j.key',
                (json.dumps(rr),),
            ).fetchall()
        return [self._chunk_record(r) for r in got]

    def _chunk_record(self, r: Sequence[Any]) -> dict[str, Any]:
        """A row selected as _ROW_SELECT, as a chunk record with its report's fields."""
        d = dict(zip(_ROW_COLS, r, strict=True))
        d["section_path"] = json.loads(d["section_path"])
        d.update(self._doc_fields[d["doc_id"]])
        d["chain"] = d["chain"].split(CHAIN_SEP) if d["chain"] else []
        return d

    def chunk_by_id(self, chunk_id: str) -> dict[str, Any] | None:
        with self._db() as con:
            r = con.execute(f"SELECT {_ROW_SELECT} FROM chunks c WHERE c.chunk_id = ?", (chunk_id,)).fetchone()
        return self._chunk_record(r) if r else None

    def doc_chunks(self, doc_id: str) -> list[dict[str, Any]]:
        with self._db() as con:
            got = con.execute(
                f"SELECT {_ROW_SELECT} FROM chunks c WHERE c.doc_id = ? ORDER BY c.ordinal", (doc_id,)
            ).fetchall()
        return [self._chunk_record(r) for r in got]

    def chunk_tokens(self, rows: Sequence[int] | np.ndarray) -> list[list[str]]:
        rr = [int(r) for r in np.asarray(rows, dtype=np.int64).reshape(-1)]
        with self._db() as con:
            got = dict(
                con.execute(
                    'SELECT c."row", c.tokens FROM json_each(?) j JOIN chunks c ON c."row" = j.value',
                    (json.dumps(rr),),
                ).fetchall()
            )
        return [json.loads(got[r]) for r in rr]

    def rows_where(self, **filters: Any) -> np.ndarray | None:
        """Sorted chunk rows matching IndexReader.rows_where's filters, or None when none is given; the rows
        of the last FILTER_CACHE_SIZE filters are kept."""
        clauses, params = _filter_sql(**filters)
        if not clauses:
            return None
        key = (tuple(clauses), tuple(params))
        with self._cache_lock:
            hit = self._filter_cache.get(key)
        if hit is not None:
            return hit
        with self._db() as con:
            got = con.execute(
                'SELECT c."row" FROM chunks c JOIN documents d ON d.doc_id = c.doc_id WHERE '
                + " AND ".join(clauses)
                + ' ORDER BY c."row"',
                params,
            ).fetchall()
        out = np.fromiter((r[0] for r in got), dtype=np.int64, count=len(got))
        out.setflags(write=False)
        with self._cache_lock:
            if len(self._filter_cache) >= FILTER_CACHE_SIZE:
                self._filter_cache.clear()
            self._filter_cache[key] = out
        return out

    def count_check(self) -> None:
        """Read every page of the documents table (raises sqlite3.DatabaseError when the file is damaged)."""
        with self._db() as con:
            con.execute("SELECT count(*), sum(length(text)) FROM documents").fetchone()

    def documents(self) -> list[dict[str, Any]]:
        with self._db() as con:
            got = con.execute("SELECT meta FROM documents ORDER BY doc_id").fetchall()
        return [json.loads(r[0]) for r in got]

    def document(self, doc_id: str) -> dict[str, Any] | None:
        with self._db() as con:
            r = con.execute(
                "SELECT meta, headline, encoding, sha256, text, sections FROM documents WHERE doc_id = ?",
                (doc_id,),
            ).fetchone()
            if r is None:
                return None
            reps = con.execute(_REPAIRS_SELECT, (doc_id,)).fetchall()
        out = json.loads(r["meta"])
        out.update(headline=r["headline"], encoding=r["encoding"], sha256=r["sha256"], text=r["text"])
        out["sections"] = json.loads(r["sections"])
        out["repair_log"] = [dict(x) for x in reps]
        return out

    def raw_text(self, doc_id: str) -> str | None:
        with self._db() as con:
            r = con.execute("SELECT raw_text FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()
        return r[0] if r else None

    def report(self, doc_id: str) -> Report | None:
        with self._db() as con:
            r = con.execute("SELECT * FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()
            if r is None:
                return None
            reps = con.execute(_REPAIRS_SELECT, (doc_id,)).fetchall()

        def section(d: dict[str, Any]) -> Section:
            return Section(
                d["heading"], d["level"], d["kind"], d["start"], d["end"], [section(c) for c in d["children"]]
            )

        return Report(
            doc_id=r["doc_id"],
            source=r["source"],
            sha256=r["sha256"],
            encoding=r["encoding"],
            raw_text=r["raw_text"],
            text=r["text"],
            title=r["title"],
            headline=r["headline"],
            locality=r["locality"],
            level=r["level"],
            region=r["region"],
            province=r["province"],
            year=r["year"],
            published=r["published"],
            repairs=[Repair(x["kind"], x["start"], x["end"], x["before"], x["after"]) for x in reps],
            sections=[section(s) for s in json.loads(r["sections"])],
            **_place_fields(json.loads(r["meta"])),
        )


def _place_fields(summary: dict[str, Any]) -> dict[str, Any]:
    """The gazetteer fields of a stored summary, for a rebuilt Report."""
    keys = ("locality_status", "official_name", "division_code", "chain")
    return {k: summary[k] for k in keys if k in summary}
