"""Which reports a build indexes: each seed file read, reused from the old version or processed, de-duplicated."""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kb import glossary, tokens
from kb.corpus import Processed, process_raw, taken_id_message
from kb.embed import Embedder, EmbeddingCache, embed_with_cache
from kb.ids import doc_id_for
from kb.ingest import IngestError, read_report
from kb.model import Chunk
from kb.store import IndexReader
from kb.termvec import ensure_term_vectors

CACHE_FILE = "embcache.sqlite"


@dataclass
class BuildStats:
    """What a build did, for the CLI and the benchmarks."""

    documents: int = 0
    chunks: int = 0
    new: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    embedded: int = 0
    skipped: list[str] = field(default_factory=list)
    skipped_files: list[str] = field(default_factory=list)  # the file names of `skipped`, as data
    notes: list[str] = field(default_factory=list)  # what the build decided for the user to know
    seconds: float = 0.0
    version: str | None = None
    wrote: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Collected:
    """The reports to index, in file-name order, with their tokens and vectors, and what the build saw."""

    items: list[Processed] = field(default_factory=list)
    toks: list[list[list[str]]] = field(default_factory=list)
    vecs: list[np.ndarray] = field(default_factory=list)
    hashes: dict[str, str] = field(default_factory=dict)  # file name → sha256 of its bytes
    texts: dict[str, str] = field(default_factory=dict)  # file name → sha256 of its cleaned text


def text_hash(text: str) -> str:
    """The key of a report's cleaned text: two files with the same key are the same report."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _reuse(reader: IndexReader, doc_id: str) -> tuple[Processed, list[list[str]], np.ndarray] | None:
    report = reader.report(doc_id)
    if report is None:
        return None
    rows = reader.doc_chunks(doc_id)
    chunks = [
        Chunk(r["chunk_id"], r["doc_id"], r["ordinal"], list(r["section_path"]), r["kind"], r["start"], r["end"], r["text"])
        for r in rows
    ]
    toks = reader.chunk_tokens([r["row"] for r in rows])
    vecs = np.stack([reader.vector(r["row"]) for r in rows]) if rows else np.zeros((0, reader.dim), np.float32)
    return Processed(report, chunks), toks, vecs


def collect(
    files: list[Path],
    old: IndexReader | None,
    old_files: dict[str, str],
    prefer: dict[str, str],
    embedder: Embedder,
    index: Path,
    stats: BuildStats,
    progress: bool,
    embed_on: str | None = None,
) -> Collected:
    """Every usable report of `files`. A file that repeats another (same bytes, same cleaned text, same id)
    is skipped with a reason; of two such files the one already indexed stays, whatever the names' order."""
    from tqdm import tqdm

    order = sorted(files, key=lambda p: (p.name not in prefer, p.name))
    picked: list[tuple[str, Processed, list[list[str]] | None, np.ndarray | None]] = []
    seen_raw: dict[str, str] = {}
    seen_text: dict[str, str] = {}
    seen_ids: set[str] = set()
    out = Collected()
    for path in tqdm(order, desc="cleaning", unit="report", disable=not progress, file=sys.stderr):
        try:
            raw = read_report(path)
        except IngestError as exc:
            _skip(stats, path, str(exc))
            continue
        if raw.sha256 in seen_raw:
            _skip(stats, path, f"{path.name}: an exact copy of {seen_raw[raw.sha256]}; not indexed twice")
            continue
        reused = None
        if old is not None and old_files.get(path.name) == raw.sha256:
            reused = _reuse(old, doc_id_for(path))
        item, item_toks, item_vecs = reused if reused is not None else (process_raw(raw), None, None)
        key = text_hash(item.report.text)
        if key in seen_text:
            _skip(stats, path, f"{path.name}: the same report as {seen_text[key]} (other name or encoding)")
            continue
        if item.report.doc_id in seen_ids:  # a hash collision of two names: refused, never merged
            _skip(stats, path, taken_id_message(path, item.report.doc_id))
            continue
        if reused is not None:
            stats.unchanged += 1
        else:
            (stats.changed if path.name in old_files else stats.new).append(path.name)
        seen_raw[raw.sha256] = seen_text[key] = path.name
        seen_ids.add(item.report.doc_id)
        out.hashes[path.name], out.texts[path.name] = raw.sha256, key
        picked.append((path.name, item, item_toks, item_vecs))
    picked.sort(key=lambda p: p[0])
    for stat_list in (stats.new, stats.changed):
        stat_list.sort()
    out.items = [p[1] for p in picked]
    toks: list[list[list[str]] | None] = [p[2] for p in picked]
    vecs: list[np.ndarray | None] = [p[3] for p in picked]
    fresh = [i for i, v in enumerate(vecs) if v is None]
    if fresh:
        _embed_fresh(out.items, toks, vecs, fresh, embedder, index, stats, progress, embed_on)
    out.toks = [t or [] for t in toks]
    out.vecs = [v for v in vecs if v is not None]
    return out


def _skip(stats: BuildStats, path: Path, reason: str) -> None:
    stats.skipped.append(reason)
    stats.skipped_files.append(path.name)


def _open_cache(path: Path, stats: BuildStats) -> EmbeddingCache:
    """The embedding cache; one that SQLite cannot read is only a cache: it is moved aside and started anew."""
    try:
        if path.exists():
            with contextlib.closing(sqlite3.connect(path)) as con:
                con.execute("PRAGMA quick_check").fetchone()
        return EmbeddingCache(path)
    except sqlite3.DatabaseError as exc:
        aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}")
        for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            if p.exists() or p.is_symlink():
                os.replace(p, aside.with_name(aside.name + p.name[len(path.name):]))
        stats.notes.append(f"the embedding cache {path} was unreadable ({exc}); moved it to {aside.name}")
        return EmbeddingCache(path)


def ensure_terms(index: Path, embedder: Embedder, stats: BuildStats, progress: bool) -> None:
    """The glossary's phrasing vectors for this model in the index root (kb.termvec), through the cache."""
    index.mkdir(parents=True, exist_ok=True)
    _, embedded = ensure_term_vectors(index, glossary.load_glossary(), embedder,
                                      lambda: _open_cache(index / CACHE_FILE, stats), progress=progress)
    if embedded:
        stats.notes.append(f"embedded {embedded} glossary phrasings once, for matching queries to terms by meaning")


def _embed_fresh(
    items: list[Processed],
    toks: list[list[list[str]] | None],
    vecs: list[np.ndarray | None],
    fresh: list[int],
    embedder: Embedder,
    index: Path,
    stats: BuildStats,
    progress: bool,
    embed_on: str | None = None,
) -> None:
    chunks = [c for i in fresh for c in items[i].chunks]
    texts = [c.embed_text() for c in chunks]
    all_toks = tokens.tokenize_many(texts, progress=progress)
    index.mkdir(parents=True, exist_ok=True)
    with _open_cache(index / CACHE_FILE, stats) as cache:
        if embed_on:  # another pool of workers embeds, into the same cache (kb.distembed)
            from kb.distembed import embed_on_workers

            vectors, stats.embedded = embed_on_workers(embed_on, embedder, texts, cache, progress=progress)
        else:
            vectors, stats.embedded = embed_with_cache(embedder, texts, cache, progress=progress)
    at = 0
    for i in fresh:
        n = len(items[i].chunks)
        toks[i] = all_toks[at : at + n]
        vecs[i] = vectors[at : at + n]
        at += n
