"""Holds the live Searcher and swaps to the new index version once a rebuild moves CURRENT."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from flask import current_app, g

from kb.embed import Embedder
from kb.errors import KbError
from kb.search import Searcher
from kb.store import IndexLoadError, current_version, open_index

log = logging.getLogger("kb.web")

T = TypeVar("T")
MAX_MEMO = 64  # values kept per version (rendered repair logs, one per document viewed)


def open_searcher(index: Path, embedder: Embedder) -> Searcher:
    """A Searcher over the current version in `index`; its reader is closed again if the Searcher fails."""
    reader = open_index(index, expected_model_id=embedder.model_id)
    try:
        return Searcher(reader, embedder)
    except BaseException:
        reader.close()
        raise


@dataclass
class Generation:
    """One loaded index version, the requests using it right now, and what is derived from it: a version
    never changes, so the values are computed once and die with it."""

    searcher: Searcher
    owned: bool  # opened by the holder (closed when retired); an injected searcher is the caller's to close
    users: int = 0
    retired: bool = False
    closed: bool = False
    _documents: list[dict[str, Any]] | None = field(default=None, repr=False)
    _memo: dict[Hashable, Any] = field(default_factory=dict, repr=False)
    _memo_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def documents(self) -> list[dict[str, Any]]:
        """The document summaries of this version, read once."""
        docs = self._documents
        if docs is None:
            docs = self._documents = self.searcher.reader.documents()
        return docs

    def memo(self, key: Hashable, make: Callable[[], T]) -> T:
        """make(), computed once per key for this version; beyond MAX_MEMO keys the oldest is dropped."""
        with self._memo_lock:
            if key in self._memo:
                return self._memo[key]
        value = make()  # outside the lock: a slow one must not hold up other keys
        with self._memo_lock:
            while len(self._memo) >= MAX_MEMO:
                self._memo.pop(next(iter(self._memo)))
            self._memo[key] = value
        return value


class SearcherHolder:
    """The live Searcher for a server: requests take it with acquire()/release(); at most once per
    `check_interval` seconds a request looks whether root/CURRENT still names the loaded version and, if
    not, a background thread opens the new one and swaps it in. Requests in flight finish on the old
    version, which is closed when the last of them releases it, so a rebuild never fails a request."""

    def __init__(self, searcher: Searcher, *, owned: bool = True, check_interval: float = 1.0) -> None:
        self._gen = Generation(searcher, owned)
        self._lock = threading.Lock()
        self._check_interval = check_interval
        self._next_check = time.monotonic() + check_interval
        self._loading: threading.Thread | None = None
        self._failed_version: str | None = None
        self.swaps = 0
        self.last_error: str | None = None

    @property
    def searcher(self) -> Searcher:
        """The current searcher (for code that does not need to keep it alive across a swap)."""
        return self._gen.searcher

    @property
    def current(self) -> Generation:
        """The current version, not acquired (for code that does not need to keep it alive across a swap)."""
        return self._gen

    def acquire(self) -> Generation:
        self.maybe_reload()
        with self._lock:
            gen = self._gen
            gen.users += 1
            return gen

    def release(self, gen: Generation) -> None:
        with self._lock:
            gen.users -= 1
            close = gen.retired and gen.users == 0 and gen.owned and not gen.closed
            if close:
                gen.closed = True
        if close:
            gen.searcher.reader.close()

    def maybe_reload(self) -> None:
        """Start loading a newer index version in the background if CURRENT moved (cheap; rate-limited)."""
        now = time.monotonic()
        if now < self._next_check:
            return
        with self._lock:
            if now < self._next_check or self._loading is not None:
                return
            self._next_check = now + self._check_interval
            reader = self._gen.searcher.reader
        try:
            if reader.is_current():
                return
            version = current_version(reader.root)
        except OSError:
            return  # CURRENT is being replaced right now; look again next time
        if version is None or version == self._failed_version:
            return
        with self._lock:
            if self._loading is not None:
                return
            self._loading = threading.Thread(target=self._load, name="kb-index-reload", daemon=True)
            self._loading.start()

    def reload(self, wait: bool = True, timeout: float = 60.0) -> bool:
        """Check now (ignoring the rate limit); with wait, block until a started load has finished.
        Returns whether the loaded version is the current one afterwards."""
        self._next_check = 0.0
        self.maybe_reload()
        thread = self._loading
        if wait and thread is not None:
            thread.join(timeout)
        try:
            return self._gen.searcher.reader.is_current()
        except OSError:
            return False

    def _load(self) -> None:
        old = self._gen.searcher
        root = old.reader.root
        try:
            new = open_searcher(root, old.embedder)
        except (IndexLoadError, KbError, OSError) as exc:
            # Keep answering from the version we have; try again only once CURRENT names another version.
            try:
                self._failed_version = current_version(root)
            except OSError:
                self._failed_version = None
            self.last_error = str(exc)
            log.warning("kb: keeping index %s; cannot load the new version: %s", old.reader.version, exc)
            with self._lock:
                self._loading = None
            return
        close_old = False
        with self._lock:
            prev = self._gen
            self._gen = Generation(new, owned=True)
            prev.retired = True
            close_old = prev.users == 0 and prev.owned and not prev.closed
            if close_old:
                prev.closed = True
            self._loading = None
            self.swaps += 1
            self.last_error = None
        log.info("kb: now serving index %s (was %s)", new.reader.version, prev.searcher.reader.version)
        if close_old:
            prev.searcher.reader.close()

    def close(self) -> None:
        """Close the live version if the holder opened it (for tests and shutdown)."""
        thread = self._loading
        if thread is not None:
            thread.join(60)
        with self._lock:
            gen = self._gen
            gen.retired = True
            close = gen.owned and gen.users == 0 and not gen.closed
            if close:
                gen.closed = True
        if close:
            gen.searcher.reader.close()


# ----------------------------------------------------------------------------- per request


def app_holder() -> SearcherHolder:
    """The holder of the app handling this request."""
    holder: SearcherHolder = current_app.extensions["kb"]
    return holder


def generation() -> Generation:
    """The index version for this request: taken once, kept alive until the request ends (index swaps)."""
    gen: Generation | None = g.get("kb_gen")
    if gen is None:
        gen = g.kb_gen = app_holder().acquire()
    return gen


def searcher() -> Searcher:
    """The searcher of this request's index version."""
    return generation().searcher


def release_generation(exc: BaseException | None = None) -> None:
    """Give this request's index version back (a teardown hook), so a retired one can close."""
    gen = g.pop("kb_gen", None)
    if gen is not None:
        app_holder().release(gen)
