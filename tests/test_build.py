"""The pipeline fingerprint: which code, data and library versions decide whether an index is still valid."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest
from conftest import ROOT

from kb import build

KB = ROOT / "kb"


@pytest.fixture(autouse=True)
def fresh_fingerprint() -> Iterator[None]:
    """Compute the fingerprint anew in each test and leave no patched value cached for later tests."""
    build.pipeline_fingerprint.cache_clear()
    yield
    build.pipeline_fingerprint.cache_clear()


def _patched_copy(module_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of a module's source (a package: of its folder) that the fingerprint reads instead."""
    module = importlib.import_module(module_name)
    src = Path(str(module.__file__))
    if src.name == "__init__.py":
        dest = tmp_path / src.parent.name
        shutil.copytree(src.parent, dest, ignore=shutil.ignore_patterns("__pycache__"))
        dest = dest / "__init__.py"
    else:
        dest = tmp_path / src.name
        shutil.copy(src, dest)
    monkeypatch.setattr(module, "__file__", str(dest))
    return dest


def test_sources_cover_every_stage_and_what_it_imports() -> None:
    files = {p.relative_to(KB).as_posix() for p in build.pipeline_sources()}
    for stage in ("meta", "segment", "chunk", "corpus", "tokens", "glossary", "model"):
        assert f"{stage}.py" in files, stage
    # ingestion is a package, a module for each format
    ingest = {f"ingest/{m}.py" for m in ("__init__", "base", "text", "html", "pdf", "docx")}
    assert ingest <= files, ingest - files
    clean = {p.relative_to(KB).as_posix() for p in (KB / "clean").rglob("*.py")}
    assert {"clean/__init__.py", "clean/mojibake.py", "clean/lexicon.py", "clean/edits.py"} <= clean <= files
    # what a pipeline module imports is hashed too, wherever it lives
    assert "patterns.py" in files
    # and nothing that only searches or stores
    assert not files & {"store.py", "search.py", "embed.py", "build.py", "cli.py"}


def test_fingerprint_is_stable() -> None:
    first = build.pipeline_fingerprint()
    build.pipeline_fingerprint.cache_clear()
    assert build.pipeline_fingerprint() == first
    # the same in a fresh process, whatever this one imported or registered before
    code = "from kb.build import pipeline_fingerprint; print(pipeline_fingerprint())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == first


@pytest.mark.parametrize("module_name", ["kb.ingest", "kb.glossary", "kb.segment", "kb.clean"])
def test_fingerprint_changes_with_a_pipeline_module_source(
    module_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = build.pipeline_fingerprint()
    copy = _patched_copy(module_name, tmp_path, monkeypatch)
    build.pipeline_fingerprint.cache_clear()
    assert build.pipeline_fingerprint() == before  # an unchanged copy elsewhere: same code, same fingerprint
    with copy.open("a", encoding="utf-8") as f:
        f.write("\n# a change\n")
    build.pipeline_fingerprint.cache_clear()
    assert build.pipeline_fingerprint() != before


def test_fingerprint_changes_with_a_data_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = build.pipeline_fingerprint()
    data = tmp_path / "data"
    shutil.copytree(build.DATA_DIR, data)
    monkeypatch.setattr(build, "DATA_DIR", data)
    build.pipeline_fingerprint.cache_clear()
    assert build.pipeline_fingerprint() == before
    with (data / "glossary.tsv").open("a", encoding="utf-8") as f:
        f.write("# a change\n")
    build.pipeline_fingerprint.cache_clear()
    assert build.pipeline_fingerprint() != before


def test_listed_packages_are_installed() -> None:
    for package in build.PIPELINE_PACKAGES:
        assert metadata.version(package), package


@pytest.mark.parametrize("package", build.PIPELINE_PACKAGES)
def test_fingerprint_changes_with_a_package_version(package: str, monkeypatch: pytest.MonkeyPatch) -> None:
    before = build.pipeline_fingerprint()
    real = metadata.version
    monkeypatch.setattr(metadata, "version", lambda name: "999.0" if name == package else real(name))
    build.pipeline_fingerprint.cache_clear()
    assert build.pipeline_fingerprint() != before
    monkeypatch.setattr(metadata, "version", lambda name: "999.0" if name == "numpy" else real(name))
    build.pipeline_fingerprint.cache_clear()
    assert build.pipeline_fingerprint() == before  # a library outside the pipeline does not count
