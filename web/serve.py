"""`kb serve`: bring the index up to date if needed, then serve the web UI and JSON API with waitress."""

from __future__ import annotations

import ipaddress
import sys
import threading
import webbrowser
from collections.abc import Sequence
from pathlib import Path

from waitress import create_server

from kb.build import build, is_stale, unseen_by_seeds
from kb.embed import Embedder
from kb.errors import UsageError
from kb.store import IndexLoadError
from web.app import create_app
from web.errors import MAX_BODY
from web.holder import open_searcher
from web.hosts import trusted_hosts
from web.settings import Settings, request_body_limit


def _browse(url: str) -> None:
    try:
        webbrowser.open(url)
    except Exception as exc:  # no browser on a server is normal; the URL is printed anyway
        print(f"kb: could not open a browser ({exc}); open {url} yourself", file=sys.stderr)


def is_loopback(host: str) -> bool:
    """Whether `host` only listens on this machine (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _build_before_serving(seeds: Path, index: Path, embedder: Embedder) -> None:
    """Bring a stale index up to date with the seeds folder, unless that would remove most of its reports: an
    index built from another folder (`kb --index … serve` without its --seeds) is served as it is, since
    rebuilding it from the bundled seeds would replace the user's reports (and their embedding time) with them."""
    gone, indexed = unseen_by_seeds(seeds, index)
    if indexed and gone * 2 > indexed:
        print(
            f"kb: {gone} of the {indexed} reports in {index} are not in {seeds}: serving the index as it is (give"
            f" --seeds with the folder it was built from, or run kb build to rebuild it from {seeds})",
            file=sys.stderr,
        )
        return
    print(f"kb: the index in {index} is missing or out of date; building it from {seeds}", file=sys.stderr)
    stats = build(seeds, index, embedder, progress=True)
    print(
        f"kb: {stats.documents} reports, {stats.chunks} passages; embedded {stats.embedded}; {stats.seconds:.1f}s",
        file=sys.stderr,
    )


def serve(
    seeds: Path,
    index: Path,
    embedder: Embedder,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    threads: int = 8,
    open_browser: bool = False,
    allow_upload: bool = False,
    allow_remote_upload: bool = False,
    upload_max_mb: float | None = None,
    trusted: Sequence[str] = (),
) -> int:
    """Build the index first when it is missing or stale, then serve until interrupted."""
    if allow_upload and not allow_remote_upload and not is_loopback(host):
        raise UsageError(
            f"--allow-upload with --host {host}: anyone who reaches it could add reports; serve on 127.0.0.1, or"
            " add --allow-remote-upload if that is meant"
        )
    if seeds.is_dir() and is_stale(seeds, index, embedder.model_id):
        _build_before_serving(seeds, index, embedder)
    try:
        searcher = open_searcher(index, embedder)
    except IndexLoadError as exc:
        raise UsageError(f"{exc} (is {seeds} a folder of reports?)") from exc

    try:  # load the model and tokenizer now, so the first visitor does not wait for them (~1 s)
        searcher.search("法治政府建设", k=1)
    except Exception as exc:  # an empty index, say: the server still starts and says so per request
        print(f"kb: warm-up search failed: {exc}", file=sys.stderr)

    settings = Settings(
        index=index, seeds=seeds, searcher=searcher, own_searcher=True, allow_upload=allow_upload,
        upload_max_mb=upload_max_mb, trusted_hosts=trusted_hosts(host, trusted),
    )
    app = create_app(settings)
    body = request_body_limit(settings, MAX_BODY)
    try:  # waitress's own limit: a larger body is refused as it arrives, never spooled to disk first
        server = create_server(
            app, host=host, port=port, threads=max(1, threads), ident="kb", max_request_body_size=body
        )
    except OSError as exc:
        raise UsageError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from exc
    except ValueError as exc:  # waitress: "Invalid host/port specified."
        raise UsageError(f"cannot serve on {host!r} port {port}: {exc}") from exc
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else (host if ":" not in host else f"[{host}]")
    url = f"http://{shown}:{server.effective_port}/"  # type: ignore[union-attr]
    print(f"kb: serving {index} ({searcher.reader.version}, {searcher.reader.n_chunks} passages) at {url}", flush=True)
    print("kb: press Ctrl+C to stop", file=sys.stderr, flush=True)
    if allow_upload:
        print(f"kb: upload is on: {url}upload adds reports to {seeds}", file=sys.stderr, flush=True)
    if open_browser:
        threading.Timer(0.5, _browse, args=(url,)).start()
    try:
        server.run()
    except KeyboardInterrupt:
        print("kb: stopped", file=sys.stderr)
    finally:
        server.close()
    return 0
