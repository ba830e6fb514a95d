"""A loopback TCP proxy that cuts connections, to test what a client does when a stream drops.

Connection ``n`` (counted from 0, in the order they are accepted) is cut once
the server has sent ``cut_after[n]`` bytes of its answer's body through it
(counted after the HTTP head): the client gets exactly that many and then a
closed socket, as when a router or a network drops it.
Connections past the list pass through whole, or, with ``refuse_later``, are
refused: the listener closes after the listed ones. ``cut()`` cuts every open
connection at once, whatever it has sent (e.g. while a request waits for its answer).
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field


@dataclass
class CuttingProxy:
    target_port: int
    cut_after: list[int | None] = field(default_factory=list)
    refuse_later: bool = False
    connections: int = 0

    def __post_init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                _close(sock)

    def cut(self) -> None:
        """Cut the open connections now; later ones are accepted as before."""
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _close(sock)

    def __enter__(self) -> "CuttingProxy":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            with self._lock:
                index = self.connections
                self.connections += 1
            limit = self.cut_after[index] if index < len(self.cut_after) else None
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self._lock:
                self._sockets += [client, upstream]
            threading.Thread(target=_pump, args=(client, upstream, None), daemon=True).start()
            threading.Thread(target=_pump, args=(upstream, client, limit), daemon=True).start()
            if self.refuse_later and self.connections >= len(self.cut_after):
                self._listener.close()
                return


def _pump(source: socket.socket, sink: socket.socket, limit: int | None) -> None:
    """Copy bytes until either side closes, or until ``limit`` body bytes went through: then cut both."""
    head, body_sent = b"", None  # body_sent stays None until the head's blank line has passed
    try:
        while limit is None or body_sent is None or body_sent < limit:
            data = source.recv(65536)
            if not data:
                break
            if limit is not None:
                if body_sent is None:  # hold the head back until it is whole, then send it at once
                    head += data
                    if b"\r\n\r\n" not in head:
                        continue
                    end = head.index(b"\r\n\r\n") + 4
                    data, body_sent = head[end:], 0
                    sink.sendall(head[:end])
                data = data[:limit - body_sent]
                body_sent += len(data)
            sink.sendall(data)
    except OSError:
        pass  # the other pump closed the sockets: this direction is over too
    _close(source)
    _close(sink)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # not connected any more
    sock.close()
