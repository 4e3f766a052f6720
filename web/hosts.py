"""Which `Host:` names the app answers to: loopback names, IP addresses, the bound host and the trusted ones."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterable, Mapping

from kb.settings import BY_NAME

_SETTING = BY_NAME["trusted-host"]
ANY = "*"
WILDCARDS = ("", "0.0.0.0", "::", "[::]")


def host_name(host: str) -> str:
    """A `Host:` value without its port, lowercased, without a trailing dot: `[::1]:8000` → `::1`."""
    host = host.strip().lower()
    if host.startswith("["):  # an IPv6 literal, maybe with a port after the bracket
        return host[1:].partition("]")[0]
    if host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def from_environment(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The names of $KB_TRUSTED_HOSTS (comma- or space-separated)."""
    raw = str(_SETTING.value(os.environ if environ is None else environ) or "")
    return tuple(n for n in raw.replace(",", " ").split() if n)


def trusted_hosts(bound: str, extra: Iterable[str] = (), environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The names `kb serve --host bound` answers to besides loopback names and IP addresses: the bound host,
    $KB_TRUSTED_HOSTS and `extra`; bound to every address, also this machine's own names, the ones an
    intranet reaches it by."""
    names = [bound, *from_environment(environ), *extra]
    if bound in WILDCARDS:
        names += [socket.gethostname(), socket.getfqdn()]
    return tuple(dict.fromkeys(host_name(n) for n in names if n and host_name(n)))


def is_trusted(host: str | None, trusted: Iterable[str]) -> bool:
    """Whether a request's `Host:` names this server. A DNS-rebinding page reaches a local server under the
    attacker's own domain name, so only names are checked: loopback names (localhost and *.localhost, which
    no one else can own), IP addresses (a browser that sends one was pointed at the address itself) and the
    trusted names; `*` among them turns the check off. No `Host:` at all (HTTP/1.0) is no browser's."""
    if not host:
        return True
    allowed = {host_name(n) for n in trusted}
    name = host_name(host)
    if ANY in allowed or name in allowed or _is_ip(name):
        return True
    return name == "localhost" or name.endswith(".localhost")
