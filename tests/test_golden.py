"""Golden files for the cleaned text and section tree of each seed; `pytest --update-goldens` rewrites them."""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import pytest
from conftest import GOLDEN, SEEDS


def _compare(path: Path, actual: str, update: bool) -> None:
    if update or not path.exists():
        path.write_text(actual, encoding="utf-8")
        if not update:
            pytest.fail(f"{path.name} did not exist; written now — review and commit it")
        return
    expected = path.read_text(encoding="utf-8")
    if expected != actual:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True), actual.splitlines(keepends=True), str(path), "actual", n=1
            )
        )
        pytest.fail(f"{path.name} differs from its golden file (rerun with --update-goldens if intended):\n{diff}")


@pytest.mark.parametrize("stem", sorted(p.stem for p in SEEDS.glob("*.txt")))
def test_cleaned_text_golden(stem: str, seed_items, update_goldens: bool) -> None:
    item = seed_items[stem[:3]]
    _compare(GOLDEN / f"{stem}.clean.txt", item.report.text + "\n", update_goldens)


@pytest.mark.parametrize("stem", sorted(p.stem for p in SEEDS.glob("*.txt")))
def test_section_tree_golden(stem: str, seed_items, update_goldens: bool) -> None:
    item = seed_items[stem[:3]]
    tree = json.dumps([s.to_dict() for s in item.report.sections], ensure_ascii=False, indent=1)
    _compare(GOLDEN / f"{stem}.sections.json", tree + "\n", update_goldens)
