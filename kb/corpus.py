"""One report through ingest → clean → meta → segment → chunk, and a folder of them with errors kept apart."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from kb.chunk import chunk_report
from kb.clean import clean
from kb.ids import doc_id_for
from kb.ingest import IngestError, RawReport, list_report_files, read_report
from kb.meta import infer_meta
from kb.model import Chunk, Report
from kb.segment import segment


@dataclass
class Processed:
    """A report with its chunks."""

    report: Report
    chunks: list[Chunk]


@dataclass
class CorpusResult:
    """Every report of a folder that could be processed, and an error line for each that could not."""

    items: list[Processed] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def skip_record(line: str) -> dict[str, str]:
    """An error line `path: reason` as {"file": the file's name, "reason": why it is not indexed}."""
    path, _, reason = line.partition(": ")
    return {"file": Path(path).name, "reason": reason or line}


def process_raw(raw: RawReport, doc_id: str | None = None) -> Processed:
    """Clean, describe, segment and chunk one decoded report."""
    cleaned = clean(raw.text)
    meta = infer_meta(cleaned.text, cleaned.header)
    sections = segment(cleaned.text)
    did = doc_id or doc_id_for(raw.path)
    report = Report(
        doc_id=did,
        source=raw.source,
        sha256=raw.sha256,
        encoding=raw.encoding,
        raw_text=raw.text,
        text=cleaned.text,
        title=meta.title,
        headline=meta.headline,
        locality=meta.locality,
        level=meta.level,
        region=meta.region,
        province=meta.province,
        year=meta.year,
        published=meta.published,
        repairs=cleaned.repairs,
        sections=sections,
        locality_status=meta.place.status,
        official_name=meta.place.official,
        division_code=meta.place.code,
        chain=list(meta.place.chain),
    )
    return Processed(report, chunk_report(did, cleaned.text, sections))


def process_file(path: Path) -> Processed:
    """Read and process one report file; raises IngestError naming the file when it is unusable."""
    return process_raw(read_report(path))


def taken_id_message(path: Path, doc_id: str) -> str:
    """Why a file is left out when its name folds to a document id another file already has."""
    return f"{path}: document id {doc_id!r} is taken by another file; rename it"


def process_files(paths: Iterable[Path], progress: bool = False) -> CorpusResult:
    """Process report files; an unusable file becomes an error line and the others go on."""
    result = CorpusResult()
    paths = list(paths)
    seen_ids: set[str] = set()
    for path in tqdm(paths, desc="cleaning", unit="report", disable=not progress, file=sys.stderr):
        try:
            item = process_file(path)
        except IngestError as exc:
            result.errors.append(str(exc))
            continue
        if item.report.doc_id in seen_ids:
            result.errors.append(taken_id_message(path, item.report.doc_id))
            continue
        seen_ids.add(item.report.doc_id)
        result.items.append(item)
    return result


def process_folder(folder: Path, progress: bool = False) -> CorpusResult:
    """Process every report file of a folder."""
    return process_files(list_report_files(folder), progress=progress)
