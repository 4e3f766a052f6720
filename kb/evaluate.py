"""`kb eval`: recall@5/@10, MRR and passages shown of the search over judged queries, per query kind; cards; metadata."""

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
    if not out:
        raise UsageError(f"{path} holds no judged queries (one JSON object a line: {{'q': …, 'rel': [[doc, substring], …]}})")
    return out


def _found(result: dict[str, Any], doc: str, folded_sub: str) -> bool:
    return str(result["source"]).startswith(doc) and folded_sub in fold(result["text"])


# The UI's first page: the passages of the first SHOWN_LOCALITIES locality cards of `by_locality`.
SHOWN_LOCALITIES = 10


def _score_query(q: dict[str, Any], out: dict[str, Any]) -> dict[str, Any]:
    results = out["results"]
    shown = [r for g in out.get("by_locality", [])[:SHOWN_LOCALITIES] for r in g["results"]]
    rel = [(doc, fold(sub)) for doc, sub in q["rel"]]

    def hits(passages: list[dict[str, Any]]) -> int:
        return sum(any(_found(r, d, s) for r in passages) for d, s in rel)

    rank = next((i + 1 for i, r in enumerate(results) if any(_found(r, d, s) for d, s in rel)), None)
    relevant_docs = {d for d, _ in rel}
    listed = out.get("by_locality", [])
    return {
        "id": q.get("id"),
        "kind": q.get("kind", "all"),
        "q": q["q"],
        "recall@5": hits(results[:5]) / len(rel),
        "recall@10": hits(results[:10]) / len(rel),
        "rr": 1.0 / rank if rank else 0.0,
        "shown": hits(shown) / len(rel),
        "localities": len(listed),
        "relevant_localities": len(relevant_docs),
        "listed_without_judged": sum(
            not any(str(r["source"]).startswith(d) for r in g["results"] for d in relevant_docs) for g in listed
        ),
    }


def _summary(sel: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(sel) or 1
    out: dict[str, Any] = {"queries": len(sel)}
    for key, name in (("recall@5", "recall@5"), ("recall@10", "recall@10"), ("rr", "mrr"), ("shown", "shown")):
        out[name] = round(sum(r[key] for r in sel) / n, 4)
    out["localities"] = round(sum(r["localities"] for r in sel) / n, 2)
    out["localities_max"] = max((r["localities"] for r in sel), default=0)
    return out


Cards = dict[tuple[str, str], int]  # (query id, locality) → 2 answers the query, 1 partly, 0 not


def evaluate(
    queries: list[dict[str, Any]], search: Callable[[str, int], dict[str, Any]], cards: Cards | None = None
) -> dict[str, Any]:
    """Score a search function (query, k) → the search JSON (results, by_locality) over judged queries; with
    judged cards, also how many of the first page's cards answer their query."""
    rows = []
    for q in queries:
        out = search(q["q"], 10)
        rows.append(_score_query(q, out))
        if cards is not None:
            shown = [cards.get((str(q.get("id")), g["locality"])) for g in out.get("by_locality", [])[:SHOWN_LOCALITIES]]
            rows[-1]["cards"] = {"answer": sum(v is not None and v >= 1 for v in shown),
                                 "not": shown.count(0), "unjudged": shown.count(None)}
    kinds = sorted({r["kind"] for r in rows})
    report = {
        "overall": _summary(rows),
        "by_kind": {k: _summary([r for r in rows if r["kind"] == k]) for k in kinds},
        "queries": rows,
    }
    if cards is not None:
        report["cards"] = {key: sum(r["cards"][key] for r in rows) for key in ("answer", "not", "unjudged")}
    return report


def load_cards(path: str | None) -> Cards | None:
    """Judged cards, one JSON object a line: {"id": query id, "locality": …, "verdict": 0, 1 or 2}."""
    if path is None:
        return None
    out: Cards = {}
    for n, line in enumerate(load_lines(Path(path)), 1):
        try:
            row = json.loads(line)
            key, verdict = (str(row["id"]), str(row["locality"])), row["verdict"]
        except (ValueError, KeyError, TypeError) as exc:
            raise UsageError(f'{path}:{n}: expected {{"id": …, "locality": …, "verdict": 0|1|2}} ({exc})') from exc
        if verdict not in (0, 1, 2):
            raise UsageError(f"{path}:{n}: verdict {verdict!r} is not one of 0, 1, 2")
        out[key] = verdict
    return out


def evaluate_offtopic(queries: list[str], search: Callable[[str, int], dict[str, Any]]) -> dict[str, Any]:
    """Localities listed for queries no report discusses (each should list none, at most one)."""
    rows = [{"q": q, "localities": [g["locality"] for g in search(q, 10).get("by_locality", [])]} for q in queries]
    counts = [len(r["localities"]) for r in rows]
    return {"queries": len(rows), "max": max(counts, default=0), "mean": round(sum(counts) / (len(counts) or 1), 2),
            "over_one": sum(c > 1 for c in counts), "rows": rows}


def load_lines(path: Path) -> list[str]:
    """Non-empty lines of a text file (off-topic queries)."""
    try:
        return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from exc


def load_expected_meta(path: Path) -> dict[str, dict[str, Any]]:
    """Expected metadata: {source prefix: {"locality": …, "year": …}} (null where the text does not say)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise UsageError(f"{path}: not JSON ({exc})") from exc
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise UsageError(f'{path}: expected {{"<source prefix>": {{"locality": …, "year": …}}, …}}')
    return data


def evaluate_meta(expected: dict[str, dict[str, Any]], docs: list[dict[str, Any]]) -> dict[str, Any]:
    """Locality and year accuracy of the indexed reports against expected labels; every miss listed. An
    unverified locality (not found in the gazetteer) counts as wrong."""
    out: dict[str, Any] = {"reports": 0, "misses": []}
    right = {"locality": 0, "year": 0}
    for prefix, want in sorted(expected.items()):
        doc = next((d for d in docs if str(d["source"]).startswith(prefix)), None)
        if doc is None:
            out["misses"].append({"source": prefix, "field": "report", "expected": "indexed", "got": None})
            continue
        out["reports"] += 1
        got_loc = doc.get("locality") if doc.get("locality_status", "verified") != "unverified" else None
        for field, got in (("locality", got_loc), ("year", doc.get("year"))):
            if want.get(field) == got:
                right[field] += 1
            else:
                out["misses"].append({"source": doc["source"], "field": field, "expected": want.get(field),
                                      "got": doc.get(field)})
    n = len(expected) or 1
    out["locality_right"], out["year_right"] = right["locality"], right["year"]
    out["locality_accuracy"], out["year_accuracy"] = round(right["locality"] / n, 4), round(right["year"] / n, 4)
    out["expected"] = len(expected)
    return out


def format_table(report: dict[str, Any], title: str = "") -> str:
    """The per-kind table as Markdown."""
    lines = [
        f"{title}" if title else "",
        "| kind | queries | recall@5 | recall@10 | MRR | shown | localities listed (mean / max) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, s in [*report["by_kind"].items(), ("**overall**", report["overall"])]:
        lines.append(
            f"| {name} | {s['queries']} | {s['recall@5']:.3f} | {s['recall@10']:.3f} | {s['mrr']:.3f} | {s['shown']:.3f}"
            f" | {s['localities']:.1f} / {s['localities_max']} |"
        )
    return "\n".join(line for line in lines if line is not None)


def format_report(report: dict[str, Any]) -> str:
    """`kb eval`'s text output: the per-kind table and each query not fully found or shown, the off-topic
    localities listed, the metadata misses — for the parts the report holds."""
    lines: list[str] = []
    if "queries" in report:
        lines.append(format_table(report, f"mode: {report.get('mode', 'hybrid')}"))
        for row in report["queries"]:
            if row["recall@10"] < 1 or row["shown"] < 1:
                lines.append(f"  missed: {row['id']} {row['q']!r} recall@10={row['recall@10']:.2f} shown={row['shown']:.2f}")
    if "cards" in report:
        c = report["cards"]
        lines.append(f"cards of the first {SHOWN_LOCALITIES} localities: {c['answer']} answer the query, {c['not']} do not, "
                     f"{c['unjudged']} not judged")
    if "offtopic" in report:
        off = report["offtopic"]
        lines.append(f"off-topic: {off['queries']} queries, localities listed max {off['max']}, mean {off['mean']}")
        lines += [f"  listed for {r['q']!r}: {', '.join(r['localities'])}" for r in off["rows"] if r["localities"]]
    if "meta" in report:
        meta = report["meta"]
        lines.append(f"metadata: locality right {meta['locality_right']}/{meta['expected']}, "
                     f"year right {meta['year_right']}/{meta['expected']}")
        lines += [f"  {m['source']}: {m['field']} expected {m['expected']!r}, got {m['got']!r}" for m in meta["misses"]]
    return "\n".join(lines)
