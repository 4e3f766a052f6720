"""Errors the user can cause; the CLI prints them as one line and the API as one JSON shape."""

from __future__ import annotations


class KbError(Exception):
    """Base of every error that is the input's fault, not the program's."""

    exit_code = 2
    http_status = 400


class UsageError(KbError):
    """A bad argument: the message names the bad value and the valid ones."""


class NotFound(KbError):
    """An unknown document or passage id."""

    http_status = 404
