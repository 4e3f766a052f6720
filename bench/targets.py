"""The performance targets, judged on the measurements (never loosened), each failure with its likely cause."""

from __future__ import annotations

from typing import Any

from bench.common import by_size, fmt_n, spec_str


def _first_meeting(sweep: list[dict[str, Any]], recall: float) -> str:
    """The cheapest swept setting reaching `recall`, for the explanation of a recall failure."""
    for x in sweep:
        if x["recall@10"] >= recall:
            return f"{x.get('param', 'nprobe')}={x['nprobe']} reaches {x['recall@10']:.3f} at p50 {x['p50']:.2f} ms"
    if sweep:
        x = sweep[-1]
        return f"even {x.get('param', 'nprobe')}={x['nprobe']} reaches only {x['recall@10']:.3f} (p50 {x['p50']:.2f} ms)"
    return "no sweep"


def judge(r: dict[str, Any]) -> list[dict[str, Any]]:
    """The targets, each with the measured value, PASS/FAIL (never loosened) and, for a failure, what the
    measurements say about its cause."""
    out: list[dict[str, Any]] = []
    sc = r.get("scaled", {})
    for n, lat_max, rec_min in ((100_000, 1.0, 0.98), (1_000_000, 2.0, 0.95)):
        if n not in sc:
            continue
        s = sc[n]["search"]
        spec = spec_str(sc[n]["build"]["dense"])
        out.append({"target": f"{fmt_n(n)}: dense p50 ≤ {lat_max:g} ms (excl. embedding)",
                    "value": f"{s['dense_ms']['p50']:.3f} ms ({spec})", "ok": s["dense_ms"]["p50"] <= lat_max,
                    "why": ""})
        ref = sc[n].get("reference")
        ref_txt = (f"; on clustered synthetic vectors the same index gets "
                   f"{next((x['recall@10'] for x in ref['sweep'] if x['default']), float('nan')):.3f}") if ref else ""
        out.append({"target": f"{fmt_n(n)}: dense recall@10 ≥ {rec_min} vs exact", "value": f"{s['recall@10']:.4f}",
                    "ok": s["recall@10"] >= rec_min,
                    "why": f"text-derived vectors; {_first_meeting(s.get('nprobe_sweep') or [], rec_min)}{ref_txt}"})
        if n == 1_000_000:
            b = s["process_rss_bytes_per_passage"]
            mapped = s.get("rss_by_mapping_mib", {})
            out.append({"target": "10^6: RSS ≤ 2 KB/passage (whole search process)",
                        "value": f"{b:.0f} B/passage ({s['rss']['end']['VmRSS'] / 2**20:.0f} MiB; index alone "
                                 f"{s['index_rss_bytes_per_passage']:.0f} B)", "ok": b <= 2048,
                        "why": "resident MiB: " + ", ".join(f"{k} {v:.0f}" for k, v in by_size(mapped)[:5])})
    for n in sorted(sc):
        s = sc[n]["search"]
        out.append({"target": f"{fmt_n(n)}: fused end-to-end p50 ≤ 2× raw query embedding p50",
                    "value": f"{s['fused_ms']['p50']:.1f} ms vs 2×{s['raw_query_embed_ms']['p50']:.1f} ms "
                             f"(×{s['fused_over_raw_p50']:.2f})",
                    "ok": s["fused_over_raw_p50"] <= 2.0,
                    "why": f"non-embedding part p50 {s['fused_minus_embed_ms']['p50']:.1f} ms, of it BM25 p50 "
                           f"{s['bm25_ms']['p50']:.1f} ms, dense {s['dense_ms']['p50']:.2f} ms"})
    sb = r.get("seedbuild")
    if sb:
        c = sb["cold"]
        out.append({"target": "build throughput ≥ 70% of raw model passages/s",
                    "value": f"{c['passages_per_s']:.2f} vs {sb['raw_passages_per_s']['mean']:.2f} passages/s "
                             f"({100 * c['ratio_to_raw']:.0f}%)", "ok": c["ratio_to_raw"] >= 0.70,
                    "why": f"engine calls {c['embed_seconds']:.1f} s of {c['seconds']:.1f} s"})
        ratio = sb["noop"]["seconds"] / c["seconds"]
        out.append({"target": "no-op rebuild ≤ 5% of cold build",
                    "value": f"{sb['noop']['seconds']:.2f} s vs {c['seconds']:.1f} s ({100 * ratio:.1f}%)",
                    "ok": ratio <= 0.05, "why": ""})
        i = sb["incremental"]
        ok = (i["changed"] == [i["file"]] and not i["new"] and 0 < i["embedded"] <= i["report_chunks"]
              and i["embedded"] == i["chunks_whose_text_changed"])
        out.append({"target": "incremental build re-embeds only the changed report",
                    "value": f"embedded {i['embedded']} (passages whose text changed: {i['chunks_whose_text_changed']};"
                             f" the report has {i['report_chunks']}); changed {i['changed']}", "ok": ok, "why": ""})
    return out
