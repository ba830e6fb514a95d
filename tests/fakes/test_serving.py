"""The fakes' sockets: a burst of connections is queued, not dropped, and answers go out without Nagle's delay."""

from __future__ import annotations

import selectors
import socket
import time

from tests.fakes.core import _handler_for, _QuietServer
from tests.fakes.openai import OpenAIFake

BURST = 1000


def test_a_burst_of_a_thousand_connections_waits_in_the_listen_queue():
    """Nobody accepts (the serving thread is not started): every connection must still be established.

    With the default backlog of 5, the kernel drops the SYNs past the sixth and those
    clients wait for a retransmission (1 s, then 3 s, ...), which is what a benchmark's
    burst would have measured.
    """
    server = _QuietServer(("127.0.0.1", 0), _handler_for(OpenAIFake()))
    clients: list[socket.socket] = []
    selector = selectors.DefaultSelector()
    try:
        for _ in range(BURST):
            client = socket.socket()
            client.setblocking(False)
            client.connect_ex(server.server_address)
            selector.register(client, selectors.EVENT_WRITE)
            clients.append(client)
        connected: set[socket.socket] = set()
        deadline = time.monotonic() + 10  # a handshake on loopback takes microseconds; a dropped SYN waits 1 s
        while len(connected) < BURST and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=0.5):
                if key.fileobj.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                    connected.add(key.fileobj)
                selector.unregister(key.fileobj)
        assert len(connected) == BURST, f"{BURST - len(connected)} of {BURST} connections were not established"
    finally:
        selector.close()
        for client in clients:
            client.close()
        server.server_close()


def test_answers_are_written_with_tcp_nodelay():
    """Headers and body are two writes: with Nagle's algorithm the body waits for the client's delayed ACK."""
    seen: list[int] = []
    base = _handler_for(OpenAIFake())

    class Recording(base):  # the fake's own handler; records the option its setup left on the connection
        def setup(self) -> None:
            super().setup()
            seen.append(self.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

        def handle(self) -> None:
            pass

    server = _QuietServer(("127.0.0.1", 0), Recording)
    try:
        with socket.create_connection(server.server_address, timeout=10):
            server.handle_request()
    finally:
        server.server_close()
    assert seen and seen[0] != 0
