"""Chunking: passages that follow the section tree, sized for the embedding model."""

from __future__ import annotations

import hashlib
import re

from kb.model import Chunk, Section
from kb.patterns import DATE_LINE, PLACE_LINE
from kb.segment import text_kind, walk

# Sizes in characters of cleaned text. multilingual-e5-small reads at most 512 tokens; its tokenizer
# turns ~1.3 characters of this corpus into one token, and retrieval on the dev queries was best with
# passages of a paragraph or two (see BENCHMARKS.md, "chunk size").
TARGET_CHARS = 320
MAX_CHARS = 480
MIN_CHARS = 100
# A block this short (the end of a truncated page: "街道", "(二)积", "一是依法保") is not a passage of its
# own: it joins the passage before it, where it still matches a search.
FRAGMENT_CHARS = 20
_HEADING_TAIL = "。;:,!? "
_SENTENCE_END = re.compile(r"(?<=[。;!?])|\n")


def _owned_segments(section: Section) -> list[tuple[int, int]]:
    """The parts of a section's span not covered by its children."""
    segs, cursor = [], section.start
    for child in section.children:
        if child.start > cursor:
            segs.append((cursor, child.start))
        cursor = max(cursor, child.end)
    if section.end > cursor:
        segs.append((cursor, section.end))
    return segs


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start] in " \n":
        start += 1
    while end > start and text[end - 1] in " \n":
        end -= 1
    return start, end


def _paragraphs(text: str, segs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out = []
    for s, e in segs:
        cur = s
        for m in re.finditer("\n", text[s:e]):
            out.append((cur, s + m.start()))
            cur = s + m.start() + 1
        out.append((cur, e))
    return out


def _is_signature(block: str) -> bool:
    """A closing sign-off (issuing body and date) carries nothing to search for."""
    return all(DATE_LINE.match(line) or PLACE_LINE.match(line) for line in block.split("\n"))


def _is_heading_line(block: str, sec: Section) -> bool:
    """The block is the section's heading line alone ("(一)强化组织领导。" for the heading without its stop)."""
    return block.rstrip(_HEADING_TAIL) == sec.heading.rstrip(_HEADING_TAIL)


def blocks(text: str, sections: list[Section]) -> list[tuple[list[str], str, int, int]]:
    """(section path, kind, start, end) for every stretch of text owned directly by one section. A heading
    line alone is left out when the section has children or text of its own: it is already in their path."""
    out: list[tuple[list[str], str, int, int]] = []
    first = sections[0].start if sections else len(text)
    s, e = _trim(text, 0, first)
    if e > s:
        out.append(([], "preamble", s, e))
    last_root = sections[-1] if sections else None
    for path, sec in walk(sections):
        names = [p.heading for p in path] + [sec.heading]
        in_tail = last_root is not None and (sec is last_root or (path and path[0] is last_root))
        segs = [_trim(text, *seg) for seg in _paragraphs(text, _owned_segments(sec))]
        segs = [(s, e) for s, e in segs if e > s]
        for s, e in segs:
            if _is_signature(text[s:e]) or (
                _is_heading_line(text[s:e], sec) and (sec.children or len(segs) > 1)
            ):
                continue
            kind = sec.kind
            if in_tail and kind == "achievements":
                # some reports fold problems and plans into the last section's closing paragraph
                kind = text_kind(text[s:e]) or kind
            out.append((names, kind, s, e))
    out.sort(key=lambda b: b[2])
    return out


def split_span(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Split a long span at sentence ends into pieces near TARGET_CHARS, none above MAX_CHARS."""
    if end - start <= MAX_CHARS:
        return [(start, end)]
    cuts = [m.start() for m in _SENTENCE_END.finditer(text, start, end)] + [end]  # absolute offsets
    pieces: list[tuple[int, int]] = []
    cur = start
    last_cut = start
    for cut in cuts:
        if cut - cur > TARGET_CHARS and last_cut > cur:
            pieces.append((cur, last_cut))
            cur = last_cut
        while cut - cur > MAX_CHARS:  # one sentence longer than MAX_CHARS: hard cut
            pieces.append((cur, cur + TARGET_CHARS))
            cur += TARGET_CHARS
        last_cut = cut
    if end > cur:
        pieces.append((cur, end))
    if len(pieces) > 1 and pieces[-1][1] - pieces[-1][0] < MIN_CHARS:
        # fold a short tail into its predecessor rather than leaving a fragment
        (a, _), (_, b) = pieces[-2], pieces[-1]
        if b - a <= MAX_CHARS:
            pieces[-2:] = [(a, b)]
    return [_trim(text, s, e) for s, e in pieces if _trim(text, s, e)[1] > _trim(text, s, e)[0]]


def _merge_small(items: list[tuple[list[str], str, int, int]], text: str) -> list[tuple[list[str], str, int, int]]:
    """Join short neighbouring blocks of one parent and kind (e.g. one-line 一是/二是 items)."""
    out: list[tuple[list[str], str, int, int]] = []
    for path, kind, s, e in items:
        if out:
            ppath, pkind, ps, pe = out[-1]
            same_parent = ppath[:-1] == path[:-1] and len(path) == len(ppath)
            if same_parent and pkind == kind and (pe - ps < MIN_CHARS or e - s < MIN_CHARS) and e - ps <= TARGET_CHARS:
                out[-1] = (ppath[:-1] if ppath != path else ppath, kind, ps, e)
                continue
        out.append((path, kind, s, e))
    return out


def _fold_fragments(items: list[tuple[list[str], str, int, int]]) -> list[tuple[list[str], str, int, int]]:
    """Join every block shorter than FRAGMENT_CHARS to the block before it (the first one to the block after
    it), keeping that block's path and kind; split_span then sizes the joined text."""
    out: list[tuple[list[str], str, int, int]] = []
    pending: int | None = None  # start of a leading fragment, waiting for a block to join
    for path, kind, s, e in items:
        if e - s < FRAGMENT_CHARS and out:
            ppath, pkind, ps, _ = out[-1]
            out[-1] = (ppath, pkind, ps, e)
        elif e - s < FRAGMENT_CHARS and pending is None:
            pending = s
        else:
            out.append((path, kind, pending if pending is not None else s, e))
            pending = None
    if pending is not None:  # nothing but fragments: keep them as one passage
        path, kind, _, e = items[-1]
        out.append((path, kind, pending, e))
    return out


def chunk_report(doc_id: str, text: str, sections: list[Section]) -> list[Chunk]:
    """Chunks of one report in document order, with stable content-derived ids."""
    chunks: list[Chunk] = []
    # The n-th passage with one digest gets `-n`: a count per digest, so repeated passages cost one
    # dictionary look-up each, not a scan of their earlier copies.
    seen: dict[str, int] = {}
    for path, kind, s, e in _merge_small(_fold_fragments(blocks(text, sections)), text):
        for ps, pe in split_span(text, s, e):
            body = text[ps:pe]
            digest = hashlib.sha1(("\x1f".join(path) + "\x1e" + body).encode()).hexdigest()[:10]
            n = seen[digest] = seen.get(digest, 0) + 1
            cid = f"{doc_id}:{digest}" if n == 1 else f"{doc_id}:{digest}-{n}"
            chunks.append(Chunk(cid, doc_id, len(chunks), list(path), kind, ps, pe, body))
    return chunks
