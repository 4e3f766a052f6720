"""User-caused conditions for the CLI: an argument check argparse lacks, and errors that libraries report their
own way, turned into the one line on stderr."""

from __future__ import annotations

import argparse
import errno
import sqlite3
import sys

from kb.errors import UsageError
from kb.ingest import MAX_ENV, IngestError, max_mb, megabytes

# A full or read-only disk, no permission, over quota, a folder where a file should be (or the reverse).
USER_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT, errno.EISDIR, errno.ENOTDIR,
               errno.EEXIST}


def user_error(exc: BaseException, index: str) -> int | None:
    """Print one `kb: error:` line for a user-caused exception and return the exit code; None for a bug."""
    if isinstance(exc, IngestError):  # e.g. no seeds folder: kb run outside the project folder
        message = f"{exc} (run kb in the project folder, or give --seeds / KB_SEEDS)"
    elif isinstance(exc, OSError) and exc.errno in USER_ERRNOS:
        where = f" {exc.filename}" if exc.filename else ""
        message = f"cannot write{where}: {exc.strerror}"
    elif isinstance(exc, sqlite3.OperationalError):  # SQLite's words for the same: "disk I/O error", …
        message = f"the index in {index} could not be written: {exc} (is the disk full or read-only?)"
    else:
        return None
    print(f"kb: error: {message}", file=sys.stderr)
    return 2


def port_arg(value: str) -> int:
    """A TCP port, 0 (any free one, printed) to 65535: the OS would take 99999 modulo 65536 and serve elsewhere."""
    if not value.strip().isdigit() or not 0 <= int(value) <= 65535:
        raise argparse.ArgumentTypeError(f"port must be a whole number from 1 to 65535 (0: any free port); got {value!r}")
    return int(value)


def upload_mb_arg(value: str | None) -> float | None:
    """`kb serve --upload-max-mb`: megabytes above 0 and at most the reading limit (kb.ingest.max_mb, $KB_MAX_MB),
    so that a file the upload page takes in is never refused by ingest for its size; None when not given."""
    if value is None:
        return None
    most = max_mb()
    mb = megabytes(value, most)
    if mb is None:
        raise UsageError(
            f"--upload-max-mb {value!r} is not a size for uploads: give megabytes above 0 and at most {most:g}"
            f" (the reading limit, ${MAX_ENV}; raise that to take larger files)"
        )
    return mb
