"""View models: what the templates show, built from search results and document records."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kb.results import group_by_locality, locality_key
from kb.search import Filters
from web import render

FILTER_KINDS = ("achievements", "problems", "plans")
MAX_REPAIR_ROWS = 200  # rows of one repair kind listed on a document page; the JSON has them all
COLLAPSE_ABOVE = 30  # a repair kind with more rows starts folded


def filter_options(docs: Sequence[dict[str, Any]]) -> dict[str, list[tuple[str, str]]]:
    """(value, label) per filter select, in the order shown."""
    locs: dict[str, str] = {}
    for d in sorted(docs, key=lambda d: (d.get("province") or "", d.get("region") or "", d.get("locality") or "")):
        if d.get("locality"):
            locs.setdefault(d["locality"], d.get("region") or "")
    regions = sorted({d[f] for d in docs for f in ("province", "region") if d.get(f)})
    years = sorted({d["year"] for d in docs if d.get("year")}, reverse=True)
    return {
        "locality": [(loc, f"{loc}（{region}）" if region else loc) for loc, region in locs.items()],
        "year": [(str(y), str(y)) for y in years],
        "region": [(r, r) for r in regions],
        "province": [(p, p) for p in sorted({d["province"] for d in docs if d.get("province")})],
        "kind": [(k, " ".join(render.KIND_LABELS.get(k, (k, k)))) for k in FILTER_KINDS],
    }


def filter_label(name: str, value: Any) -> str:
    """How an active filter reads in the list of removable filters."""
    if name == "kind":
        zh, en = render.KIND_LABELS.get(value, (value, value))
        return f"{zh} {en}"
    return str(value)


def display_groups(out: dict[str, Any], filters: Filters) -> list[dict[str, Any]]:
    """Locality cards: by_locality (localities whose passages answer the query, best first, up to 3 passages
    each); with a locality filter, every returned passage of that locality, its card marked 'none' when the
    search did not list it (the nearest passages, not an answer)."""
    if not filters.locality:
        return out["by_locality"]
    listed = {g["locality"]: g for g in out["by_locality"]}
    results = out["results"]

    def judge(members: list[int]) -> str:
        return listed.get(locality_key(results[members[0]]), {}).get("match") or "none"

    return group_by_locality(results, [r["score"] for r in results], len(results), results.__getitem__, judge)


def _bulk_pairs(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    pairs: dict[tuple[str, str], int] = {}
    for rep in items:
        key = (rep["before"], rep["after"])
        pairs[key] = pairs.get(key, 0) + 1
    return [
        {"before_html": render.visible(b), "after_html": render.visible(a), "n": n}
        for (b, a), n in sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))
    ]


def repair_groups(text: str, repairs: list[dict[str, Any]], paras: list[render.Para]) -> list[dict[str, Any]]:
    """Repairs by kind: the rare kinds row by row with context; the bulk ones (繁转简, 拼音, 标点 …), which
    run to hundreds, folded into 'before → after × n' pairs."""
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for rep in repairs:
        by_kind.setdefault(rep["kind"], []).append(rep)
    out = []
    for kind, items in sorted(by_kind.items(), key=lambda kv: (kv[0] in render.BULK_REPAIRS, -len(kv[1]), kv[0])):
        grp: dict[str, Any] = {"kind": kind, "count": len(items), "bulk": kind in render.BULK_REPAIRS}
        if grp["bulk"]:
            grp["pairs"] = _bulk_pairs(items)
            grp["collapsed"] = True
        else:
            grp["rows"] = [
                dict(
                    rep,
                    context=render.context(text, rep["start"], rep["end"]),
                    para=render.para_of(paras, rep["start"]),
                    before_html=render.visible(rep["before"]),
                    after_html=render.visible(rep["after"]),
                )
                for rep in items[:MAX_REPAIR_ROWS]
            ]
            grp["truncated"] = len(items) > MAX_REPAIR_ROWS
            grp["collapsed"] = len(items) > COLLAPSE_ABOVE
        out.append(grp)
    return out


def _locality_info(docs: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    info: dict[str, dict[str, Any]] = {}
    for d in docs:
        loc = locality_key(d)
        item = info.setdefault(loc, {"region": d.get("region"), "province": d.get("province"), "years": []})
        if d.get("year") and d["year"] not in item["years"]:
            item["years"].append(d["year"])
    return info


def compare_rows(docs: Sequence[dict[str, Any]], outs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per locality in scope of any topic, with each topic's best passage there (or None); the
    localities matching most topics first, then by the rank of their first match."""
    info = _locality_info(docs)
    scope: list[str] = []
    for out in outs:
        for loc in [grp["locality"] for grp in out["by_locality"]] + out["unmatched_localities"]:
            if loc not in scope:
                scope.append(loc)
    cells: dict[str, list[dict[str, Any] | None]] = {loc: [None] * len(outs) for loc in scope}
    rank: dict[str, tuple[int, ...]] = {}
    for i, out in enumerate(outs):
        for pos, grp in enumerate(out["by_locality"]):
            if grp["locality"] in cells and grp["results"]:
                cells[grp["locality"]][i] = grp["results"][0]
                rank.setdefault(grp["locality"], (i, pos))

    def order(loc: str) -> tuple[Any, ...]:
        hits = sum(c is not None for c in cells[loc])
        return (-hits, rank.get(loc, (99, 99)), info.get(loc, {}).get("region") or "", loc)

    return [
        {
            "locality": loc,
            "region": info.get(loc, {}).get("region"),
            "province": info.get(loc, {}).get("province"),
            "years": sorted(info.get(loc, {}).get("years") or []),
            "cells": cells[loc],
        }
        for loc in sorted(scope, key=order)
    ]
