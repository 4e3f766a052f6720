"""The one document-id rule (build, add, CLI and web use it): unique and URL-safe for any file name."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path

from kb.errors import NotFound

# A name like `003_dd65877722798507.txt` keeps its stem as the id (the bundled seeds' ids, every link to
# them). Any other name (Chinese, a space, a leading `-`/`_`/`.`, another suffix, a long one) gets an ASCII
# slug of its stem and `~` with a hash of the whole name: `~` never occurs in a plain id, so two names
# never share an id (short of a 40-bit hash collision, which `kb add` and the build still refuse).
_PLAIN = re.compile(r"[0-9A-Za-z][0-9A-Za-z_.-]{0,79}")
PLAIN_SUFFIX = ".txt"
SLUG_CHARS = 40
HASH_CHARS = 10
# What the web layer accepts as an id before it looks it up: every id this module makes, every old id (those
# may start with `_`, `-` or `.`), within the 128-character limit the OpenAPI document states.
DOC_ID_RE = re.compile(r"^[0-9A-Za-z_.~-]{1,128}$")


def doc_id_for(path: str | Path) -> str:
    """The document id of a report file, from its name alone."""
    name = Path(path).name
    stem, suffix = (name[: -len(PLAIN_SUFFIX)], PLAIN_SUFFIX) if name.endswith(PLAIN_SUFFIX) else (Path(name).stem, "")
    if suffix and _PLAIN.fullmatch(stem):
        return stem
    slug = re.sub(r"[^0-9A-Za-z]+", "_", stem).strip("_")[:SLUG_CHARS].strip("_") or "doc"
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:HASH_CHARS]
    return f"{slug}~{digest}"


def legacy_doc_id(path: str | Path) -> str:
    """The id that kb gave a file before this rule (every other character folded to `_`): old links use it."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", Path(path).stem) or "doc"


def resolve_doc_id(doc: str, doc_ids: Sequence[str], sources: Sequence[str] | None = None) -> str:
    """A document id from an exact id, an old-style id (given the sources, aligned with doc_ids) or a unique
    prefix (`000`); NotFound names the known ids, or the candidates when several match."""
    if doc in doc_ids:
        return doc
    if sources is not None:
        old = [d for d, s in zip(doc_ids, sources, strict=True) if legacy_doc_id(s) == doc]
        if len(old) == 1:
            return old[0]
        if old:
            raise NotFound(f"document {doc!r} is an old id shared by several reports: {', '.join(old)}")
    matches = [d for d in doc_ids if d.startswith(doc)] if doc else []
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise NotFound(f"unknown document {doc!r}; known: {', '.join(doc_ids) or '(none)'}")
    raise NotFound(f"document {doc!r} is ambiguous; it matches {', '.join(matches)}")
