"""`kb eval`: recall@5, recall@10 and MRR of the search over judged queries, overall and per query kind."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kb.clean import lexicon
from kb.errors import UsageError

_GLOSS = re.compile(r"\([a-zü]*[āáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜ][a-zü]*\)")
_KEEP = re.compile(r"[^\u3400-\u4dbf\u4e00-\u9fffA-Za-z0-9]")


def fold(text: str) -> str:
    """Simplified script, no pinyin glosses, only CJK characters, ASCII letters and digits."""
    return _KEEP.sub("", lexicon.to_simplified(_GLOSS.sub("", text)))


def load_queries(path: Path) -> list[dict[str, Any]]:
    """Judged queries, one JSON object per line: id, kind, q, rel = [[doc prefix, substring], …]."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UsageError(f"cannot read queries file {path}: {exc.strerror}") from exc
    out = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            assert isinstance(obj["q"], str) and all(len(pair) == 2 for pair in obj["rel"])
        except (ValueError, KeyError, TypeError, AssertionError) as exc:
            raise UsageError(f"{path}:{n}: not a judged query ({{'q': …, 'rel': [[doc, substring], …]}})") from exc
        out.append(obj)
    return out


def _found(result: dict[str, Any], doc: str, folded_sub: str) -> bool:
    return str(result["source"]).startswith(doc) and folded_sub in fold(result["text"])


def evaluate(queries: list[dict[str, Any]], search: Callable[[str, int], list[dict[str, Any]]]) -> dict[str, Any]:
    """Score a search function (query, k) → results over judged queries."""
    rows = []
    for q in queries:
        results = search(q["q"], 10)
        rel = [(doc, fold(sub)) for doc, sub in q["rel"]]
        hit5 = sum(any(_found(r, d, s) for r in results[:5]) for d, s in rel)
        hit10 = sum(any(_found(r, d, s) for r in results[:10]) for d, s in rel)
        rank = next((i + 1 for i, r in enumerate(results) if any(_found(r, d, s) for d, s in rel)), None)
        rows.append({
            "id": q.get("id"),
            "kind": q.get("kind", "all"),
            "q": q["q"],
            "recall@5": hit5 / len(rel),
            "recall@10": hit10 / len(rel),
            "rr": 1.0 / rank if rank else 0.0,
        })

    def summary(sel: list[dict[str, Any]]) -> dict[str, Any]:
        n = len(sel) or 1
        return {
            "queries": len(sel),
            "recall@5": round(sum(r["recall@5"] for r in sel) / n, 4),
            "recall@10": round(sum(r["recall@10"] for r in sel) / n, 4),
            "mrr": round(sum(r["rr"] for r in sel) / n, 4),
        }

    kinds = sorted({r["kind"] for r in rows})
    return {
        "overall": summary(rows),
        "by_kind": {k: summary([r for r in rows if r["kind"] == k]) for k in kinds},
        "queries": rows,
    }


def format_table(report: dict[str, Any], title: str = "") -> str:
    """The per-kind table as Markdown."""
    lines = [f"{title}" if title else "", "| kind | queries | recall@5 | recall@10 | MRR |", "|---|---|---|---|---|"]
    for name, s in [*report["by_kind"].items(), ("**overall**", report["overall"])]:
        lines.append(f"| {name} | {s['queries']} | {s['recall@5']:.3f} | {s['recall@10']:.3f} | {s['mrr']:.3f} |")
    return "\n".join(line for line in lines if line is not None)
