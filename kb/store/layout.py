"""The index folder on disk: file names, versions, CURRENT, manifest checks, fsync, writer lock, cleanup."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kb.errors import IndexLoadError
from kb.tokens import TOKENIZER_ID

if TYPE_CHECKING:  # records imports this module
    from kb.model import Report
    from kb.store.records import Records

try:  # POSIX; on Windows writers are not serialized and stale temp folders are judged by age
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

# 2: documents gained the locality chain (province › city › county › township) for the region filter
FORMAT_VERSION = 2
REBUILD_HINT = "rebuild with `kb build --full` or `scripts/rebuild_index`"
CURRENT = "CURRENT"
MANIFEST = "manifest.json"
VECTORS = "vectors.npy"
DENSE = "dense.faiss"
BM25_DIR = "bm25"
SQLITE = "kb.sqlite"
KEEP_VERSIONS = 2
# Files above this size get a size check at load; their sha256 only with verify="full" (hashing 1.5 GB of
# vectors would cost seconds at every server start).
FULL_HASH_MAX_BYTES = 64 * 1024 * 1024
# Without fcntl a concurrent writer cannot be ruled out, so only old temp folders count as stale.
STALE_TMP_SECONDS = 6 * 3600
_VERSION_RE = re.compile(r"^v-[0-9A-Za-z._-]+$")


def _fail(problem: str, cls: type[IndexLoadError] = IndexLoadError) -> IndexLoadError:
    return cls(f"{problem}; {REBUILD_HINT}")


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDWR)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # Windows cannot open directories; NTFS renames are journaled anyway
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_text_durably(path: Path, text: str) -> None:
    """Write a small text file and fsync it before returning (the manifest, CURRENT's temp file)."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)


# Per root, within this process: a thread's nested writer_lock (a build holds it from listing the seeds to
# the swap; write_index takes it again) must not wait for its own flock, which is per open file.
_HELD: dict[str, tuple[threading.RLock, list[int]]] = {}
_HELD_GUARD = threading.Lock()


@contextlib.contextmanager
def _writer_lock(root: Path) -> Iterator[None]:
    """Serializes writers on one root, so any temp folder seen while holding it is a dead build's; reentrant
    in one thread."""
    root.mkdir(parents=True, exist_ok=True)
    with _HELD_GUARD:
        lock, depth = _HELD.setdefault(str(root.resolve()), (threading.RLock(), [0]))
    with lock:
        if depth[0] or fcntl is None:
            depth[0] += 1
            try:
                yield
            finally:
                depth[0] -= 1
            return
        with open(root / ".lock", "a+b") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            depth[0] += 1
            try:
                yield
            finally:
                depth[0] -= 1
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)


writer_lock = _writer_lock  # the public name: kb.build holds it across a whole build


def current_version(root: str | Path) -> str | None:
    """The version folder name that root/CURRENT names, or None."""
    try:
        name = (Path(root) / CURRENT).read_text(encoding="utf-8").strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, UnicodeDecodeError) as exc:  # a folder, or bytes that are not a version name
        raise _fail(f"{Path(root) / CURRENT} is unreadable ({exc.__class__.__name__})") from exc
    return name or None


def publish_version(root: Path, tmp: Path, version: str, manifest: dict[str, Any], stage: Callable[[str], None]) -> Path:
    """Write a built version's manifest durably, then rename its temp folder into place (stages "manifest",
    "renamed"); CURRENT is not touched yet."""
    _write_text_durably(tmp / MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=2, default=str))
    _fsync_dir(tmp)
    stage("manifest")
    final = root / version
    os.replace(tmp, final)
    _fsync_dir(root)
    stage("renamed")
    return final


def replace_current(root: Path, version: str, written: Callable[[], None]) -> None:
    """Point CURRENT at version durably (`written` runs once the temp file is); a CURRENT that is a folder
    (an accident) is moved out of the way."""
    tmp = root / (CURRENT + ".tmp")
    _write_text_durably(tmp, version + "\n")
    written()
    if (root / CURRENT).is_dir() and not (root / CURRENT).is_symlink():
        _remove_tree(root / CURRENT)
    os.replace(tmp, root / CURRENT)


def list_versions(root: str | Path) -> list[str]:
    """Complete version folders under root, oldest first by name."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and p.name.startswith("v-"))


def _remove_tree(path: Path) -> None:
    # Rename first, so a kill during the slow delete never leaves a half-deleted v-… folder.
    trash = path.with_name(".del-" + path.name.lstrip("."))
    try:
        os.replace(path, trash)
    except OSError:
        trash = path
    shutil.rmtree(trash, ignore_errors=True)


def _collect_garbage(root: Path, keep: set[str]) -> list[str]:
    removed = []
    now = time.time()
    for p in root.iterdir():
        if not p.is_dir():
            continue
        if p.name.startswith("v-") and p.name not in keep:
            _remove_tree(p)
        elif p.name.startswith((".tmp-", ".del-")):
            if fcntl is None and now - p.stat().st_mtime < STALE_TMP_SECONDS:  # pragma: no cover
                continue
            shutil.rmtree(p, ignore_errors=True)
        else:
            continue
        removed.append(p.name)
    return removed


def raw_manifest(folder: Path) -> dict[str, Any]:
    """A version folder's manifest as written, checked only for being a JSON object: what an older kb (another
    format, model or tokenizer) wrote reads too, for what it says about the reports it holds."""
    mpath = folder / MANIFEST
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _fail(f"{mpath} is missing") from None
    except (OSError, ValueError) as e:
        raise _fail(f"{mpath} is unreadable: {e}") from e
    if not isinstance(manifest, dict):
        raise _fail(f"{mpath} is not a JSON object")
    return manifest


def read_manifest(folder: Path, expected_model_id: str | None) -> dict[str, Any]:
    """A version folder's manifest, checked: format version, required keys, model and tokenizer."""
    mpath = folder / MANIFEST
    manifest = raw_manifest(folder)
    fv = manifest.get("format_version")
    if fv != FORMAT_VERSION:
        raise _fail(f"{mpath} has format_version {fv!r}; this kb reads format_version {FORMAT_VERSION}")
    for key in ("model_id", "dim", "counts", "checksums", "dense", "tokenizer"):
        if key not in manifest:
            raise _fail(f"{mpath} lacks {key!r}")
    if expected_model_id is not None and manifest["model_id"] != expected_model_id:
        raise _fail(
            f"index {folder} was built with model {manifest['model_id']!r}, "
            f"but the configured model is {expected_model_id!r}"
        )
    if manifest["tokenizer"] != TOKENIZER_ID:
        raise _fail(
            f"index {folder} was tokenized with {manifest['tokenizer']!r}, "
            f"but this kb tokenizes with {TOKENIZER_ID!r}"
        )
    return manifest


def verify_files(folder: Path, manifest: dict[str, Any], verify: str) -> None:
    """Every file the manifest lists has its size, and its sha256 as `verify` asks (see IndexReader)."""
    for rel, want in sorted(manifest["checksums"].items()):
        p = folder / rel
        try:
            size = p.stat().st_size
        except FileNotFoundError:
            raise _fail(f"{p} is missing") from None
        if size != want["bytes"]:
            raise _fail(f"{p} has {size} bytes, the manifest says {want['bytes']}")
        if verify == "full" or (verify == "auto" and size <= FULL_HASH_MAX_BYTES):
            got = _sha256(p)
            if got != want["sha256"]:
                raise _fail(f"{p} is corrupt (sha256 {got[:12]}…, the manifest says {want['sha256'][:12]}…)")


class VersionReader:
    """What every reader of one index version shares: a context manager, whether CURRENT still names it, and
    the reports, read from the version's kb.sqlite. Subclasses set `root`, `version` and `_records` and
    define close()."""

    root: Path
    version: str
    _records: Records

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def is_current(self) -> bool:
        """Whether root/CURRENT still names this version (a server reopens when it does not)."""
        return current_version(self.root) == self.version

    def documents(self) -> list[dict[str, Any]]:
        """Every document's summary (Report.summary()), ordered by doc_id."""
        return self._records.documents()

    def document(self, doc_id: str) -> dict[str, Any] | None:
        """A document's summary plus headline, encoding, sha256, text, sections (tree) and repair_log."""
        return self._records.document(doc_id)

    def raw_text(self, doc_id: str) -> str | None:
        """The document's text as ingested, before cleaning."""
        return self._records.raw_text(doc_id)

    def report(self, doc_id: str) -> Report | None:
        """The stored Report, rebuilt (for incremental builds that keep unchanged documents)."""
        return self._records.report(doc_id)
