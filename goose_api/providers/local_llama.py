"""The loaded llama-cpp model of the ``local`` provider, and what the provider asks of llama-cpp beyond a chat call.

Everything here imports ``llama_cpp`` inside a function: importing goose_api
must not load native code (nothing is loaded before gunicorn forks).
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from goose_api.errors import ProviderError
from goose_api.providers.local_format import CALL_OPEN

log = logging.getLogger("goose_api.providers")


class FirstTokenBias:
    """A llama-cpp logits processor: ``bias`` added to ``tokens`` when a reply's first token is chosen."""

    def __init__(self, tokens: list[int], bias: float):
        self.tokens, self.bias, self.applied = tokens, bias, False

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if not self.applied:
            self.applied = True
            scores[self.tokens] += self.bias
        return scores


class LoadedModel:
    """A ``llama_cpp.Llama``, the lock its calls take, and the tokens that open a tool call."""

    def __init__(self, llm: Any):
        import llama_cpp

        self.llm = llm
        self.lock = threading.Lock()  # llama-cpp contexts are not thread-safe: one call at a time
        self.vocab = llama_cpp.llama_model_get_vocab(llm.model)
        self.call_start = call_start_tokens(llm)

    def first_token(self, bias: float) -> Any:
        """``logits_processor`` for a chat call: ``bias`` on the tokens opening a tool call, first token only."""
        from llama_cpp import LogitsProcessorList

        return LogitsProcessorList([FirstTokenBias(self.call_start, bias)])

    def parses(self, grammar: str) -> bool:
        """Whether llama.cpp parses ``grammar``: given one it cannot parse, llama-cpp-python crashes."""
        import llama_cpp

        sampler = llama_cpp.llama_sampler_init_grammar(self.vocab, grammar.encode(), b"root")
        if not sampler:
            return False
        llama_cpp.llama_sampler_free(sampler)
        return True


def call_start_tokens(llm: Any) -> list[int]:
    """The tokens a reply opening with ``<tool_call>`` can start with: every prefix that is one token."""
    def tokens(text: str) -> list[int]:
        return llm.tokenize(text.encode(), add_bos=False, special=False)

    starts = {tokens(CALL_OPEN[:end])[0] for end in range(1, len(CALL_OPEN) + 1) if len(tokens(CALL_OPEN[:end])) == 1}
    return sorted(starts | {tokens(CALL_OPEN)[0], tokens(CALL_OPEN + "[")[0]})


def load_model(path: Path, n_ctx: int) -> LoadedModel:
    """Load the GGUF at ``path``. Raises: ProviderError when llama-cpp cannot load it."""
    import llama_cpp

    started = time.monotonic()
    try:
        llm = llama_cpp.Llama(model_path=str(path), n_ctx=n_ctx, verbose=False)
    except (ValueError, RuntimeError) as exc:
        raise ProviderError("local", ProviderError.BAD_REQUEST, f"cannot load {path}: {exc}") from exc
    log.info("local model loaded path=%s n_ctx=%d duration_ms=%d", path, n_ctx, (time.monotonic() - started) * 1000)
    return LoadedModel(llm)


def prompt_tokens(llm: Any, messages: list[dict[str, str]]) -> int:
    """Tokens the chat prompt will take: contents plus a few per message for the template's markers."""
    return sum(len(llm.tokenize(m["content"].encode(), add_bos=False, special=False)) + 5 for m in messages) + 3
