"""`kb add`: copy new report files into the seeds folder, refusing unusable files and duplicates."""

from __future__ import annotations

import hashlib
import shutil
import zipfile
from pathlib import Path, PurePosixPath

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


class _Seeds:
    """What the seeds folder holds, to refuse a file whose bytes, cleaned text, name or document id is there."""

    def __init__(self, seeds: Path, index: Path | None) -> None:
        self.seeds = seeds
        existing = list_report_files(seeds)
        self.shas = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in existing}
        self.raw_hashes = {sha: p.name for p, sha in self.shas.items()}
        self.names = {p.name for p in existing}
        self.ids = {doc_id_for(p): p.name for p in existing}
        self.known = indexed_texts(index)
        self._text_hashes: dict[str, str] | None = None
        self.given: dict[str, Path] = {}

    def text_hashes(self) -> dict[str, str]:
        # built on the first file that gets this far: the index's stored hashes, cleaning only what it lacks
        if self._text_hashes is None:
            self._text_hashes = {}
            for p, sha in self.shas.items():
                th = self.known.get(sha) or _text_hash_of(p)
                if th is not None:
                    self._text_hashes[th] = p.name
        return self._text_hashes

    def admit(self, f: Path) -> None:
        """Take `f` in, or raise a UsageError saying why it is refused."""
        _check(f)
        if f.name in self.given:
            raise UsageError(f"{f}: named twice (also as {self.given[f.name]}); give each report once")
        self.given[f.name] = f
        try:
            raw = read_report(f)
        except IngestError as exc:
            raise UsageError(str(exc)) from exc
        if raw.sha256 in self.raw_hashes:
            raise UsageError(f"{f}: already in {self.seeds} as {self.raw_hashes[raw.sha256]}")
        if f.name in self.names:
            raise UsageError(f"{f}: {self.seeds} already has a different file named {f.name}; rename it")
        did = doc_id_for(f)
        if did in self.ids:
            raise UsageError(f"{f}: its document id {did!r} is taken by {self.ids[did]} in {self.seeds}; rename it")
        texts = self.text_hashes()
        th = text_hash(process_raw(raw).report.text)
        if th in texts:
            raise UsageError(f"{f}: the same report as {texts[th]} (other name, format or encoding)")
        self.raw_hashes[raw.sha256] = texts[th] = self.ids[did] = f.name
        self.names.add(f.name)


def add_reports(
    files: list[Path], seeds: Path, index: Path | None = None, refused: list[str] | None = None
) -> list[str]:
    """Check every file first, then copy them all. A file is refused when its bytes, its cleaned text, its
    name or its document id is already in seeds (or earlier in `files`): without `refused` nothing is copied
    then (a UsageError names the file); with it, each refused file's reason is appended there and the others
    are copied (a folder or an archive: the same report in two formats is added once)."""
    seeds.mkdir(parents=True, exist_ok=True)
    state = _Seeds(seeds, index)
    plan: list[Path] = []
    for f in files:
        try:
            state.admit(f)
        except UsageError as exc:
            if refused is None:
                raise
            refused.append(str(exc))
        else:
            plan.append(f)
    for f in plan:
        tmp = seeds / f".{f.name}.part"
        try:
            shutil.copyfile(f, tmp)
            tmp.replace(seeds / f.name)  # atomic: a half-copied report never sits among the seeds
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise UsageError(f"cannot copy {f} into {seeds}: {exc.strerror or exc}") from exc
    return [f.name for f in plan]


def readable_files(files: list[Path]) -> tuple[list[Path], list[str]]:
    """The files that read as reports, and a line for each that does not; a missing file is a usage error."""
    good, bad = [], []
    for f in files:
        if not f.is_file():
            raise UsageError(f"{f}: no such file")
        try:
            read_report(f)
        except IngestError as exc:
            bad.append(str(exc))
        else:
            good.append(f)
    return good, bad


def _text_hash_of(p: Path) -> str | None:
    """The cleaned-text key of a seeds file the index does not know yet (None when it is unusable)."""
    try:
        return text_hash(process_raw(read_report(p)).report.text)
    except IngestError:
        return None


def expand_sources(sources: list[Path], workdir: Path) -> tuple[list[Path], list[str]]:
    """The report files `kb add` was given: files as they are, a folder's report files (recursively), an
    archive's members extracted under `workdir`; and a line for each archive member that is refused (a path
    leaving the archive's folder, a link). Files found in folders or archives keep unique names."""
    files: list[Path] = []
    found: list[Path] = []
    errors: list[str] = []
    for src in sources:
        if src.is_dir():
            found += sorted(p for p in src.rglob("*") if p.is_file() and not _hidden(p.relative_to(src)))
        elif src.suffix.lower() == ".zip" and src.is_file():
            found += _extract(src, workdir / f"{len(found)}-{src.stem}", errors)
        else:
            files.append(src)  # named by the user: its name is kept (and a name given twice is refused)
    return files + _unique_names(found, workdir / "renamed", {f.name for f in files}), errors


def _hidden(rel: Path) -> bool:
    # folders such as .git or __MACOSX hold no reports; a dot-named report file itself still counts
    return any(part.startswith(".") or part == "__MACOSX" for part in rel.parts[:-1])


def _extract(archive: Path, into: Path, errors: list[str]) -> list[Path]:
    """An archive's regular members, extracted under `into`; a member whose path would leave it is refused."""
    out: list[Path] = []
    try:
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                name = info.filename
                if info.is_dir():
                    continue
                parts = PurePosixPath(name.replace("\\", "/")).parts
                is_link = (info.external_attr >> 16) & 0o170000 == 0o120000
                if not parts or parts[0] in ("/", "") or ".." in parts or ":" in parts[0] or is_link:
                    errors.append(f"{archive}: member {name!r} is refused (a path leaving the archive, or a link)")
                    continue
                if _hidden(Path(*parts)) or parts[-1].startswith("~$"):
                    continue
                target = into.joinpath(*parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                out.append(target)
    except (zipfile.BadZipFile, OSError) as exc:
        errors.append(f"{archive}: not a readable zip archive ({exc})")
    return out


def _unique_names(files: list[Path], workdir: Path, taken: set[str]) -> list[Path]:
    """The files, those whose name an earlier one has copied to a name with the folder's hash (a/报告.txt and
    b/报告.txt both arrive in seeds/)."""
    seen = set(taken)
    out: list[Path] = []
    for f in files:
        name = f.name
        if name in seen:
            tag = hashlib.sha256(str(f.parent).encode()).hexdigest()[:6]
            name = f"{f.stem}-{tag}{f.suffix}"
            workdir.mkdir(parents=True, exist_ok=True)
            copy = workdir / name
            shutil.copyfile(f, copy)
            f = copy
        seen.add(name)
        out.append(f)
    return out
