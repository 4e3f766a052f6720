"""Where the index lives: the local folder of files (default) or a Milvus collection, chosen by KB_ENGINE."""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path
from typing import Any

from kb.errors import UsageError

ENGINES = ("local", "milvus")
LITE_FILE = "milvus.db"  # the Milvus Lite database inside the index root when KB_MILVUS_URI is not set
TOKEN_ENV = "KB_MILVUS_TOKEN"  # read from the environment only; never logged, never written to a manifest
# Open clients per Milvus Lite file: its server process holds the file's lock until the last one is closed,
# so a build in another process (or the kill loop's next rebuild) can open it once this process is done.
_lite_users: dict[str, int] = {}
_lite_lock = threading.Lock()


def engine_setting(value: str | None = None) -> str:
    """The engine a build writes to: `value`, else $KB_ENGINE, else 'local'."""
    raw = value if value is not None else os.environ.get("KB_ENGINE") or "local"
    name = raw.strip().lower()
    if name not in ENGINES:
        raise UsageError(f"KB_ENGINE={raw!r} is not an engine; valid: {', '.join(ENGINES)}")
    return name


def is_lite(uri: str) -> bool:
    """A Milvus Lite database file (a local path ending in .db) rather than a server's address."""
    return "://" not in uri and uri.endswith(".db")


def milvus_uri(root: Path, recorded: str | None = None) -> str:
    """$KB_MILVUS_URI, else the address a manifest recorded, else the Milvus Lite file in the index root.
    A relative Lite path is taken relative to the index root, so the folder can be moved whole."""
    uri = os.environ.get("KB_MILVUS_URI") or recorded or LITE_FILE
    if is_lite(uri) and not Path(uri).is_absolute():
        uri = str((Path(root) / uri).resolve())
    return uri


def recorded_uri(root: Path, uri: str) -> str:
    """What a manifest records of the address: no credentials, and a Lite file inside the root as relative."""
    if is_lite(uri):
        try:
            return Path(uri).resolve().relative_to(Path(root).resolve()).as_posix()
        except ValueError:
            return str(Path(uri).resolve())
    return re.sub(r"//[^/@]*@", "//", uri)  # user:password@ in the address is never recorded


def connect(uri: str, timeout: float = 60.0) -> Any:
    """A MilvusClient for `uri` (token from $KB_MILVUS_TOKEN), or a UsageError naming the extra to install."""
    try:
        from pymilvus import MilvusClient
    except ImportError:
        raise UsageError("KB_ENGINE=milvus needs the milvus extra: pip install -e '.[milvus]'") from None
    token = os.environ.get(TOKEN_ENV, "")
    if not is_lite(uri):
        return MilvusClient(uri=uri, token=token, timeout=timeout)
    Path(uri).parent.mkdir(parents=True, exist_ok=True)
    with _lite_lock:
        client = MilvusClient(uri=uri, token=token, timeout=timeout)
        _lite_users[uri] = _lite_users.get(uri, 0) + 1
    return client


def disconnect(client: Any, uri: str) -> None:
    """Close a client from connect(); the last one on a Milvus Lite file stops its server and frees the file."""
    client.close()
    if not is_lite(uri):
        return
    with _lite_lock:
        left = _lite_users.get(uri, 1) - 1
        if left > 0:
            _lite_users[uri] = left
            return
        _lite_users.pop(uri, None)
        from milvus_lite.server_manager import server_manager_instance

        server_manager_instance.release_server(uri)
