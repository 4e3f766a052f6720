"""User-caused conditions that once printed tracebacks: each is one `kb: error:` line (or is repaired)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, SEEDS

# a `kb` process per case: seconds each, so these run in the whole suite only
pytestmark = pytest.mark.slow

REPORT = "某镇2024年法治政府建设年度报告\n一、主要成效\n某镇开展普法宣传活动二十场。\n二、存在问题\n基层法治力量薄弱。\n"


def kb(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), KB_MODEL="fake")
    env.pop("KB_SEEDS", None)
    env.pop("KB_INDEX", None)
    return subprocess.run([sys.executable, "-m", "kb.cli", *args], capture_output=True, text=True, env=env,
                          timeout=300, cwd=cwd)


def one_line(proc: subprocess.CompletedProcess, *fragments: str, code: int = 2) -> None:
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert proc.returncode == code and "Traceback" not in proc.stderr, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("kb: error: "), proc.stderr
    for f in fragments:
        assert f in lines[0], (f, lines[0])


@pytest.fixture()
def ws(tmp_path: Path) -> Path:
    (tmp_path / "seeds").mkdir()
    (tmp_path / "seeds" / "r.txt").write_text(REPORT, encoding="utf-8")
    assert kb("--seeds", str(tmp_path / "seeds"), "--index", str(tmp_path / "index"), "build", "--quiet").returncode == 0
    return tmp_path


def kbw(ws: Path, *args: str) -> subprocess.CompletedProcess:
    return kb("--seeds", str(ws / "seeds"), "--index", str(ws / "index"), *args)


def test_outside_the_project_folder(tmp_path: Path) -> None:
    for args in (["search", "行政复议"], ["docs"], ["build"]):
        one_line(kb(*args, cwd=tmp_path), "seeds", "project folder")


def test_a_corrupt_embedding_cache_is_moved_aside(ws: Path) -> None:
    (ws / "index" / "embcache.sqlite").write_bytes(os.urandom(30000))
    (ws / "new.txt").write_text(REPORT.replace("某镇", "新镇"), encoding="utf-8")
    proc = kbw(ws, "add", str(ws / "new.txt"), "--quiet")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr and "moved it to" in proc.stderr, proc.stderr
    assert list((ws / "index").glob("embcache.sqlite.corrupt-*"))


@pytest.mark.parametrize("garbage", ["bytes", "folder"])
def test_a_bad_current_is_one_line_and_build_repairs_it(ws: Path, garbage: str) -> None:
    current = ws / "index" / "CURRENT"
    current.unlink()
    if garbage == "bytes":
        current.write_bytes(b"\xff\xfe\x00v-\x80")
    else:
        current.mkdir()
    one_line(kbw(ws, "search", "普法"), "CURRENT")
    assert kbw(ws, "build", "--quiet").returncode == 0
    assert kbw(ws, "search", "普法").returncode == 0


def test_index_naming_a_file(ws: Path) -> None:
    one_line(kb("--seeds", str(ws / "seeds"), "--index", str(ws / "seeds" / "r.txt"), "search", "法"), "is a file")


def test_ports_out_of_range_are_refused(ws: Path) -> None:
    for port in ("99999", "-1", "65536", "80x"):
        proc = kbw(ws, "serve", "--port", port)
        assert proc.returncode == 2 and "1 to 65535" in proc.stderr and "Traceback" not in proc.stderr


def test_a_port_in_use(ws: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        one_line(kbw(ws, "serve", "--port", str(s.getsockname()[1])), "cannot serve")


def test_one_bad_byte_does_not_make_a_report_binary(ws: Path) -> None:
    data = (SEEDS / "001_53274d73b52dab04.txt").read_bytes()
    (ws / "onebad.txt").write_bytes(data[:3000] + b"\xff" + data[3000:])
    (ws / "gbk.txt").write_bytes(REPORT.replace("某镇", "清溪镇").encode("gb18030") + b"\xff")
    (ws / "noise.txt").write_bytes(os.urandom(4000))
    assert kbw(ws, "add", str(ws / "onebad.txt"), str(ws / "gbk.txt"), "--quiet").returncode == 0
    # a file kb add cannot read is one line and exit 1 (2 stays a usage error; issue "formats")
    one_line(kbw(ws, "add", str(ws / "noise.txt")), "not text", code=1)


def test_add_of_the_seeds_folder_itself_and_of_a_file_named_twice(ws: Path) -> None:
    (ws / "new.txt").write_text(REPORT.replace("某镇", "新镇"), encoding="utf-8")
    # a folder is added file by file (issue "formats"); its reports already in seeds are each refused
    proc = kbw(ws, "add", str(ws / "seeds"))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert [x for x in proc.stderr.splitlines() if x.strip()] == [f"kb: error: {ws / 'seeds' / 'r.txt'}: already in {ws / 'seeds'} as r.txt"]
    one_line(kbw(ws, "add", str(ws / "new.txt"), str(ws / "new.txt")), "named twice")


def _tmpfs(path: Path, size: str) -> bool:
    path.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


@pytest.mark.parametrize("kind", ["full", "read-only"])
def test_full_and_read_only_disks(tmp_path: Path, kind: str) -> None:
    disk = tmp_path / "disk"
    if not _tmpfs(disk, "600k"):
        pytest.skip("needs root and a tmpfs mount to make a small or read-only disk")
    try:
        seeds = disk / "seeds"
        seeds.mkdir()
        (seeds / "r.txt").write_text(REPORT, encoding="utf-8")
        big = tmp_path / "big.txt"
        big.write_text(REPORT + "普法宣传。" * 60000, encoding="utf-8")  # larger than the disk
        if kind == "read-only":
            subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
            one_line(kb("--seeds", str(seeds), "--index", str(disk / "index"), "add", str(big)), "Read-only")
            one_line(kb("--seeds", str(seeds), "--index", str(disk / "index"), "build", "--full"), "Read-only")
        else:
            one_line(kb("--seeds", str(seeds), "--index", str(tmp_path / "index"), "add", str(big)), "No space")
            assert sorted(p.name for p in seeds.iterdir()) == ["r.txt"]  # no half-copied .part left
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


def test_a_bad_upload_limit_is_refused(ws: Path) -> None:
    for value in ("0", "big", "100000"):
        one_line(kbw(ws, "serve", "--allow-upload", "--upload-max-mb", value), repr(value), "at most 50")


def test_the_rebuild_script_without_the_project_libraries_says_how_to_set_up(tmp_path: Path) -> None:
    # a copy of the scripts with no .venv beside them, run by a Python that sees no site-packages (-S):
    # the state of a fresh checkout run with the system python3
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    for name in ("_project.py", "rebuild_index"):
        shutil.copy(ROOT / "scripts" / name, scripts / name)
    proc = subprocess.run([sys.executable, "-S", str(scripts / "rebuild_index")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "is not installed here" in proc.stderr and "./scripts/run" in proc.stderr
