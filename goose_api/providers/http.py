"""What every HTTP provider shares: the transport, stream framing, error classes.

A provider module supplies four pure pieces (build the request, parse a reply,
parse a stream, classify an error body); ``HttpProvider`` runs them over one
``requests.Session`` with the settings' connect/read timeouts, logs one line
per call, and turns network failures into ``ProviderError(UNAVAILABLE)``.
"""

from __future__ import annotations

import email.utils
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Mapping

import requests

from goose_api.client.sse import sse_frames
from goose_api.conversation import Message
from goose_api.errors import ConfigurationError, ProviderError
from goose_api.providers import failures
from goose_api.providers.base import ProviderReply, StreamEvent, ToolSpec, Usage, configured_model
from goose_api.providers.tool_names import ToolNames
from goose_api.settings import Settings

log = logging.getLogger("goose_api.providers")


@dataclass
class WireRequest:
    """One HTTP request to a provider API (``body`` is sent as JSON).

    ``names`` maps the tool names sent back to goose's, for reading the answer.
    """

    url: str
    headers: dict[str, str]
    body: dict[str, Any]
    params: dict[str, str] = field(default_factory=dict)
    names: ToolNames = field(default_factory=lambda: ToolNames(()))


class EncodedList(list):
    """A list that also holds each item's JSON (``texts``, ASCII bytes), so ``encode_json`` need not encode it again.

    Converters build it with ``append_encoded`` or by extending both sides in step.
    """

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[bytes] = []

    def append_encoded(self, item: Any) -> None:
        self.append(item)
        self.texts.append(encode_item(item))


def encode_item(item: Any) -> bytes:
    return json.dumps(item).encode("ascii")


def encode_json(body: dict[str, Any]) -> bytes:
    """``body`` as JSON (ASCII, like ``json.dumps``), splicing in the JSON an ``EncodedList`` value carries.

    A long history is most of a request: encoding it again on every call would
    cost more than the rest of a turn, and so would copying it more than twice.
    """
    parts = []
    for n, (key, value) in enumerate(body.items()):
        parts.append(b"%s%s:" % (b"," if n else b"{", encode_item(key)))
        if isinstance(value, EncodedList) and len(value.texts) == len(value):
            parts += (b"[", b",".join(value.texts), b"]")
        else:
            parts.append(encode_item(value))
    parts.append(b"}" if parts else b"{}")
    return b"".join(parts)


# --- stream framing -----------------------------------------------------------

def sse_events(lines: Iterable[str]) -> Iterator[tuple[str, str]]:
    """Yield ``(event, data)`` pairs from a provider's Server-Sent Events lines (``sse_reader``)."""
    for frame in sse_frames(lines, partial_last=True):
        yield frame.event, frame.data


def ndjson_objects(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """Yield one JSON object per non-empty line (Ollama's stream framing)."""
    for line in lines:
        if line.strip():
            yield json.loads(line)


# --- errors ---------------------------------------------------------------------

def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or HTTP date)."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        when = email.utils.parsedate_to_datetime(value) if email.utils.parsedate(value) else None
        return None if when is None else max(0.0, when.timestamp() - time.time())


def error_detail(text: str) -> str:
    """The human message inside an error body (``error.message``, ``error``, or the text)."""
    try:
        body = json.loads(text)
    except ValueError:
        return text.strip()[:500] or "no error message"
    if isinstance(body, list) and body:
        body = body[0]
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return err["message"]
        if isinstance(err, str):
            return err
        if isinstance(body.get("message"), str):
            return body["message"]
    return text.strip()[:500]


def classify_http(provider: str, status: int, text: str, headers: Mapping[str, str], *,
                  auth_markers: tuple[str, ...] = (), rate_markers: tuple[str, ...] = (),
                  retry_after: float | None = None, quota: bool = False) -> ProviderError:
    """Map an HTTP error answer onto one of ProviderError's kinds.

    Status codes decide first; lower-case substrings of the body catch what APIs
    put in a 400 or a 429: a bad key (``auth_markers``), a too-long prompt
    (``failures.CONTEXT_OVERFLOW``, for every provider), a spend limit
    (``failures.QUOTA``, or ``quota`` when the provider knows better).
    ``retry_after`` overrides the headers' wait (a wait the body gives).
    """
    lowered = text.lower()
    detail = error_detail(text)
    if retry_after is None:
        retry_after = retry_after_seconds(headers)
    if status in (401, 403) or any(m in lowered for m in auth_markers):
        kind = ProviderError.AUTH
    elif quota or failures.matches(failures.QUOTA, text):
        kind = ProviderError.QUOTA
    elif status == 413 or failures.matches(failures.CONTEXT_OVERFLOW, text):
        kind = ProviderError.CONTEXT_LENGTH
    elif status == 429 or any(m in lowered for m in rate_markers):
        kind = ProviderError.RATE_LIMIT
    elif status in (408, 409) or status >= 500:
        kind = ProviderError.UNAVAILABLE
    else:
        kind = ProviderError.BAD_REQUEST
    return ProviderError(provider, kind, f"HTTP {status}: {detail}", http_status=status, retry_after=retry_after)


# --- the provider base ----------------------------------------------------------

def env_value(settings: Settings, name: str, default: str | None = None) -> str | None:
    """A provider variable from ``settings.env``; empty strings count as unset."""
    value = settings.env.get(name)
    return value if value else default


def require_env(settings: Settings, provider: str, name: str) -> str:
    """Raises: ConfigurationError naming the variable when it is unset."""
    value = env_value(settings, name)
    if value is None:
        raise ConfigurationError(f"The {provider} provider needs {name}: set it in the environment or .env")
    return value


def join_url(host: str, path: str) -> str:
    if "://" not in host:
        host = "http://" + host
    return host.rstrip("/") + "/" + path.lstrip("/") if path else host.rstrip("/")


class HttpProvider:
    """Base for providers reached over HTTP; subclasses fill in the four hooks.

    ``request`` builds the call, ``parse`` reads a JSON reply, ``parse_stream``
    turns decoded lines into stream events ending with one ``ProviderReply``
    (both are given the request they answer), ``classify`` maps an error answer
    to a ``ProviderError``.
    """

    name = "http"
    required_env: tuple[str, ...] = ()
    default_model = ""

    def __init__(self, settings: Settings, model: str | None = None):
        self.settings = settings
        self.model = model or configured_model(settings, self.name) or self.default_model
        self.timeout = (settings.connect_timeout, settings.read_timeout)
        self.http = requests.Session()
        self.http.trust_env = False  # the environment is read once per URL (``_environment``), not per call
        self._environments: dict[str, dict[str, Any]] = {}
        # Calls are prepared without the session's merging (``Session.request`` merges seven settings,
        # each through a ``typing.Protocol`` isinstance check: ~0.1 ms a call); its default headers go here.
        self._session_headers = dict(self.http.headers)

    # hooks -----------------------------------------------------------------------
    def request(self, system: str, messages: list[Message], tools: list[ToolSpec],
                stream: bool) -> WireRequest:
        raise NotImplementedError

    def parse(self, body: dict[str, Any], wire: WireRequest) -> ProviderReply:
        raise NotImplementedError

    def parse_stream(self, lines: Iterator[str], wire: WireRequest) -> Iterator[StreamEvent]:
        raise NotImplementedError

    def classify(self, status: int, text: str, headers: Mapping[str, str]) -> ProviderError:
        return classify_http(self.name, status, text, headers)

    # the protocol ------------------------------------------------------------------
    def complete(self, system: str, messages: list[Message], tools: list[ToolSpec]) -> ProviderReply:
        """Raises: ProviderError."""
        started = time.monotonic()
        wire = self.request(system, messages, tools, stream=False)
        response = self._post(wire, stream=False, started=started)
        try:
            reply = self.parse(response.json(), wire)
        except ProviderError as error:  # an answer the service refused to give (a safety stop, ...)
            raise self._failed(error, response.status_code, started) from None
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise self._bad_answer(exc, started) from exc
        self._log(response.status_code, started, reply.usage)
        return reply

    def stream(self, system: str, messages: list[Message], tools: list[ToolSpec]) -> Iterator[StreamEvent]:
        """Yield deltas and tool calls as they arrive, then one ProviderReply. Raises: ProviderError."""
        started = time.monotonic()
        wire = self.request(system, messages, tools, stream=True)
        response = self._post(wire, stream=True, started=started)
        with response:
            lines = (line.decode("utf-8") for line in response.iter_lines(chunk_size=None))
            try:
                for event in self.parse_stream(self._network_guard(lines), wire):
                    if isinstance(event, ProviderReply):
                        self._log(response.status_code, started, event.usage)
                    yield event
            except ProviderError as error:  # an error event inside the stream, or the connection dropped
                raise self._failed(error, error.http_status, started)
            except (ValueError, KeyError, TypeError, IndexError) as exc:
                raise self._bad_answer(exc, started) from exc

    def close(self) -> None:
        """Close pooled connections (when a provider is replaced, e.g. after a config switch)."""
        self.http.close()

    # plumbing ----------------------------------------------------------------------
    def _post(self, wire: WireRequest, *, stream: bool, started: float) -> requests.Response:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("provider request provider=%s url=%s body=%s", self.name, wire.url, json.dumps(wire.body))
        try:
            prepared = requests.Request("POST", wire.url, data=encode_json(wire.body), params=wire.params or None,
                                        headers={**self._session_headers, "Content-Type": "application/json",
                                                 **wire.headers}).prepare()
            response = self.http.send(prepared, timeout=self.timeout, stream=stream, **self._environment(wire.url))
        except requests.RequestException as exc:
            raise self._failed(ProviderError(self.name, ProviderError.UNAVAILABLE,
                                             f"cannot reach {wire.url.split('?')[0]}: {type(exc).__name__}"),
                               None, started) from exc
        if response.status_code >= 400:
            text = response.text
            response.close()
            raise self._failed(self.classify(response.status_code, text, response.headers),
                               response.status_code, started)
        return response

    def _environment(self, url: str) -> dict[str, Any]:
        """Proxies and CA bundle from the environment, exactly as requests reads them, once per URL.

        With ``trust_env`` requests reads them again on every call, and looks for a
        ``~/.netrc`` too (whose entry would replace the provider key's header); the
        environment does not change while we run.
        """
        found = self._environments.get(url)
        if found is None:
            with requests.Session() as probe:
                merged = probe.merge_environment_settings(url, {}, None, None, None)
            found = self._environments[url] = {"proxies": merged["proxies"], "verify": merged["verify"]}
        return found

    def _network_guard(self, lines: Iterator[str]) -> Iterator[str]:
        """Re-raise a connection dropped mid-stream as UNAVAILABLE."""
        try:
            yield from lines
        except requests.RequestException as exc:
            raise ProviderError(self.name, ProviderError.UNAVAILABLE,
                                f"the stream was interrupted: {type(exc).__name__}") from exc

    def _bad_answer(self, exc: Exception, started: float) -> ProviderError:
        return self._failed(ProviderError(self.name, ProviderError.UNAVAILABLE,
                                          f"unreadable answer: {type(exc).__name__}: {exc}"), 200, started)

    def _failed(self, error: ProviderError, status: int | None, started: float) -> ProviderError:
        log.warning("provider call provider=%s model=%s status=%s kind=%s duration_ms=%d",
                    self.name, self.model, status or "-", error.kind, (time.monotonic() - started) * 1000)
        return error

    def _log(self, status: int, started: float, usage: Usage) -> None:
        log.info("provider call provider=%s model=%s status=%s duration_ms=%d input_tokens=%s output_tokens=%s",
                 self.name, self.model, status, (time.monotonic() - started) * 1000,
                 usage.input_tokens, usage.output_tokens)
