"""The `kb` command line as a user runs it: JSON contracts, exit codes and one-line errors for bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, SEEDS, UNSEEN

from kb.ingest import MAX_BYTES


def run_kb(*args: str, index: Path | None = None, seeds: Path = SEEDS, timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "kb.cli", "--seeds", str(seeds)]
    if index is not None:
        cmd += ["--index", str(index)]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, env=env, timeout=timeout, cwd=ROOT)


def _one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("kb: error: ") and "Traceback" not in proc.stderr
    for f in fragments:
        assert f in lines[0], (f, lines[0])


def test_docs_json() -> None:
    proc = run_kb("docs", "--json")
    assert proc.returncode == 0, proc.stderr
    docs = json.loads(proc.stdout)
    assert len(docs) == 5
    keys = {"doc_id", "source", "title", "locality", "level", "region", "year", "published", "repairs"}
    assert all(keys <= set(d) for d in docs)
    by = {d["doc_id"][:3]: d for d in docs}
    assert by["003"]["repairs"]["mojibake"] >= 9 and by["003"]["locality"] == "平桥区"


def test_show_json_has_text_sections_and_repair_log() -> None:
    proc = run_kb("show", "000", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["text"].startswith("2023年,阜沙镇")
    heads = [c["heading"] for s in doc["sections"] for c in s["children"]]
    assert "(八)全力推动行政复议应诉工作落地见效" in heads
    r = doc["repair_log"][0]
    assert {"kind", "start", "end", "before", "after"} <= set(r)


def test_show_unknown_document() -> None:
    _one_line_error(run_kb("show", "../etc/passwd"), "unknown document '../etc/passwd'", "000_6c25788e2e4f38cc")


@pytest.mark.slow
def test_search_json_contract_and_bad_input(real_index: Path) -> None:
    proc = run_kb("search", "行政复议 practice", "--json", index=real_index)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert {g["locality"] for g in out["by_locality"]} >= {"阜沙镇", "清溪镇", "平桥区"}
    for args, fragment in [
        (("search", ""), "query is empty"),
        (("search", "   "), "query is empty"),
        (("search", "。。。"), "query is empty"),
        (("search", "x" * 10_000), "limit is 500"),
        (("search", "法治", "-k", "0"), "got 0"),
        (("search", "法治", "-k", "-1"), "'-1'"),
        (("search", "法治", "-k", "abc"), "'abc'"),
        (("search", "法治", "-k", "1e3"), "'1e3'"),
        (("search", "法治", "-k", str(10**9)), "got 1000000000"),
        (("search", "法治", "--locality", "火星镇"), "unknown locality '火星镇'"),
        (("search", "法治", "--year", "1850"), "no report for year 1850"),
        (("search", "法治", "--kind", "wishes"), "valid kinds"),
        (("similar", "nope:1"), "unknown passage id 'nope:1'"),
        (("similar",), "give a passage id"),
    ]:
        _one_line_error(run_kb(*args, index=real_index), fragment)
    for q in ["<script>alert(1)</script>", "'; DROP TABLE chunks; --", "法治.*[(", "法治🙂", "\u0007法治", "行政復議", "legal aid"]:
        proc = run_kb("search", q, "--json", "-k", "３", index=real_index)
        assert proc.returncode == 0, (q, proc.stderr)
        assert len(json.loads(proc.stdout)["results"]) == 3


@pytest.mark.slow
def test_eval_command(real_index: Path) -> None:
    proc = run_kb("eval", "--queries", str(ROOT / "tests" / "data" / "dev_queries.jsonl"), "--json", index=real_index)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert {"recall@5", "recall@10", "mrr"} <= set(out["overall"]) and "en" in out["by_kind"]
    _one_line_error(run_kb("eval", "--queries", "/nonexistent.jsonl", index=real_index), "/nonexistent.jsonl")


@pytest.mark.slow
def test_corrupt_index_is_a_clear_error(real_index: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    shutil.copytree(real_index, index)
    version = (index / "CURRENT").read_text().strip()
    db = index / version / "kb.sqlite"
    db.write_bytes(db.read_bytes()[: db.stat().st_size // 2])
    _one_line_error(run_kb("search", "法治", index=index), "rebuild")


@pytest.mark.slow
def test_add_refuses_bad_files_and_keeps_the_seeds(real_index: Path, tmp_path: Path) -> None:
    seeds, index = tmp_path / "seeds", tmp_path / "index"
    shutil.copytree(SEEDS, seeds)
    shutil.copytree(real_index, index)
    before = sorted(p.name for p in seeds.iterdir())
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    binary = tmp_path / "blob.txt"
    binary.write_bytes(bytes(range(256)) * 64)
    dup = tmp_path / "copy.txt"
    shutil.copy(SEEDS / "001_53274d73b52dab04.txt", dup)
    for f, fragment in [
        (empty, "empty"),
        (binary, "binary"),
        (dup, "already in"),
        (tmp_path / "missing.txt", "no such file"),
    ]:
        _one_line_error(run_kb("add", str(f), seeds=seeds, index=index), fragment)
    assert sorted(p.name for p in seeds.iterdir()) == before
    big = tmp_path / "big.txt"
    big.write_bytes(b"x" * (MAX_BYTES + 1))  # a byte over the reading limit (kb.ingest, 50 MB)
    _one_line_error(run_kb("add", str(big), seeds=seeds, index=index), "limit")
    # reports in other encodings are accepted and indexed
    proc = run_kb("add", str(UNSEEN / "township_utf16.txt"), "--json", "--quiet", seeds=seeds, index=index)
    assert proc.returncode == 0, proc.stderr
    stats = json.loads(proc.stdout)
    assert stats["new"] == ["township_utf16.txt"] and stats["unchanged"] == 5


@pytest.mark.parametrize("args", [("frobnicate",), ("search",), ("--index",)])
def test_usage_errors(args: tuple[str, ...]) -> None:
    proc = run_kb(*args)
    assert proc.returncode == 2 and "usage:" in proc.stderr and "Traceback" not in proc.stderr
