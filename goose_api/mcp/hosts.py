"""Where URL extensions (``sse``, ``streamable_http``) may connect: public addresses, and ``extension_hosts``.

Loopback, private, link-local, shared (CGNAT), reserved, multicast and cloud
metadata addresses are refused unless ``extension_hosts`` names the URL's host
or a network holding the address. IPv6 forms that carry an IPv4 address
(mapped, 6to4, Teredo, NAT64) are judged by that address.

The check runs on the address each connection actually reached, whatever DNS
said when the extension was added (a name that re-resolves to 127.0.0.1 later
is refused then): ``guarded_client`` gives the MCP SDK an httpx2 client whose
requests carry httpcore's ``trace`` extension, and the trace callback looks at
the peer of every new TCP connection before a byte of the request is sent. The
client ignores proxy variables, so the address checked is the server's own.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
from functools import partial
from typing import Any, Iterable
from urllib.parse import urlsplit

import httpx2

from goose_api.errors import ConfigurationError, Forbidden

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
METADATA = frozenset(map(ipaddress.ip_address, (
    "169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200", "192.0.0.192", "168.63.129.16")))


class ForbiddenAddress(Exception):
    """A connection reached an address that ``extension_hosts`` does not allow (the connection is closed)."""


def embedded_ipv4(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 one stands for (mapped, 6to4, Teredo server, NAT64), else the address itself."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address.teredo is not None:
            return address.teredo[1]
        if address in NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def describe(address: IPAddress) -> str | None:
    """What makes an address non-public ("a loopback address", ...), or None for a public one."""
    address = embedded_ipv4(address)
    for name, test in (("a cloud metadata address", address in METADATA), ("a loopback address", address.is_loopback),
                       ("a link-local address", address.is_link_local), ("a multicast address", address.is_multicast),
                       ("an unspecified address", address.is_unspecified), ("a reserved address", address.is_reserved),
                       ("a private address", address.is_private), ("a non-public address", not address.is_global)):
        if test:
            return name
    return None


class HostPolicy:
    """The ``extension_hosts`` setting: host names and networks (``10.0.0.0/8``, ``127.0.0.1``) let through."""

    def __init__(self, allowed: Iterable[str]):
        self.names: set[str] = set()
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in allowed:
            text = str(entry).strip().lower().rstrip(".")
            try:
                self.networks.append(ipaddress.ip_network(text.strip("[]"), strict=False))
            except ValueError:
                if not HOSTNAME.match(text):
                    raise ConfigurationError(f"extension_hosts: {entry!r} is neither a host name nor an IP address "
                                             "or network") from None
                self.names.add(text)

    def refusal(self, host: str, address: IPAddress) -> str | None:
        """Why ``host`` may not be reached at ``address`` (None: it may)."""
        kind = describe(address)
        if kind is None or host.lower().rstrip(".").strip("[]") in self.names:
            return None
        if any(address in net or embedded_ipv4(address) in net for net in self.networks):
            return None
        return (f"{host} is {address}, {kind}; add the host (or its network) to extension_hosts to allow "
                "extensions there")

    def check_url(self, url: str) -> None:
        """Refuse a URL whose host resolves (now) to an address that is not allowed.

        The connection is checked again (``guarded_client``); this only answers a clear 403 at add time.

        Raises:
            Forbidden: an address of the host is not allowed.
        """
        host = urlsplit(url).hostname or ""
        try:
            infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            return  # unresolvable now: the connection attempt reports it
        for info in infos:
            problem = self.refusal(host, ipaddress.ip_address(info[4][0].split("%")[0]))
            if problem:
                raise Forbidden(f"Extension URL refused: {problem}")

    async def _on_trace(self, host: str, event: str, info: dict[str, Any]) -> None:
        if event != "connection.connect_tcp.complete":
            return
        stream = info["return_value"]
        peer = stream.get_extra_info("server_addr")
        problem = "the peer address is unknown" if not peer else self.refusal(
            host, ipaddress.ip_address(str(peer[0]).split("%")[0]))
        if problem:
            await stream.aclose()
            log.warning("extension connection refused: %s", problem)
            raise ForbiddenAddress(problem)

    async def attach(self, request: httpx2.Request) -> None:
        """An httpx2 request hook: check the connection this request opens, if it opens one."""
        request.extensions["trace"] = partial(self._on_trace, request.url.host)


def guarded_client(policy: HostPolicy, headers: dict[str, str] | None = None, timeout: httpx2.Timeout | None = None,
                   auth: httpx2.Auth | None = None) -> httpx2.AsyncClient:
    """An httpx2 client whose every new connection is checked against ``policy`` (the SDK's client factory)."""
    kwargs: dict[str, Any] = {"headers": headers, "trust_env": False, "event_hooks": {"request": [policy.attach]}}
    if timeout is not None:
        kwargs["timeout"] = timeout
    if auth is not None:
        kwargs["auth"] = auth
    return httpx2.AsyncClient(**kwargs)
