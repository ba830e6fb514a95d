"""URL extensions may not reach this machine, private networks or metadata services unless extension_hosts says so.

Checked twice: when the extension is added (a clear 403) and on every connection the MCP SDK
opens, against the address actually reached (a name that resolves elsewhere later, DNS
rebinding, is refused then, before a byte of the request is sent).
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from typing import Iterator

import anyio
import pytest

from goose_api.errors import ConfigurationError, ExtensionError, Forbidden
from goose_api.mcp.client import McpConnection, ServerSpec
from goose_api.mcp.hosts import ForbiddenAddress, HostPolicy, guarded_client
from tests.support.mcp_fixtures import LOOPBACK, everything_server, make_registry  # noqa: F401

pytestmark = pytest.mark.timeout(120)


class ListeningSocket:
    """A TCP listener on loopback that counts the connections it accepts and the bytes they send."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.received = b""
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            with conn:
                while chunk := conn.recv(65536):
                    self.received += chunk

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[ListeningSocket]:
    made = ListeningSocket()
    yield made
    made.close()


@pytest.mark.parametrize("address", ["127.0.0.1", "127.5.5.5", "::1", "::ffff:127.0.0.1", "10.1.2.3", "172.16.0.1",
                                     "192.168.1.1", "169.254.169.254", "169.254.170.2", "fd00:ec2::254",
                                     "100.100.100.200", "100.64.0.1", "192.0.0.192", "168.63.129.16", "0.0.0.0",
                                     "224.0.0.1", "fe80::1", "fc00::1", "64:ff9b::7f00:1", "2002:7f00:1::1",
                                     "240.0.0.1", "::"])
def test_non_public_addresses_are_refused(address):
    problem = HostPolicy(()).refusal("mcp.example", ipaddress.ip_address(address))
    assert problem is not None and "extension_hosts" in problem


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "64:ff9b::808:808"])
def test_public_addresses_are_allowed(address):
    assert HostPolicy(()).refusal("mcp.example", ipaddress.ip_address(address)) is None


def test_extension_hosts_allows_names_and_networks():
    policy = HostPolicy(["mcp.internal", "10.0.0.0/8", "127.0.0.1", "::1"])
    assert policy.refusal("MCP.internal.", ipaddress.ip_address("192.168.9.9")) is None
    assert policy.refusal("other.internal", ipaddress.ip_address("10.9.9.9")) is None
    assert policy.refusal("localhost", ipaddress.ip_address("127.0.0.1")) is None
    assert policy.refusal("localhost", ipaddress.ip_address("::ffff:127.0.0.1")) is None
    assert policy.refusal("other.internal", ipaddress.ip_address("192.168.9.9")) is not None
    assert policy.refusal("x", ipaddress.ip_address("169.254.169.254")) is not None


@pytest.mark.parametrize("entry", ["http://x", "a b", "10.0.0.0/33", "-x"])
def test_a_malformed_extension_hosts_entry_stops_the_start(entry):
    with pytest.raises(ConfigurationError, match="extension_hosts"):
        HostPolicy([entry])


@pytest.mark.parametrize("kind, path", [("streamable_http", "/mcp"), ("sse", "/sse")])
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "[::ffff:127.0.0.1]", "0.0.0.0"])
def test_adding_a_url_on_this_machine_is_403(make_registry, listener, kind, path, host):
    registry = make_registry()
    with pytest.raises(Forbidden, match="extension_hosts") as info:
        registry.add({"type": kind, "name": "local", "uri": f"http://{host}:{listener.port}{path}", "timeout": 5})
    assert info.value.status == 403 and registry.names() == []
    assert listener.accepted == 0


@pytest.mark.parametrize("kind, path", [("streamable_http", "/mcp"), ("sse", "/sse")])
def test_every_connection_is_checked_not_only_the_add(listener, kind, path):
    """As if DNS had said "public" when the extension was added and "127.0.0.1" now."""
    spec = ServerSpec(kind, url=f"http://127.0.0.1:{listener.port}{path}", hosts=HostPolicy(()))
    connection = McpConnection("rebound", spec)
    with pytest.raises(ExtensionError, match="ForbiddenAddress") as info:
        connection.start(10)
    assert "127.0.0.1, a loopback address" in info.value.message
    assert listener.received == b"", "not a byte of the request may reach the address"


def test_the_guarded_client_checks_the_peer_it_reached(listener):
    async def fetch(policy: HostPolicy) -> None:
        async with guarded_client(policy, timeout=None) as client:
            await client.get(f"http://127.0.0.1:{listener.port}/", timeout=0.5)

    with pytest.raises(ForbiddenAddress, match="loopback"):
        anyio.run(fetch, HostPolicy(()))
    assert listener.received == b""
    with pytest.raises(Exception) as info:  # allowed: the request is sent (and never answered)
        anyio.run(fetch, HostPolicy(LOOPBACK))
    assert not isinstance(info.value, ForbiddenAddress)
    assert listener.received.startswith(b"GET / HTTP/1.1")


def test_proxy_variables_do_not_move_the_check(monkeypatch, listener):
    monkeypatch.setenv("HTTP_PROXY", f"http://8.8.8.8:{listener.port}")
    monkeypatch.setenv("ALL_PROXY", f"http://8.8.8.8:{listener.port}")
    assert guarded_client(HostPolicy(())).trust_env is False


def test_allowed_hosts_connect(make_registry):
    registry = make_registry(extension_hosts=LOOPBACK)
    with everything_server("streamableHttp") as url:
        registry.add({"type": "streamable_http", "name": "ok", "uri": f"{url}/mcp", "timeout": 30})
        assert "ok__echo" in {tool.name for tool in registry.tools()}
