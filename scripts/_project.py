"""What every Python script here does first: run inside the project's virtual environment, with kb importable."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_PY = ROOT / ".venv" / "bin" / "python"


def enter(script: str) -> Path:
    """Re-run `script` with .venv's Python when that exists and is not the one running (a plain `python3`
    lacks the project's libraries); put the project root on the path; return the root."""
    if VENV_PY.exists() and Path(sys.prefix).resolve() != (ROOT / ".venv").resolve():
        os.execv(str(VENV_PY), [str(VENV_PY), str(Path(script).resolve()), *sys.argv[1:]])
    sys.path.insert(0, str(ROOT))
    try:
        import numpy  # noqa: F401  (a library of the project's, light to import)
        import tqdm  # noqa: F401
    except ModuleNotFoundError as exc:
        print(f"kb: error: {exc.name} is not installed here; set the project up first: ./scripts/run "
              f"(creates .venv), or pip install -e {ROOT}", file=sys.stderr)
        sys.exit(2)
    return ROOT
