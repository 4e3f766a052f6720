"""Uploaded reports, added the way `kb add` adds them: one background worker takes the upload jobs in turn,
copies what it can into seeds/ (kb.add), rebuilds the index (kb.build) and has the holder swap it in."""

from __future__ import annotations

import itertools
import logging
import queue
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kb.add import add_reports, expand_sources, readable_files
from kb.build import build
from kb.errors import KbError
from kb.ids import doc_id_for
from web.holder import SearcherHolder

log = logging.getLogger("kb.web")
KEEP_JOBS = 50  # finished jobs whose status can still be asked for


@dataclass
class Job:
    """One upload: its files (in a temporary folder until added), what became of each, and where it is."""

    id: str
    workdir: Path
    files: list[Path]
    state: str = "queued"  # queued → adding → building → done | failed
    added: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    message: str = ""
    version: str | None = None
    started: float = field(default_factory=time.time)

    def status(self) -> dict[str, Any]:
        return {
            "job": self.id,
            "state": self.state,
            "done": self.state in ("done", "failed"),
            "files": [f.name for f in self.files],
            "added": [{"source": n, "doc_id": doc_id_for(n)} for n in self.added],
            "errors": list(self.errors),
            "message": self.message,
            "version": self.version,
        }

    def _tidy(self, line: str) -> str:
        # the temporary folder's path means nothing to the person who uploaded: name the file alone
        return line.replace(f"{self.workdir}/", "")


class Uploads:
    """The upload jobs of one app and the thread that runs them, one at a time (the build is one writer)."""

    def __init__(self, seeds: Path, holder: SearcherHolder) -> None:
        self.seeds = seeds
        self.holder = holder
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._queue: queue.Queue[Job] = queue.Queue()
        self._ids = itertools.count(1)
        self._worker: threading.Thread | None = None

    def new_workdir(self) -> Path:
        """A temporary folder for one upload's files, outside seeds/ (they reach seeds/ only through kb.add)."""
        return Path(tempfile.mkdtemp(prefix="kb-upload-"))

    def submit(self, workdir: Path, files: list[Path]) -> Job:
        with self._lock:
            job = Job(id=f"{next(self._ids)}-{int(time.time())}", workdir=workdir, files=files)
            self._jobs[job.id] = job
            for old in [j for j in self._jobs.values() if j.state in ("done", "failed")][:-KEEP_JOBS]:
                del self._jobs[old.id]
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._run, name="kb-upload", daemon=True)
                self._worker.start()
        self._queue.put(job)
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def wait(self, timeout: float = 120.0) -> None:
        """Block until every submitted job has finished (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.05)

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            try:
                self._process(job)
            except KbError as exc:
                job.state, job.message = "failed", job._tidy(str(exc))
            except Exception as exc:  # the worker must outlive any one job
                log.exception("kb: upload %s failed", job.id)
                job.state, job.message = "failed", f"internal error ({type(exc).__name__}); the server log has it"
            finally:
                shutil.rmtree(job.workdir, ignore_errors=True)
                self._queue.task_done()

    def _process(self, job: Job) -> None:
        job.state = "adding"
        found, bad_members = expand_sources(job.files, job.workdir / "unpacked")
        files, unreadable = readable_files(found)
        refused: list[str] = []
        searcher = self.holder.searcher
        index = searcher.reader.root
        job.added = add_reports(files, self.seeds, index, refused) if files else []
        job.errors = [job._tidy(line) for line in (*bad_members, *unreadable, *refused)]
        if not job.added:
            job.state, job.message = "failed", "no report was added"
            return
        job.state = "building"
        stats = build(self.seeds, index, searcher.embedder, progress=False)
        job.errors += [job._tidy(f"{s}") for s in stats.skipped if any(n in f"{s}" for n in job.added)]
        self.holder.reload(wait=True)
        job.version = self.holder.searcher.reader.version
        job.state = "done"
        job.message = f"{len(job.added)} added; the index now has {stats.documents} reports"
