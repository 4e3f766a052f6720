"""`kb add`: copy new report files into the seeds folder, refusing unusable files and duplicates."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from kb.corpus import process_raw
from kb.errors import UsageError
from kb.ingest import SUFFIXES, IngestError, list_report_files, read_report


def add_reports(files: list[Path], seeds: Path) -> list[str]:
    """Check every file first, then copy them all; nothing is copied if any file is refused."""
    seeds.mkdir(parents=True, exist_ok=True)
    existing = list_report_files(seeds)
    raw_hashes = {hashlib.sha256(p.read_bytes()).hexdigest(): p.name for p in existing}
    names = {p.name for p in existing}
    text_hashes: dict[str, str] | None = None
    plan: list[tuple[Path, str]] = []
    for f in files:
        if not f.is_file():
            raise UsageError(f"{f}: no such file")
        if f.suffix.lower() not in SUFFIXES:
            raise UsageError(f"{f}: not a report file; expected a name ending in {', '.join(SUFFIXES)}")
        try:
            raw = read_report(f)
        except IngestError as exc:
            raise UsageError(str(exc)) from exc
        if raw.sha256 in raw_hashes:
            raise UsageError(f"{f}: already in {seeds} as {raw_hashes[raw.sha256]}")
        if f.name in names:
            raise UsageError(f"{f}: {seeds} already has a different file named {f.name}; rename it")
        if text_hashes is None:
            text_hashes = {_text_hash(p): p.name for p in existing if _readable(p)}
        th = _text_hash(f)
        if th in text_hashes:
            raise UsageError(f"{f}: the same report as {text_hashes[th]} (other name or encoding)")
        raw_hashes[raw.sha256] = f.name
        text_hashes[th] = f.name
        names.add(f.name)
        plan.append((f, f.name))
    for f, name in plan:
        tmp = seeds / f".{name}.part"
        shutil.copyfile(f, tmp)
        tmp.replace(seeds / name)  # atomic: a half-copied report never sits among the seeds
    return [name for _, name in plan]


def _readable(p: Path) -> bool:
    try:
        read_report(p)
    except IngestError:
        return False
    return True


def _text_hash(p: Path) -> str:
    return hashlib.sha256(process_raw(read_report(p)).report.text.encode()).hexdigest()
