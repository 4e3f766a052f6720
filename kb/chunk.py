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


def blocks(text: str, sections: list[Section]) -> list[tuple[list[str], str, int, int]]:
    """(section path, kind, start, end) for every stretch of text owned directly by one section."""
    out: list[tuple[list[str], str, int, int]] = []
    first = sections[0].start if sections else len(text)
    s, e = _trim(text, 0, first)
    if e > s:
        out.append(([], "preamble", s, e))
    last_root = sections[-1] if sections else None
    for path, sec in walk(sections):
        names = [p.heading for p in path] + [sec.heading]
        in_tail = last_root is not None and (sec is last_root or (path and path[0] is last_root))
        for seg in _paragraphs(text, _owned_segments(sec)):
            s, e = _trim(text, *seg)
            if e <= s or (sec.children and text[s:e] == sec.heading) or _is_signature(text[s:e]):
                continue  # a heading alone is already in its children's paths
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


def chunk_report(doc_id: str, text: str, sections: list[Section]) -> list[Chunk]:
    """Chunks of one report in document order, with stable content-derived ids."""
    chunks: list[Chunk] = []
    # The n-th passage with one digest gets `-n`: a count per digest, so repeated passages cost one
    # dictionary look-up each, not a scan of their earlier copies.
    seen: dict[str, int] = {}
    for path, kind, s, e in _merge_small(blocks(text, sections), text):
        for ps, pe in split_span(text, s, e):
            body = text[ps:pe]
            digest = hashlib.sha1(("\x1f".join(path) + "\x1e" + body).encode()).hexdigest()[:10]
            n = seen[digest] = seen.get(digest, 0) + 1
            cid = f"{doc_id}:{digest}" if n == 1 else f"{doc_id}:{digest}-{n}"
            chunks.append(Chunk(cid, doc_id, len(chunks), list(path), kind, ps, pe, body))
    return chunks
