"""`kb add`: copy new report files into the seeds folder, refusing unusable files and duplicates."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from kb.collect import text_hash
from kb.corpus import process_raw
from kb.errors import UsageError
from kb.ids import doc_id_for
from kb.ingest import SUFFIXES, IngestError, list_report_files, read_report
from kb.store import current_version
from kb.store.layout import read_manifest


def indexed_texts(index: Path | None) -> dict[str, str]:
    """sha256 of the file bytes → sha256 of the cleaned text, for every report the current version indexed, so
    that `kb add` compares against them without cleaning each existing report again."""
    if index is None:
        return {}
    try:
        name = current_version(index)
        info = read_manifest(index / name, None).get("build_info", {}) if name else {}
    except Exception:  # an unreadable index only costs the shortcut: the reports are cleaned instead
        return {}
    files, texts = info.get("files", {}), info.get("texts", {})
    return {files[n]: texts[n] for n in files if n in texts}


def _check(f: Path) -> None:
    if f.is_dir():
        raise UsageError(f"{f}: is a folder; name its report files (`kb add {f}/*.txt`)")
    if not f.is_file():
        raise UsageError(f"{f}: no such file")
    if f.suffix.lower() not in SUFFIXES:
        raise UsageError(f"{f}: not a report file; expected a name ending in {', '.join(SUFFIXES)}")


def add_reports(files: list[Path], seeds: Path, index: Path | None = None) -> list[str]:
    """Check every file first, then copy them all; nothing is copied if any file is refused. A file is refused
    when its bytes, its cleaned text, its name or its document id is already in seeds."""
    seeds.mkdir(parents=True, exist_ok=True)
    existing = list_report_files(seeds)
    shas = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in existing}
    raw_hashes = {sha: p.name for p, sha in shas.items()}
    names = {p.name for p in existing}
    ids = {doc_id_for(p): p.name for p in existing}
    known = indexed_texts(index)
    text_hashes: dict[str, str] | None = None
    given: dict[str, Path] = {}
    plan: list[tuple[Path, str]] = []
    for f in files:
        _check(f)
        if f.name in given:
            raise UsageError(f"{f}: named twice (also as {given[f.name]}); give each report once")
        given[f.name] = f
        try:
            raw = read_report(f)
        except IngestError as exc:
            raise UsageError(str(exc)) from exc
        if raw.sha256 in raw_hashes:
            raise UsageError(f"{f}: already in {seeds} as {raw_hashes[raw.sha256]}")
        if f.name in names:
            raise UsageError(f"{f}: {seeds} already has a different file named {f.name}; rename it")
        did = doc_id_for(f)
        if did in ids:
            raise UsageError(f"{f}: its document id {did!r} is taken by {ids[did]} in {seeds}; rename it")
        if text_hashes is None:
            text_hashes = {}
            for p, sha in shas.items():
                th = known.get(sha) or _text_hash_of(p)
                if th is not None:
                    text_hashes[th] = p.name
        th = text_hash(process_raw(raw).report.text)
        if th in text_hashes:
            raise UsageError(f"{f}: the same report as {text_hashes[th]} (other name or encoding)")
        raw_hashes[raw.sha256] = text_hashes[th] = ids[did] = f.name
        names.add(f.name)
        plan.append((f, f.name))
    for f, name in plan:
        tmp = seeds / f".{name}.part"
        try:
            shutil.copyfile(f, tmp)
            tmp.replace(seeds / name)  # atomic: a half-copied report never sits among the seeds
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise UsageError(f"cannot copy {f} into {seeds}: {exc.strerror or exc}") from exc
    return [name for _, name in plan]


def _text_hash_of(p: Path) -> str | None:
    """The cleaned-text key of a seeds file the index does not know yet (None when it is unusable)."""
    try:
        return text_hash(process_raw(read_report(p)).report.text)
    except IngestError:
        return None
