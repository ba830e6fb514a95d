"""Gates: how a test holds a fake (a provider reply, a tool) at a known point and lets it go.

    gate = Gate()
    fake_openai.add(Reply("slow", gate=gate))   # the fake holds this answer at the gate
    ...start a turn...
    gate.wait_reached()                         # the provider call is in flight now
    ...cancel it, send a competing request, shut down...
    gate.open()                                 # the answer goes out

No sleeps order the threads: the test waits for ``reached`` and decides when
to ``open``. A gate nobody opens gives up after ``GATE_TIMEOUT`` (the holder
fails) rather than hanging the suite; a holder also lets go when the ``cancel``
event it was given is set (a fake server stopping, a cancelled turn).
"""

from __future__ import annotations

import threading

GATE_TIMEOUT = 60.0


class GateNeverOpened(AssertionError):
    """The test never opened a gate something waited at."""


class Gate:
    def __init__(self) -> None:
        self.reached = threading.Event()
        self._open = threading.Event()

    def hold(self, cancel: threading.Event | None = None) -> bool:
        """Wait at the gate until it opens (True) or ``cancel`` is set (False).

        Raises:
            GateNeverOpened: neither happened within ``GATE_TIMEOUT``.
        """
        self.reached.set()
        step = 0.02 if cancel is not None else GATE_TIMEOUT
        waited = 0.0
        while not self._open.wait(step):
            waited += step
            if cancel is not None and cancel.is_set():
                return False
            if waited >= GATE_TIMEOUT:
                raise GateNeverOpened("a gate was never opened")
        return True

    def wait_reached(self, timeout: float = GATE_TIMEOUT) -> None:
        assert self.reached.wait(timeout), "nothing reached the gate"

    def open(self) -> None:
        self._open.set()

    @property
    def is_open(self) -> bool:
        return self._open.is_set()


class Quorum(Gate):
    """A gate that opens by itself once ``count`` holders wait at it: that many calls were in flight at once."""

    def __init__(self, count: int) -> None:
        super().__init__()
        self.count = count
        self.arrived = 0
        self._lock = threading.Lock()

    def hold(self, cancel: threading.Event | None = None) -> bool:
        with self._lock:
            self.arrived += 1
            if self.arrived >= self.count:
                self.open()
        return super().hold(cancel)
