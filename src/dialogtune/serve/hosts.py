"""The ``Host`` header check that stops DNS rebinding.

A web page the user visits can point its own domain at 127.0.0.1 and then call the local
API from the browser: the request reaches the server, but its ``Host`` header still names
the attacker's domain. Accepting only the names the server is really reached by refuses
it. By default those are the loopback names (``localhost``, ``127.x.x.x``, ``::1``) and
the ``--host`` the server binds; a wildcard bind (``0.0.0.0``, ``::``) also accepts any
IP address literal (a rebinding page always sends a domain name) and this machine's host
name. ``--allowed-hosts`` adds names (``*.example.com`` for subdomains, ``*`` for any).
"""

from __future__ import annotations

import ipaddress
import json
import socket

from .errors import error_body

LOOPBACK_NAMES = ("localhost",)
WILDCARD_BINDS = ("", "0.0.0.0", "::", "[::]")


def host_name(header: str) -> str:
    """The name in a ``Host`` header, without port, brackets or trailing dot, lowercased."""
    value = header.strip().lower()
    if value.startswith("["):  # [::1]:8000
        value = value[1:].partition("]")[0]
    elif value.count(":") == 1:  # name:port (more colons: a bare IPv6 address)
        value = value.partition(":")[0]
    return value.rstrip(".")


def _ip(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


def default_allowed_hosts(bind: str) -> tuple[str, ...]:
    """The names accepted when no ``--allowed-hosts`` is given, for a server on ``bind``."""
    names = [*LOOPBACK_NAMES]
    if bind in WILDCARD_BINDS:
        names += ["<ip>", socket.gethostname().lower(), socket.getfqdn().lower()]
    else:
        names.append(host_name(bind))
    return tuple(dict.fromkeys(names))


class HostChecker:
    """Whether a ``Host`` header is one of the accepted names (loopback ones always are)."""

    def __init__(self, allowed: tuple[str, ...]):
        self.any = "*" in allowed
        self.names = {host_name(a) for a in allowed if not a.startswith("*.") and a != "<ip>"}
        self.suffixes = tuple(a[1:].lower() for a in allowed if a.startswith("*."))
        self.any_ip = "<ip>" in allowed

    def __call__(self, header: str | None) -> bool:
        if self.any:
            return True
        if not header:
            return False
        name = host_name(header)
        ip = _ip(name)
        if ip is not None and (ip.is_loopback or self.any_ip):
            return True
        return name in self.names or name in LOOPBACK_NAMES or (
            bool(self.suffixes) and name.endswith(self.suffixes))


class HostCheckMiddleware:
    """Answer requests whose ``Host`` is not accepted with a 400 JSON error, before routing."""

    def __init__(self, app, allowed: tuple[str, ...]):
        self.app, self.check = app, HostChecker(allowed)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        header = dict(scope["headers"]).get(b"host")
        if self.check(header.decode("latin-1") if header is not None else None):
            return await self.app(scope, receive, send)
        payload = json.dumps(error_body(
            400, "this server does not answer to that Host name (start it with "
            "--allowed-hosts NAME to accept it)", "invalid_host")).encode()
        await send({"type": "http.response.start", "status": 400,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})
