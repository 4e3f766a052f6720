"""Plain-text renderings of kb's answers for the terminal (the --json output is the API's JSON instead)."""

from __future__ import annotations

import json
from typing import Any

# Repairs too many to list one by one in `kb show` (their counts are shown).
_BULK_REPAIRS = ("traditional", "pinyin_gloss", "whitespace", "punctuation", "unwrap")
# Localities without a match named in `kb search`'s text output; the rest is a count (40,000 at full scale).
UNMATCHED_NAMED = 20


def documents(docs: list[dict[str, Any]]) -> str:
    """`kb docs`: one line a report."""
    return "\n".join(
        f"{d['doc_id']}  {d['year'] or '????'}  {d['region'] or '?'} {d['locality'] or '(unknown)'}"
        f" [{d['level']}]  {d['title']}  ({sum(d['repairs'].values())} repairs)"
        for d in docs
    )


def section_lines(sections: list[dict[str, Any]], depth: int = 0) -> list[str]:
    out = []
    for s in sections:
        out.append(f"{'  ' * depth}{s['heading']}  [{s['kind']}] {s['start']}–{s['end']}")
        out.extend(section_lines(s["children"], depth + 1))
    return out


def document(record: dict[str, Any]) -> str:
    """`kb show`: the facts, the section tree, the text and the repairs."""
    chain = " › ".join(record.get("chain") or [])
    lines = [
        f"# {record['title']}",
        " · ".join(str(record[k] or "—") for k in ("locality", "region", "province", "year", "published")),
        *([f"{chain} {record.get('division_code') or ''}".rstrip()] if chain else []),
        "\n## Sections",
        *section_lines(record["sections"]),
        "\n## Text\n" + record["text"],
        "\n## Repairs " + json.dumps(record["repairs"], ensure_ascii=False),
    ]
    lines += [
        f"  {r['kind']:<20} {r['start']}–{r['end']}  {r['before']!r} → {r['after']!r}"
        for r in record["repair_log"]
        if r["kind"] not in _BULK_REPAIRS
    ]
    return "\n".join(lines)


def search_answer(out: dict[str, Any]) -> str:
    """`kb search` / `kb similar`: localities best first, each with its passages."""
    lines = [f"{out['normalized_query']}  ({out['took_ms']} ms)"]
    if out.get("expansions"):
        lines.append("  glossary: " + ", ".join(out["expansions"][:8]))
    if out.get("translations"):
        lines.append("  dictionary: " + "; ".join(f"{t['en']} → {' '.join(t['zh'])}" for t in out["translations"]))
    if out.get("similar_by"):
        lines.append("  by meaning and these words: " + ", ".join(out["similar_by"]))
    for g in out["by_locality"]:
        years = ",".join(map(str, g["years"]))
        match = f"  ({g['match']})" if g.get("match") else ""
        lines.append(f"\n■ {g['locality']}  {g.get('region') or ''} {years}{match}")
        for r in g["results"]:
            crumb = " › ".join(r["section_path"]) or "(preamble)"
            lines.append(f"  [{r['score']:.4f}] {r['chunk_id']}  {crumb}  [{r['kind']}]")
            lines.append("    " + r["text"][:160].replace("\n", " ") + ("…" if len(r["text"]) > 160 else ""))
    unmatched = out.get("unmatched_localities") or []
    if unmatched:
        named = ", ".join(unmatched[:UNMATCHED_NAMED])
        more = f" … and {len(unmatched) - UNMATCHED_NAMED} more" if len(unmatched) > UNMATCHED_NAMED else ""
        lines.append(f"\nno match in {len(unmatched)} localities: {named}{more}")
    return "\n".join(lines)
