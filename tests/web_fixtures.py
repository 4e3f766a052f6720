"""Fixtures for the web tests: apps over the real index and conftest's fake one, test clients, live servers."""

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


@pytest.fixture()
def fake_client(fake_app):
    return fake_app.test_client()


@pytest.fixture(scope="session")
def fake_searcher(fake_app):
    """The Searcher fake_app serves (fake embedder), to compare its answers with."""
    return fake_app.extensions["kb"].searcher


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


@pytest.fixture(scope="session")
def fake_live_server(fake_app) -> Iterator[LiveServer]:
    with LiveServer(fake_app) as server:
        yield server
