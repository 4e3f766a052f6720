"""write_milvus_index: the same build into another sink — a new Milvus collection per version, switched to
atomically through the index folder's CURRENT (and the server's alias where it has aliases)."""

from __future__ import annotations

import json
import secrets
import shutil
import sqlite3
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from kb.engine import connect, disconnect, is_lite, milvus_uri, recorded_uri
from kb.engine.alias import switch_alias
from kb.engine.schema import (
    COLLECTION_PREFIX,
    DOC_FREQS,
    collection_name,
    dense_spec,
    engine_token,
    index_params,
    make_schema,
)
from kb.model import Chunk, Report
from kb.store.layout import (
    FORMAT_VERSION,
    MANIFEST,
    SQLITE,
    _collect_garbage,
    _fsync_dir,
    _fsync_file,
    _sha256,
    _writer_lock,
    current_version,
    list_versions,
    publish_version,
    replace_current,
)
from kb.store.records import CHAIN_SEP, _write_sqlite
from kb.store.writer import _no_stage, _validate_inputs, _versions_to_keep
from kb.tokens import TOKENIZER_ID

ENGINE = "milvus"
INSERT_BATCH = 1000


def _rows(
    reports: Sequence[Report], chunks: Sequence[Chunk], x: np.ndarray, tokens: Sequence[list[str]], at: int, n: int
) -> list[dict[str, Any]]:
    docs = {r.doc_id: r for r in reports}
    out = []
    for i in range(at, min(at + n, len(chunks))):
        c, d = chunks[i], docs[chunks[i].doc_id]
        out.append({
            "row": i, "chunk_id": c.chunk_id, "doc_id": c.doc_id, "ordinal": c.ordinal,
            "section_path": json.dumps(list(c.section_path), ensure_ascii=False), "kind": c.kind,
            "start": c.start, "end": c.end, "text": c.text,
            "locality": d.locality or "", "region": d.region or "", "province": d.province or "",
            "chain": CHAIN_SEP.join(d.chain), "level": d.level or "", "year": int(d.year or 0),
            "tokens": " ".join(engine_token(t) for t in tokens[i] if t.strip()),
            "vector": x[i].tolist(),
        })
    return out


def _fill_collection(client: Any, name: str, reports: Sequence[Report], chunks: Sequence[Chunk], x: np.ndarray,
                     tokens: Sequence[list[str]], spec: dict[str, Any], progress: bool) -> None:
    from tqdm import tqdm

    client.create_collection(name, schema=make_schema(client, int(x.shape[1])), consistency_level="Strong")
    with tqdm(total=len(chunks), desc="milvus", unit="chunk", disable=not progress) as bar:
        for at in range(0, len(chunks), INSERT_BATCH):
            batch = _rows(reports, chunks, x, tokens, at, INSERT_BATCH)
            client.insert(name, batch)
            bar.update(len(batch))
    client.flush(name)
    client.create_index(name, index_params(client, spec))
    client.load_collection(name)
    got = client.query(name, filter="", output_fields=["count(*)"], consistency_level="Strong")[0]["count(*)"]
    if got != len(chunks):
        raise RuntimeError(f"collection {name} holds {got} chunks after the build; {len(chunks)} were written")


def _write_documents(path: Path, reports: Sequence[Report], chunks: Sequence[Chunk]) -> int:
    """kb.sqlite without chunk rows: the reports (text, sections, repair logs, raw text) for the document
    pages, and which kinds of passage each report has (for the localities a filter leaves in scope)."""
    n_repairs = _write_sqlite(path, reports, [], [])
    con = sqlite3.connect(path)
    try:
        con.execute("CREATE TABLE doc_kinds(doc_id TEXT NOT NULL, kind TEXT NOT NULL, PRIMARY KEY (doc_id, kind))")
        con.executemany("INSERT OR IGNORE INTO doc_kinds VALUES (?, ?)", ((c.doc_id, c.kind) for c in chunks))
        con.commit()
    finally:
        con.close()
    _fsync_file(path)
    return n_repairs


def _write_doc_freqs(path: Path, tokens: Sequence[list[str]]) -> None:
    """How many passages hold each token, as the collection's BM25 sees them (kb.relevance reads the query's
    share of its possible score from it; Milvus gives no document frequencies back)."""
    df: Counter[str] = Counter()
    for toks in tokens:
        df.update({engine_token(t) for t in toks if t.strip()})
    path.write_text(json.dumps({"passages": len(tokens), "df": dict(df)}, ensure_ascii=False), encoding="utf-8")


def referenced_collections(root: Path) -> set[str]:
    """The collections that the version folders under root name."""
    names = set()
    for v in list_versions(root):
        try:
            m = json.loads((root / v / MANIFEST).read_text(encoding="utf-8"))
            names.add(m["milvus"]["collection"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return names


def drop_unreferenced(client: Any, root: Path, prefix: str = COLLECTION_PREFIX) -> list[str]:
    """Drop this root's collections that no version folder names: those of old versions, and of builds that
    were killed before their switch."""
    keep = referenced_collections(root)
    dropped = [c for c in client.list_collections() if c.startswith(prefix + "v_") and c not in keep]
    for c in dropped:
        client.drop_collection(c)
    return dropped


def write_milvus_index(
    root: str | Path, reports: Sequence[Report], chunks: Sequence[Chunk], vectors: np.ndarray,
    tokens: Sequence[list[str]], model_id: str, build_info: dict[str, Any], *, progress: bool = False,
    on_stage: Callable[[str], None] | None = None, uri: str | None = None,
) -> Path:
    """Write a new version: its collection filled, loaded and counted, then its folder (manifest naming the
    collection, kb.sqlite with the documents) renamed into place and CURRENT switched. The collection it
    replaced is dropped only after the switch; a build that fails or is killed leaves the old one serving.
    Stages for on_stage: "tmp-created", "collection", "sqlite", "manifest", "renamed", "current", "dropped"."""
    stage = on_stage or _no_stage
    root = Path(root)
    x = _validate_inputs(reports, chunks, vectors, tokens)
    root.mkdir(parents=True, exist_ok=True)
    uri = uri or milvus_uri(root)
    client = connect(uri)
    try:
        with _writer_lock(root):
            return _write_locked(client, root, uri, reports, chunks, x, tokens, model_id, build_info, progress, stage)
    finally:
        disconnect(client, uri)


def _write_locked(client: Any, root: Path, uri: str, reports: Sequence[Report], chunks: Sequence[Chunk],
                  x: np.ndarray, tokens: Sequence[list[str]], model_id: str, build_info: dict[str, Any],
                  progress: bool, stage: Callable[[str], None]) -> Path:
    previous = current_version(root)
    _collect_garbage(root, keep=set(list_versions(root)))
    drop_unreferenced(client, root)  # holding the lock, an unnamed collection is a dead build's
    stamp = datetime.now(timezone.utc)
    suffix = f"{stamp:%Y%m%dT%H%M%S%fZ}-{secrets.token_hex(3)}"
    version, tmp = "v-" + suffix, root / (".tmp-" + suffix)
    name = collection_name(version)
    tmp.mkdir()
    try:
        stage("tmp-created")
        spec = dense_spec(len(chunks), is_lite(uri))
        _fill_collection(client, name, reports, chunks, x, tokens, spec, progress)
        stage("collection")
        n_repairs = _write_documents(tmp / SQLITE, reports, chunks)
        _write_doc_freqs(tmp / DOC_FREQS, tokens)
        stage("sqlite")
        manifest = {
            "format_version": FORMAT_VERSION, "version": version, "engine": ENGINE, "model_id": model_id,
            "dim": int(x.shape[1]),
            "counts": {"documents": len(reports), "chunks": len(chunks), "vectors": int(x.shape[0]),
                       "repairs": n_repairs},
            "checksums": {f: {"sha256": _sha256(tmp / f), "bytes": (tmp / f).stat().st_size} for f in (SQLITE, DOC_FREQS)},
            "built_at": stamp.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "dense": {"engine": ENGINE, **spec},
            "milvus": {"collection": name, "uri": recorded_uri(root, uri), "alias": None},
            "tokenizer": TOKENIZER_ID, "build_info": build_info,
        }
        final = publish_version(root, tmp, version, manifest, stage)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if name in client.list_collections():
            client.drop_collection(name)
        raise
    replace_current(root, version, lambda: None)
    _fsync_dir(root)
    stage("current")
    switch_alias(client, name)  # after CURRENT, before the old collection goes: never an alias to nothing
    _collect_garbage(root, _versions_to_keep(root, version, previous))
    drop_unreferenced(client, root)
    stage("dropped")
    return final
