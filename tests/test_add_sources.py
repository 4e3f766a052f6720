"""`kb add` of a folder (recursively) and of a .zip archive: every report found is added once, with unique
names; archive members that would leave their folder are refused; nothing else is lost."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from test_hostile_cli import REPORT, kbw, ws  # noqa: F401  (the ws fixture: a workspace with one indexed report)

from kb.add import expand_sources

slow = pytest.mark.slow  # a `kb` process per case


def _report(town: str) -> str:
    more = "三、下一步计划\n某镇将继续深化普法宣传,完善矛盾纠纷多元化解机制,推进法律顾问全覆盖。\n"
    return (REPORT + more).replace("某镇", town)


@slow
def test_a_folder_is_added_recursively_with_unique_names(ws: Path) -> None:  # noqa: F811
    src = ws / "incoming"
    (src / "a").mkdir(parents=True)
    (src / "b" / ".git").mkdir(parents=True)
    (src / "a" / "报告.txt").write_text(_report("甲镇"), encoding="utf-8")
    (src / "b" / "报告.txt").write_text(_report("乙镇"), encoding="utf-8")  # same name, another folder
    (src / "b" / "丙镇.txt").write_text(_report("丙镇"), encoding="utf-8")
    (src / "b" / "丙镇.htm").write_text(f"<html><body><p>{_report('丙镇').replace(chr(10), '</p><p>')}</p></body></html>",
                                       encoding="utf-8")  # the same report as a saved page
    (src / "b" / ".git" / "x.txt").write_text(_report("丁镇"), encoding="utf-8")  # a tool's folder: not reports
    proc = kbw(ws, "add", str(src))
    assert "Traceback" not in proc.stderr, proc.stderr
    added = sorted(p.name for p in (ws / "seeds").iterdir())
    assert len(added) == 4 and "r.txt" in added, added
    assert sum(n.startswith("报告") for n in added) == 2  # both 报告.txt kept, under two names
    assert sum(n.startswith("丙镇") for n in added) == 1  # one report in two formats: added once
    assert "the same report as 丙镇." in proc.stderr and proc.returncode == 1  # the other reported, not indexed
    docs = kbw(ws, "docs", "--json")
    assert docs.returncode == 0 and docs.stdout.count('"doc_id"') == 4


@slow
def test_a_zip_is_added_and_a_member_leaving_its_folder_is_refused(ws: Path, tmp_path: Path) -> None:  # noqa: F811
    archive = tmp_path / "reports.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("2024/戊镇.txt", _report("戊镇"))
        zf.writestr("../evil.txt", _report("己镇"))
        zf.writestr("/abs.txt", _report("庚镇"))
    proc = kbw(ws, "add", str(archive))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert (ws / "seeds" / "戊镇.txt").is_file()
    assert not (ws / "evil.txt").exists() and not (tmp_path / "evil.txt").exists() and not Path("/abs.txt").exists()
    errors = [x for x in proc.stderr.splitlines() if x.startswith("kb: error:")]
    assert len(errors) == 2 and all("refused" in e for e in errors), errors


def test_expanding_sources_keeps_files_and_counts_members(tmp_path: Path) -> None:
    plain = tmp_path / "one.txt"
    plain.write_text(_report("辛镇"), encoding="utf-8")
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"not a zip at all")
    files, errors = expand_sources([plain, bad], tmp_path / "work")
    assert files == [plain] and len(errors) == 1 and "not a readable zip archive" in errors[0]
