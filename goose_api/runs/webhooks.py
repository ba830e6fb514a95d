"""Webhooks: a run's final event POSTed to a URL, signed, retried, never blocking the run.

When a run ends (``done`` or ``error``, including a run found interrupted),
its final event is written to the backend's outbox (files: ``<data_dir>/webhooks/``) and
the worker's delivery thread is woken; the run does not wait. The thread POSTs
it (``deliver``: the whole exchange, connect to answer, within
``webhook_timeout`` seconds, however slowly a receiver drips its answer; the
answer's body is never read); a failed delivery (connection error, timeout, non-2xx)
is retried after ``webhook_retry_wait`` seconds, doubling each time, up to
``webhook_retries`` retries; then the file moves to ``webhooks/failed/``.
Pending deliveries survive a restart: every worker's thread delivers what is
due in the outbox, each file under its own lock, so exactly one worker sends
each attempt.

Every delivery is signed (Stripe-style): ``X-Goose-Timestamp: <unix seconds>``
and ``X-Goose-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">``.
A receiver recomputes it over the raw body and rejects old timestamps to stop
replays. The signing secret is that of the key that asked for the webhook, so
no key can have the server sign an event another key's receiver would accept:
its ``webhook_secret`` in ``api_keys``, else ``HMAC-SHA256(server secret, key
name)`` in hex. The server secret (the ``webhook_secret`` setting, else
generated into ``<data_dir>/webhook_secret``) signs the ``webhook_url``
setting's deliveries and those of the ``default`` key (``api_key``).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import socket
import ssl
import threading
import time
import uuid
from typing import Any, Iterator
from urllib.parse import urlsplit

from filelock import FileLock, Timeout

from goose_api.errors import ApiError
from goose_api.runs.event_log import Event
from goose_api.storage import atomic
from goose_api.storage.data_dir import DataDir, lock_of
from goose_api.storage.interfaces import OutboxStorage
from goose_api.storage.secret_file import stored_secret
from goose_api.version import __version__

log = logging.getLogger(__name__)

MAX_WAIT = 3600.0     # the longest wait between two attempts
IDLE_LOOK = 5.0       # how often an idle delivery thread looks for work another worker queued
SERVER_KEY = "default"  # the api_key holder signs with the server secret itself
SIGNATURE_HEADER, TIMESTAMP_HEADER = "X-Goose-Signature", "X-Goose-Timestamp"
SIGNED_TEXT = f"<{TIMESTAMP_HEADER}>.<raw body>"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Goose-Signature`` value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def derived_secret(server_secret: str, key: str) -> str:
    """A key's webhook secret when ``api_keys`` sets none: hex HMAC-SHA256 of its name, keyed by the server's."""
    return hmac.new(server_secret.encode(), key.encode(), hashlib.sha256).hexdigest()


def deliver(url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
    """POST ``body`` to ``url`` and return the answer's status, all within ``timeout`` seconds.

    A read timeout bounds each read only: a receiver sending a byte now and
    then would hold the delivery thread for ever. Here a timer shuts the
    socket down when the time is up, whatever it is doing, and the answer's
    body is not read at all (redirects are not followed).

    Raises:
        OSError: no connection, or the time ran out (``TimeoutError``).
        http.client.HTTPException: the answer is not HTTP. ValueError: not an http(s) URL.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("not an http(s) URL")
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    extra = {"context": ssl.create_default_context()} if parts.scheme == "https" else {}
    connection = kind(parts.hostname, parts.port, timeout=timeout, **extra)
    expired = threading.Event()

    def cut() -> None:
        expired.set()
        sock = connection.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # closed already
    timer = threading.Timer(timeout, cut)
    timer.daemon = True
    timer.start()
    try:
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection.request("POST", target, body=body, headers=headers)
        status = connection.getresponse().status
    except (OSError, http.client.HTTPException):
        if expired.is_set():
            raise TimeoutError(f"no answer within {timeout:g} s") from None
        raise
    finally:
        timer.cancel()
        connection.close()
    if expired.is_set():  # cut mid-answer: what was read is not the receiver's whole answer
        raise TimeoutError(f"no answer within {timeout:g} s")
    return status


def final_event(session_id: str, run_id: str, event: Event) -> dict[str, Any]:
    """The JSON a webhook receives: the run's terminal event and what it belongs to."""
    return {"type": event.type, "session_id": session_id, "run_id": run_id, "event_id": event.id,
            "time": event.time, "data": event.data}


class FileOutbox:
    """The deliveries as files in ``<data_dir>/webhooks/``, each attempt under the file's own lock."""

    def __init__(self, data: DataDir):
        self.data = data
        data.failed_webhooks.mkdir(parents=True, exist_ok=True)

    def secret(self) -> str:
        return stored_secret(self.data.webhook_secret, "webhook secret")

    def add(self, delivery: dict[str, Any]) -> None:
        atomic.write_json(self.data.webhook_delivery(delivery["id"]), delivery)

    def due(self) -> Iterator[tuple[dict[str, Any] | None, float | None]]:
        """(a delivery to attempt now, None) or (None, seconds until one is due), each held while it is yielded."""
        for path in self.data.webhook_deliveries():
            lock = FileLock(str(lock_of(path)), thread_local=False)
            try:
                lock.acquire(timeout=0)
            except Timeout:
                continue  # another worker is sending it
            try:
                try:
                    delivery = json.loads(path.read_text(encoding="utf-8"))
                except FileNotFoundError:
                    continue  # delivered by another worker meanwhile
                if delivery["next_at"] > time.time():
                    yield None, delivery["next_at"] - time.time()
                else:
                    yield delivery, None
            finally:
                lock.release()
                if not path.exists():
                    lock_of(path).unlink(missing_ok=True)

    def delivered(self, delivery: dict[str, Any]) -> None:
        self.data.webhook_delivery(delivery["id"]).unlink(missing_ok=True)

    def retry_at(self, delivery: dict[str, Any]) -> None:
        atomic.write_json(self.data.webhook_delivery(delivery["id"]), delivery)

    def given_up(self, delivery: dict[str, Any]) -> None:
        path = self.data.webhook_delivery(delivery["id"])
        atomic.write_json(self.data.failed_webhook(path), delivery)
        path.unlink(missing_ok=True)

    def pending(self) -> int:
        return len(self.data.webhook_deliveries())

    def waiting(self) -> list[dict[str, Any]]:
        """The deliveries waiting (not given up), oldest first."""
        out = []
        for path in self.data.webhook_deliveries():
            try:
                out.append(json.loads(path.read_text(encoding="utf-8")))
            except (FileNotFoundError, ValueError):
                continue  # delivered meanwhile, or being replaced
        return out


class WebhookOutbox:
    def __init__(self, outbox: OutboxStorage, secret: str | None, *, retries: int, first_wait: float,
                 timeout: float, key_secrets: dict[str, str] | None = None):
        self.outbox = outbox
        self._secret = secret
        self._key_secrets = dict(key_secrets or {})  # the webhook_secret of api_keys entries that set one
        self.retries = retries
        self.first_wait = first_wait
        self.timeout = timeout
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def secret(self) -> str:
        """The signing key: the setting, else one generated on first use and kept by the backend."""
        if self._secret is None:
            self._secret = self.outbox.secret()
        return self._secret

    def secret_for(self, key: str | None) -> str:
        """The secret signing the webhooks ``key`` asked for (None: the server's own, for ``webhook_url``)."""
        if key is not None and key in self._key_secrets:
            return self._key_secrets[key]
        if key is None or key == SERVER_KEY:
            return self.secret
        return derived_secret(self.secret, key)

    def run_ended(self, session_id: str, run_id: str, webhook: str | None, key: str | None, event: Event) -> None:
        """Queue the final event of a run that has a webhook, signed for ``key``; returns at once."""
        if webhook:
            self.post(webhook, final_event(session_id, run_id, event), key)

    def post(self, url: str, payload: dict[str, Any], key: str | None = None) -> str:
        """Write a delivery to the outbox (durably) and wake the delivery thread; returns its id.

        ``key``: the name of the key whose secret signs it (None: the server's).
        """
        delivery_id = "whd_" + uuid.uuid4().hex[:16]
        body = json.dumps({"id": delivery_id, **payload}, ensure_ascii=False, separators=(",", ":"))
        self.outbox.add({"id": delivery_id, "url": url, "body": body, "attempts": 0, "next_at": time.time(),
                         "created": time.time(), "last_error": None, "key": key})
        self.start()
        self._wake.set()
        return delivery_id

    # --- the delivery thread -------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            if not self._closed.is_set() and (self._thread is None or not self._thread.is_alive()):
                self._thread = threading.Thread(target=self._loop, name="webhooks", daemon=True)
                self._thread.start()

    def close(self) -> None:
        self._closed.set()
        self._wake.set()

    def _loop(self) -> None:
        while not self._closed.is_set():
            self._wake.clear()
            wait = IDLE_LOOK
            try:
                for delivery, due_in in self.outbox.due():
                    if self._closed.is_set():
                        return
                    if delivery is not None:
                        due_in = self._send(delivery)
                    if due_in is not None:
                        wait = min(wait, due_in)
            except ApiError as exc:  # the outbox unreachable a moment (a database restart): look again later
                log.warning("webhook outbox unreadable: %s", exc)
            self._wake.wait(max(0.05, wait))

    def _send(self, delivery: dict[str, Any]) -> float | None:
        """Attempt one delivery; returns the seconds until its next attempt (None: done with it)."""
        body = delivery["body"].encode("utf-8")
        timestamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", "User-Agent": f"goose-api/{__version__}",
                   "X-Goose-Delivery": delivery["id"], TIMESTAMP_HEADER: timestamp,
                   SIGNATURE_HEADER: sign(self.secret_for(delivery.get("key")), timestamp, body)}
        try:
            status = deliver(delivery["url"], body, headers, self.timeout)
            error = None if 200 <= status < 300 else f"HTTP {status}"
        except (OSError, http.client.HTTPException, ValueError) as exc:
            error = type(exc).__name__
        delivery["attempts"] += 1
        if error is None:
            self.outbox.delivered(delivery)
            log.info("webhook delivered id=%s attempts=%d", delivery["id"], delivery["attempts"])
            return None
        delivery["last_error"] = error
        if delivery["attempts"] > self.retries:
            self.outbox.given_up(delivery)
            log.warning("webhook given up id=%s attempts=%d error=%s", delivery["id"], delivery["attempts"], error)
            return None
        wait = min(MAX_WAIT, self.first_wait * 2 ** (delivery["attempts"] - 1))
        delivery["next_at"] = time.time() + wait
        self.outbox.retry_at(delivery)
        log.info("webhook failed id=%s attempt=%d error=%s retry_in=%.1f", delivery["id"], delivery["attempts"],
                 error, wait)
        return wait

    def pending(self) -> int:
        return self.outbox.pending()
