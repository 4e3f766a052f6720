"""Nothing lost: reports with any file name, added while a full rebuild runs, next to a corrupt old version."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT

# builds and `kb` processes: seconds each, so these run in the whole suite only
pytestmark = pytest.mark.slow

TOWNS = "东升南头七里黄圃横栏沙溪大涌三乡坦洲港口民众阜沙板芙神湾古镇小榄南朗五桂"
# The overlap of the race test comes from this pause point, not from timing: the full build stops right
# before it embeds (after it has listed the seeds) until the test lets it go on.
PAUSED_KB = r"""
import pathlib, sys, time
import kb.build
mods = [kb.build]
try:
    import kb.collect
    mods.append(kb.collect)
except ImportError:
    pass
ready, go = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
for m in mods:
    if hasattr(m, "embed_with_cache"):
        def paused(*a, _orig=m.embed_with_cache, **k):
            ready.touch()
            while not go.exists():
                time.sleep(0.05)
            return _orig(*a, **k)
        m.embed_with_cache = paused
from kb.cli import main
sys.exit(main(sys.argv[3:]))
"""


def report(town: str, n: int) -> str:
    return (
        f"{town}镇{2000 + n}年法治政府建设年度报告\n一、主要成效\n{town}镇今年开展普法宣传活动{n + 3}场，"
        f"调解矛盾纠纷{n * 7 + 11}件，办理行政复议案件{n + 2}件。\n二、存在问题\n基层法治力量薄弱。\n"
        f"三、下一步计划\n继续加强法治宣传，第{n}项任务按期完成。\n"
    )


def kb_cmd(seeds: Path, index: Path, *args: str, model: str = "fake") -> list[str]:
    return [sys.executable, "-m", "kb.cli", "--seeds", str(seeds), "--index", str(index), "--model", model, *args]


def env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT), KB_MODEL="fake")


def run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, env=env(), timeout=600, cwd=ROOT)


def indexed(index: Path) -> dict[str, str]:
    from kb.store import open_index

    with open_index(index, verify="full") as r:
        return {d["source"]: d["doc_id"] for d in r.documents()}


def hostile_names(n: int, rng: random.Random) -> list[str]:
    """Chinese names of one length (the pattern of README's example), long names, and dotted or dashed ones."""
    names: list[str] = []
    for i in range(n):
        town = rng.choice(TOWNS) + rng.choice(TOWNS)
        shape = i % 5
        if shape == 0:
            names.append(f"{town}镇{2010 + i}年法治政府建设年度报告.txt")
        elif shape == 1:
            names.append(f"{town}镇" + "法治政府建设年度报告" * 6 + f"{i}.txt")  # 70-odd characters, 200+ bytes
        elif shape == 2:
            names.append(f".{town}{i}.txt")
        elif shape == 3:
            names.append(f"{'-_.'[i % 3]}{town} {i}.md")
        else:
            names.append(f"{town}{i:02d}.TXT")
    assert len(set(names)) == n
    return names


def test_chinese_names_of_one_length_and_a_near_copy_of_a_seed_name_are_all_indexed(tmp_path: Path) -> None:
    seeds, index, inbox = tmp_path / "seeds", tmp_path / "index", tmp_path / "inbox"
    inbox.mkdir()
    seeds.mkdir()
    (seeds / "003_dd65877722798507.txt").write_text(report("平桥", 0), encoding="utf-8")
    assert run(kb_cmd(seeds, index, "build", "--quiet")).returncode == 0
    names = ["东升镇2025年法治政府建设年度报告.txt", "南头镇2025年法治政府建设年度报告.txt",
             "七里镇2025年法治政府建设年度报告.txt", "003 dd65877722798507.txt", "003_dd65877722798507.md"]
    for i, name in enumerate(names):
        (inbox / name).write_text(report(name[:2], i + 1), encoding="utf-8")
        proc = run(kb_cmd(seeds, index, "add", str(inbox / name), "--quiet"))
        assert proc.returncode == 0 and "skipped" not in proc.stderr, proc.stderr
    got = indexed(index)
    assert set(got) == {"003_dd65877722798507.txt", *names}
    assert got["003_dd65877722798507.txt"] == "003_dd65877722798507"  # a plain name keeps its id
    assert len(set(got.values())) == len(got)


def test_a_dot_named_report_that_kb_add_accepts_is_indexed(tmp_path: Path) -> None:
    seeds, index = tmp_path / "seeds", tmp_path / "index"
    for i, name in enumerate([".hidden.txt", "..dotdot.txt"]):
        (tmp_path / name).write_text(report("点点", i), encoding="utf-8")
        proc = run(kb_cmd(seeds, index, "add", str(tmp_path / name), "--quiet"))
        assert proc.returncode == 0, proc.stderr
    assert set(indexed(index)) == {".hidden.txt", "..dotdot.txt"}


def test_the_indexed_report_stays_when_a_copy_that_sorts_first_appears(tmp_path: Path) -> None:
    seeds, index = tmp_path / "seeds", tmp_path / "index"
    seeds.mkdir()
    (seeds / "live_a.txt").write_text(report("东湖", 1), encoding="utf-8")
    assert run(kb_cmd(seeds, index, "build", "--quiet")).returncode == 0
    (seeds / "a_copy.txt").write_bytes(report("东湖", 1).encode("gb18030"))  # same report, other encoding
    for extra in ([], ["--full"]):
        proc = run(kb_cmd(seeds, index, "build", "--quiet", *extra))
        assert proc.returncode == 0, proc.stderr
        assert set(indexed(index)) == {"live_a.txt"}, proc.stderr
        assert "a_copy.txt: the same report as live_a.txt" in proc.stderr


def _zero_vectors(index: Path) -> None:
    version = (index / "CURRENT").read_text(encoding="utf-8").strip()
    p = index / version / "vectors.npy"
    data = p.read_bytes()
    p.write_bytes(data[:128] + b"\0" * (len(data) - 128))  # same size: only a checksum can tell


def test_a_corrupt_old_version_is_never_copied_into_a_new_one(tmp_path: Path) -> None:
    from kb.store import open_index

    seeds, index = tmp_path / "seeds", tmp_path / "index"
    seeds.mkdir()
    for i in range(3):
        (seeds / f"r{i}.txt").write_text(report(TOWNS[2 * i : 2 * i + 2], i), encoding="utf-8")
    assert run(kb_cmd(seeds, index, "build", "--quiet")).returncode == 0
    _zero_vectors(index)
    proc = run(kb_cmd(seeds, index, "build", "--quiet"))  # the hint of the search error: it must repair
    assert proc.returncode == 0 and "index already up to date" not in proc.stderr, proc.stderr
    _zero_vectors(index)
    (tmp_path / "new.txt").write_text(report("任意", 9), encoding="utf-8")
    assert run(kb_cmd(seeds, index, "add", str(tmp_path / "new.txt"), "--quiet")).returncode == 0
    with open_index(index, verify="full") as r:
        v = np.stack([r.vector(i) for i in range(r.n_chunks)])
    assert r.manifest["counts"]["documents"] == 4 and not (np.abs(v).sum(axis=1) == 0).any()


def test_a_build_with_another_model_is_refused_without_full(tmp_path: Path) -> None:
    seeds, index = tmp_path / "seeds", tmp_path / "index"
    seeds.mkdir()
    (seeds / "r.txt").write_text(report("东湖", 1), encoding="utf-8")
    assert run(kb_cmd(seeds, index, "build", "--quiet")).returncode == 0
    proc = run(kb_cmd(seeds, index, "build", "--quiet", model="fake:hash-32"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "fake:hash-64" in proc.stderr and "--full" in proc.stderr
    assert json.loads((index / (index / "CURRENT").read_text().strip() / "manifest.json").read_text())["dim"] == 64
    assert run(kb_cmd(seeds, index, "build", "--quiet", "--full", model="fake:hash-32")).returncode == 0


def test_a_colon_in_the_seeds_path_leaves_the_index_fresh(tmp_path: Path) -> None:
    from kb.build import is_stale
    from kb.embed import HashEmbedder

    seeds, index = tmp_path / "co:lon" / "seeds", tmp_path / "index"
    seeds.mkdir(parents=True)
    (seeds / "r.txt").write_text(report("东湖", 1), encoding="utf-8")
    (seeds / "bin.txt").write_bytes(bytes(range(256)) * 8)
    proc = run(kb_cmd(seeds, index, "build", "--quiet"))
    assert proc.returncode == 0 and "skipped" in proc.stderr, proc.stderr
    assert not is_stale(seeds, index, HashEmbedder().model_id)


def test_serving_an_index_built_from_another_folder_keeps_its_reports(tmp_path: Path, capsys) -> None:
    from kb.embed import HashEmbedder
    from web.serve import _build_before_serving

    other, seeds, index = tmp_path / "other", tmp_path / "seeds", tmp_path / "index"
    other.mkdir()
    seeds.mkdir()
    for i, town in enumerate(("东湖", "西湖", "南湖")):
        (other / f"r{i}.txt").write_text(report(town, i + 1), encoding="utf-8")
    (seeds / "bundled.txt").write_text(report("北湖", 9), encoding="utf-8")
    assert run(kb_cmd(other, index, "build", "--quiet")).returncode == 0
    before = indexed(index)
    _build_before_serving(seeds, index, HashEmbedder())
    assert indexed(index) == before  # not replaced by the one report of the other folder
    err = capsys.readouterr().err
    assert "3 of the 3 reports" in err and str(seeds) in err and "kb build" in err
    # the same for an index an older kb tokenized, which this one cannot search: still the user's reports
    version = index / (index / "CURRENT").read_text().strip()
    manifest = json.loads((version / "manifest.json").read_text())
    (version / "manifest.json").write_text(json.dumps({**manifest, "tokenizer": "an-older-tokenizer"}))
    _build_before_serving(seeds, index, HashEmbedder())
    assert index / (index / "CURRENT").read_text().strip() == version and "3 of the 3" in capsys.readouterr().err
    (version / "manifest.json").write_text(json.dumps(manifest))
    # a folder holding most of the index's reports (one new) is still built: that is the yearly rebuild
    (other / "r3.txt").write_text(report("中湖", 4), encoding="utf-8")
    _build_before_serving(other, index, HashEmbedder())
    assert set(indexed(index)) == set(before) | {"r3.txt"}


def _blocked_on_a_lock(pid: int) -> bool:
    """Whether the process waits for an flock (a `->` line of /proc/locks)."""
    lines = Path("/proc/locks").read_text().splitlines()
    return any("->" in line and str(pid) in line.split() for line in lines)


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="needs /proc/locks (Linux) to see a blocked writer")
def test_fifty_hostile_reports_added_by_two_processes_during_a_full_rebuild_are_all_kept(tmp_path: Path) -> None:
    from web import create_app

    seeds, index, inbox = tmp_path / "seeds", tmp_path / "index", tmp_path / "inbox"
    seeds.mkdir()
    inbox.mkdir()
    for i in range(3):
        (seeds / f"base{i}.txt").write_text(report("基础", 100 + i), encoding="utf-8")
    assert run(kb_cmd(seeds, index, "build", "--quiet")).returncode == 0
    names = hostile_names(50, random.Random(7))
    for i, name in enumerate(names):
        (inbox / name).write_text(report(name.strip(".-_")[:2], i), encoding="utf-8")
    ready, go = tmp_path / "ready", tmp_path / "go"
    full = subprocess.Popen(
        [sys.executable, "-c", PAUSED_KB, str(ready), str(go), *kb_cmd(seeds, index, "build", "--full", "--quiet")[3:]],
        env=env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 120
    while not ready.exists():
        assert full.poll() is None and time.monotonic() < deadline, full.communicate()
        time.sleep(0.05)
    adds = [
        subprocess.Popen(
            kb_cmd(seeds, index, "add", *[str(inbox / n) for n in half], "--quiet"),
            env=env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for half in (names[:25], names[25:])
    ]
    # The full build goes on once each add has either finished or waits for the writer lock.
    while not all(a.poll() is not None or _blocked_on_a_lock(a.pid) for a in adds):
        assert time.monotonic() < deadline, "the adds neither finished nor waited for the lock"
        time.sleep(0.05)
    go.touch()
    outs = [p.communicate(timeout=600) for p in (full, *adds)]
    assert [p.returncode for p in (full, *adds)] == [0, 0, 0], outs
    got = indexed(index)
    assert set(got) == {*names, "base0.txt", "base1.txt", "base2.txt"}, sorted(set(names) - set(got))
    app = create_app({"index": index, "model": "fake"})
    try:
        client = app.test_client()
        listed = {d["source"]: d["doc_id"] for d in client.get("/api/docs").get_json()}
        assert listed == got
        page = client.get("/docs").get_data(as_text=True)
        for source, doc_id in got.items():
            assert f"/doc/{doc_id}" in page
            assert client.get(f"/doc/{doc_id}").status_code == 200, source
            assert client.get(f"/api/docs/{doc_id}").status_code == 200, source
            assert client.get(f"/doc/{doc_id}/raw").status_code == 200, source
    finally:
        app.extensions["kb"].close()
