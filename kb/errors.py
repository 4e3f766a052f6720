"""Errors the user can cause, in one tree: the CLI prints them as one line, the API as one JSON shape.

Each class carries a stable machine `code` (the API's `error.code`), the CLI's `exit_code` and the API's
`http_status`. The codes of the errors a request can cause are the API's documented ones (docs/WEB.md).
"""

from __future__ import annotations


class KbError(Exception):
    """Base of every error that is the input's fault, not the program's."""

    code = "error"
    exit_code = 2
    http_status = 400


class UsageError(KbError):
    """A bad argument: the message names the bad value and the valid ones."""

    code = "bad_request"  # the API's code for a bad parameter since before the tree had codes


class NotFound(KbError):
    """An unknown document or passage id."""

    code = "not_found"
    http_status = 404


class IndexLoadError(KbError):
    """The index on disk cannot be used as it is (corrupt, incomplete, or built by another model); the message
    ends in the rebuild hint."""

    code = "index_load"
    # The server's index is at fault, not the request: a web request never sees this error (the holder keeps
    # serving the version it has), and if one did it would answer 500 as before this joined KbError.
    http_status = 500


class IndexMissingError(IndexLoadError):
    """There is no index at the given root."""

    code = "index_missing"



class IngestError(KbError):
    """A report file or folder that cannot be read; the message names it and the reason. (`kb add` reports
    each unreadable file it was given and exits 1; raised on its own, as for a seeds path that is not a
    folder, it is a usage error, exit 2.)"""

    code = "ingest"
    http_status = 422
