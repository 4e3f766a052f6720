"""Crash safety: a rebuild killed at random moments never leaves an index that fails to load (5 kills here;
`scripts/kill_loop --points 30` is the full run recorded in RELIABILITY.md)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import ROOT


@pytest.mark.slow
def test_kill_loop_five_points() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "kill_loop"), "--points", "5", "--seed", "7"],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "5 kills, 0 failures" in proc.stdout
