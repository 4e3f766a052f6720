"""`scripts/bench --engine milvus` and `--embed-on` at a tiny size: the expected rows, plausible figures, loopback only."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from bench.__main__ import main, parse_targets
from bench.report import START
from bench.report_engines import render_engines

pytest_plugins = ["netguard"]


def _bench(args: list[str], work: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TQDM_DISABLE": "1"}
    return subprocess.run([sys.executable, "-m", "bench", *args, "--workdir", str(work)], cwd=str(ROOT), env=env,
                          capture_output=True, text=True, timeout=600)


def _rows(out: str, first_cell: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip("|").split("|")] for line in out.splitlines()
            if line.startswith(f"| {first_cell} |")]


@pytest.mark.slow
@pytest.mark.usefixtures("loopback_only")
def test_engine_milvus_prints_both_engines_side_by_side(tmp_path: Path) -> None:
    pytest.importorskip("pymilvus", reason="the milvus extra is not installed (pip install -e '.[milvus]')")
    proc = _bench(["--engine", "milvus", "--quick", "--sizes", "1000", "--queries", "8"], tmp_path / "work")
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "**Search, local index against Milvus Lite**" in out
    rows = _rows(out, "10^3")
    engines = [r[1] for r in rows[:3]]
    assert engines[0] == "local · flat"
    assert engines[1].startswith("Milvus Lite · FLAT") and engines[2].startswith("Milvus Lite · IVF_FLAT nlist=")
    for r in rows[:3]:  # dense p50/p95, recall, BM25, fused: numbers, p50 ≤ p95
        for cell in (r[2], r[4], r[5]):
            p50, p95 = (float(x) for x in cell.split(" / "))
            assert 0 < p50 <= p95
        assert 0.0 <= float(r[3]) <= 1.0
    assert float(rows[0][3]) == 1.0 and float(rows[1][3]) >= 0.99  # exact search on both sides
    overlap = re.search(r"BM25 top-10 overlap ([0-9]\.[0-9]+).*dense top-10 overlap ([0-9]\.[0-9]+)", out)
    assert overlap and float(overlap[1]) >= 0.9 and float(overlap[2]) >= 0.99
    sweep = [r for r in rows if len(r) == 6 and r[1].isdigit()]
    assert any(r[2].endswith("◀") for r in sweep)  # the nprobe kb would use, among the swept ones
    standins = [r for r in rows if r[1].startswith(("IVF_SQ8 nlist=", "HNSW M=16"))]
    assert len(standins) == 2 and all(0.0 < float(r[-1]) <= 1.0 for r in standins)
    assert re.search(r"Linear to 16·10\^6 passages: \d+ GiB on disk", out)
    # Milvus Lite's socket and glog files stayed in the work directory
    assert list((tmp_path / "work" / "tmp").glob("milvus*INFO*"))


@pytest.mark.slow
@pytest.mark.usefixtures("loopback_only")
def test_embed_on_prints_the_in_process_path_and_each_target(tmp_path: Path) -> None:
    proc = _bench(["--embed-on", "processes:2", "--quick", "--embed-passages", "24"], tmp_path / "work")
    assert proc.returncode == 0, proc.stderr[-3000:]
    labels = [r[0] for r in (line.strip("|").split("|") for line in proc.stdout.splitlines() if line.startswith("| "))]
    assert [x.strip() for x in labels if "in-process" in x or "--embed-on" in x] == [
        "in-process (before)", "--embed-on processes:2", "in-process (after)"]
    row = next(line for line in proc.stdout.splitlines() if line.startswith("| --embed-on processes:2 |"))
    assert float(row.strip("|").split("|")[-1]) >= 0.9999  # the same vectors as in-process


def test_targets_are_checked_before_anything_runs() -> None:
    assert parse_targets("processes:2, ray:2") == ["processes:2", "ray:2"]
    with pytest.raises(SystemExit):
        main(["--embed-on", "threads:2"])


def test_the_generated_section_is_never_overwritten(tmp_path: Path) -> None:
    md = tmp_path / "BENCHMARKS.md"
    md.write_text(f"# Benchmarks\n\n{START}\nfigures\n<!-- bench:end -->\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="generated section"):
        main(["--engine", "milvus", "--out", str(md)])
    assert md.read_text(encoding="utf-8").count("figures") == 1


def _result(n: int, dense_p50: float, recall: float) -> dict:
    lat = {"p50": dense_p50, "p95": 2 * dense_p50, "p99": 3 * dense_p50, "n": 5, "mean": dense_p50}
    search = {"dense_ms": lat, "recall@10": recall, "bm25_ms": lat, "fused_ms": lat, "fused_minus_embed_ms": lat,
              "raw_query_embed_ms": lat}
    ivf = {**search, "dense": {"index_type": "IVF_FLAT", "params": {"nlist": 40}, "search": {"nprobe": 40}},
           "index_s": 1.0, "sweep": [{"nprobe": 16, "p50": 1.0, "p95": 2.0, "recall@10": 0.9},
                                     {"nprobe": 40, "p50": 1.5, "p95": 2.5, "recall@10": recall}]}
    return {"local": {**search, "dense": {"type": "flat"}}, "milvus_flat": search, "milvus_ivf_flat": ivf,
            "agreement": {"bm25_top10_overlap": 1.0, "bm25_max_rel_score_diff_median": 1e-7,
                          "dense_top10_overlap": 1.0},
            "build": {"write_s": n / 1000}, "disk": {"milvus": 2000 * n + 10**6, "kb.sqlite": 100 * n},
            "memory": {"server_rss_bytes": 3000 * n + 10**8},
            "local_build": {"write_index_s": 1.0, "disk_bytes_total": 5000 * n},
            "server_types": [{"dense": {"index_type": "HNSW", "params": {"M": 16}, "search": {"ef": 128}},
                              "build_s": 3.0, "p50": 0.2, "p95": 0.3, "recall@10": 0.85}]}


def test_the_report_shows_every_engine_and_extrapolates_from_the_slope() -> None:
    r = {"command": "scripts/bench --engine milvus", "date": "today", "wall_s": 60, "quick": False,
         "machine": {"cpu": "cpu", "cores": 2, "ram_bytes": 2**34, "loadavg_start": ["1", "1", "1"],
                     "versions": {"pymilvus": "2.5"}, "code": "abc"},
         "milvus": {10_000: _result(10_000, 1.0, 0.99), 100_000: _result(100_000, 2.0, 0.98)}}
    text = render_engines(r)
    assert len(_rows(text, "10^4")) == 3 + 2 + 1 + 1 and len(_rows(text, "10^5")) == 3 + 2 + 1 + 1
    assert "| 10^5 | HNSW M=16 ef=128 | 3.0 s | 0.200 | 0.300 | 0.8500 |" in text
    assert "| 10^5 | Milvus Lite · IVF_FLAT nlist=40 nprobe=40 requested | 2.000 / 4.000 | 0.9800 |" in text
    # slope between the sizes: the fixed 10^6 bytes of disk and 10^8 of memory cancel out
    assert "Milvus disk 2000 B, FLAT-loaded server memory 3000 B" in text
