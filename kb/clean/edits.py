"""Edit text in passes while keeping every logged repair located in the current text."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from kb.model import Repair


@dataclass(frozen=True)
class Edit:
    """Replace text[start:end] with `after`; logged as a repair of `kind` unless kind is empty."""

    start: int
    end: int
    after: str
    kind: str


@dataclass
class EditableText:
    """Text plus the repairs made so far, whose offsets follow the text through later edits."""

    text: str
    repairs: list[Repair] = field(default_factory=list)

    def apply(self, edits: list[Edit]) -> None:
        """Apply non-overlapping edits in one pass and remap the offsets of earlier repairs."""
        if not edits:
            return
        edits = sorted(edits, key=lambda e: (e.start, e.end))
        pieces: list[str] = []
        old_ends: list[int] = []
        old_starts: list[int] = []
        new_spans: list[tuple[int, int]] = []
        cursor = 0
        out_len = 0
        for e in edits:
            if e.start < cursor:
                raise ValueError(f"overlapping edits at {e.start}")
            pieces.append(self.text[cursor : e.start])
            out_len += e.start - cursor
            new_spans.append((out_len, out_len + len(e.after)))
            pieces.append(e.after)
            out_len += len(e.after)
            old_starts.append(e.start)
            old_ends.append(e.end)
            cursor = e.end
        pieces.append(self.text[cursor:])

        def remap(pos: int, is_end: bool) -> int:
            # edits wholly before pos shift it; a pos inside a replaced span snaps to that span's edge
            i = bisect.bisect_right(old_starts, pos) - 1
            if i < 0:
                return pos
            if pos >= old_ends[i]:
                return pos - old_ends[i] + new_spans[i][1]
            if is_end and pos == old_starts[i]:
                return new_spans[i][0]
            return new_spans[i][1] if is_end else new_spans[i][0]

        for r in self.repairs:
            start = remap(r.start, False)
            r.start, r.end = start, max(start, remap(r.end, True))
        for e, (ns, ne) in zip(edits, new_spans, strict=True):
            if e.kind:
                self.repairs.append(Repair(e.kind, ns, ne, self.text[e.start : e.end], e.after))
        self.text = "".join(pieces)
