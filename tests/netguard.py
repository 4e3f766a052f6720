"""A guard for tests that start servers (Milvus Lite, Ray): nothing this test process or its children open may
listen on an address other than loopback while the test runs."""

from __future__ import annotations

import ipaddress
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.common import process_tree

_TABLES = {"tcp": "0A", "tcp6": "0A", "udp": "07", "udp6": "07"}  # LISTEN; UDP bound and unconnected


def _address(hex_addr: str) -> str:
    raw = bytes.fromhex(hex_addr)
    if len(raw) == 4:
        return str(ipaddress.IPv4Address(raw[::-1]))
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
    return str(ipaddress.IPv6Address(words))


def _socket_inodes(pids: set[int]) -> set[str]:
    inodes = set()
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                link = os.readlink(fd)
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
        except OSError:
            continue
    return inodes


def listening_off_loopback() -> list[str]:
    """'proto address:port' of every socket of this process tree listening elsewhere than loopback."""
    inodes = _socket_inodes(process_tree())
    bad = []
    for table, state in _TABLES.items():
        try:
            lines = Path(f"/proc/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if f[3] != state or f[9] not in inodes:
                continue
            host, port = f[1].split(":")
            addr = _address(host)
            ip = ipaddress.ip_address(addr)
            mapped = getattr(ip, "ipv4_mapped", None)  # ::ffff:127.0.0.1, as Ray's gRPC servers bind
            if not (mapped or ip).is_loopback:
                bad.append(f"{table} {addr}:{int(port, 16)}")
    return bad


@pytest.fixture()
def loopback_only() -> Iterator[None]:
    """Fails the test if, while it runs, any socket of this process tree listens off loopback."""
    seen: list[str] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.25):
            seen.extend(listening_off_loopback())

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join()
        seen.extend(listening_off_loopback())
    assert not seen, f"listening off 127.0.0.1 during the test: {sorted(set(seen))}"
