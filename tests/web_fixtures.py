"""Fixtures for the web tests: the app over the session's real index, a test client, a live server."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from web import create_app


@pytest.fixture(scope="session")
def app(searcher):
    """The app over the session's Searcher (real index, real model); the app never closes it."""
    app = create_app({"searcher": searcher})
    app.config.update(TESTING=True)
    return app


@pytest.fixture()
def client(app):
    return app.test_client()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """A waitress server in a thread on a free loopback port."""

    def __init__(self, app) -> None:
        from waitress import create_server

        self.server = create_server(app, host="127.0.0.1", port=free_port(), threads=4, ident="kb-test")
        self.url = f"http://127.0.0.1:{self.server.effective_port}"
        self.thread = threading.Thread(target=self.server.run, name="kb-live-server", daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.close()
        self.thread.join(5)


@pytest.fixture(scope="session")
def live_server(app) -> Iterator[LiveServer]:
    with LiveServer(app) as server:
        yield server
