"""The server-side name of the live collection: an alias moved to each new build where the server has aliases."""

from __future__ import annotations

from typing import Any

ALIAS = "kb_live"  # on a server with aliases, always the collection of the current version


def switch_alias(client: Any, name: str, alias: str = ALIAS) -> str | None:
    """Point `alias` at collection `name` (creating it on first use); the alias, or None where the server has
    no aliases (Milvus Lite 2.5 answers UNIMPLEMENTED). Only pymilvus is imported, so the same function runs
    against any client version."""
    from pymilvus.exceptions import MilvusException

    try:
        if alias in client.list_aliases(name).get("aliases", []):
            return alias
        try:
            client.alter_alias(name, alias)
        except MilvusException:  # the alias does not exist yet
            client.create_alias(name, alias)
        return alias
    except Exception:  # noqa: BLE001 - UNIMPLEMENTED on Lite comes back as a raw gRPC error
        return None
