"""Shared fixtures: paths, the golden-file flag, and one real index built per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
GOLDEN = Path(__file__).resolve().parent / "golden"
UNSEEN = Path(__file__).resolve().parent / "data" / "unseen"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-goldens", action="store_true", help="rewrite golden files instead of comparing")


@pytest.fixture(scope="session")
def update_goldens(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-goldens"))


@pytest.fixture(scope="session")
def seed_items():
    """The five seed reports, processed once per session."""
    from kb.corpus import process_folder

    result = process_folder(SEEDS)
    assert not result.errors
    return {item.report.doc_id[:3]: item for item in result.items}
