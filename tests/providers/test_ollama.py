"""Ollama /api/chat: converters against recorded payloads, and the provider against the fake."""

from __future__ import annotations

import pytest

from goose_api import conversation as conv
from goose_api.conversation import Message
from goose_api.errors import ProviderError
from goose_api.providers import ollama as wire
from goose_api.providers.base import ProviderReply, TextDelta, ToolCallReady, ToolSpec
from goose_api.providers.ollama import OllamaProvider
from tests.fakes.core import Fail, Reply, ToolCall
from tests.fakes.ollama import OllamaFake

SHELL = ToolSpec("developer__shell", "Run a shell command", {
    "type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]})

# A non-streamed /api/chat answer as Ollama 0.9 sends it.
RECORDED = {
    "model": "qwen2.5:latest", "created_at": "2025-06-02T09:14:31.526412Z",
    "message": {"role": "assistant", "content": "",
                "tool_calls": [{"function": {"name": "developer__shell", "arguments": {"command": "uptime"}}}]},
    "done_reason": "stop", "done": True, "total_duration": 2138465125, "load_duration": 25310250,
    "prompt_eval_count": 212, "prompt_eval_duration": 1266000000, "eval_count": 22, "eval_duration": 845000000}


@pytest.fixture
def fake():
    with OllamaFake() as server:
        yield server
        server.assert_done()


def test_recorded_answer_converts_object_arguments():
    reply = wire.from_response(RECORDED)
    (call,) = reply.message.tool_requests()
    assert call["toolCall"]["value"] == {"name": "developer__shell", "arguments": {"command": "uptime"}}
    assert (reply.usage.input_tokens, reply.usage.output_tokens, reply.model) == (212, 22, "qwen2.5:latest")


def test_text_answer_and_request_shape(fake):
    fake.add(Reply("Hi!", usage=(15, 2)))
    settings = fake.settings(model="llava", temperature=0.3, max_tokens=32)
    reply = OllamaProvider(settings).complete("sys", [Message.user("hello", conv.image("aGk=", "image/png"))], [])
    assert reply.message.text() == "Hi!" and reply.usage.total_tokens == 17 and not reply.warnings
    body = fake.requests[0].body
    assert fake.requests[0].path == "/api/chat" and body["stream"] is False
    assert body["messages"] == [{"role": "system", "content": "sys"},
                                {"role": "user", "content": "hello", "images": ["aGk="]}]
    assert body["options"] == {"temperature": 0.3, "num_predict": 32, "num_ctx": 128_000}


def test_tool_round_trip_sends_object_arguments_and_named_results(fake):
    fake.add(Reply(tool_calls=[ToolCall("developer__shell", {"command": "uptime"})]), Reply("Up 3 days."))
    provider = OllamaProvider(fake.settings())
    first = provider.complete("", [Message.user("uptime?")], [SHELL])
    (request,) = first.message.tool_requests()
    history = [Message.user("uptime?"), first.message,
               Message("user", [conv.tool_error(request["id"], "permission denied")])]
    assert provider.complete("", history, [SHELL]).message.text() == "Up 3 days."
    sent = fake.requests[1].body["messages"]
    assert sent[1]["tool_calls"] == [{"function": {"name": "developer__shell", "arguments": {"command": "uptime"}}}]
    assert sent[2] == {"role": "tool", "content": "Error: permission denied", "tool_name": "developer__shell"}


def test_ndjson_stream_yields_deltas_calls_and_final_counts(fake):
    fake.add(Reply("Looking", tool_calls=[ToolCall("developer__shell", {"command": "ls"})], usage=(60, 7),
                   stream=True, chunk_size=2))
    events = list(OllamaProvider(fake.settings()).stream("", [Message.user("ls")], [SHELL]))
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Lo", "ok", "in", "g"]
    (ready,) = [e.content for e in events if isinstance(e, ToolCallReady)]
    assert ready["toolCall"]["value"]["arguments"] == {"command": "ls"}
    final = events[-1]
    assert isinstance(final, ProviderReply) and final.message.content == [conv.text("Looking"), ready]
    assert (final.usage.input_tokens, final.usage.output_tokens) == (60, 7)


@pytest.mark.parametrize("step, kind", [
    (Fail(404, code="model_not_found"), ProviderError.BAD_REQUEST),
    (Fail(500, "llama runner process has terminated: signal: killed"), ProviderError.UNAVAILABLE),
    (Fail(400, "invalid message format"), ProviderError.BAD_REQUEST),
])
def test_error_answers_are_classified(fake, step, kind):
    fake.add(step)
    with pytest.raises(ProviderError) as caught:
        OllamaProvider(fake.settings()).complete("", [Message.user("hi")], [])
    assert caught.value.kind == kind


def test_error_line_in_a_stream_is_unavailable(fake):
    fake.add(Fail(500, "an error was encountered while running the model", in_stream=True))
    with pytest.raises(ProviderError) as caught:
        list(OllamaProvider(fake.settings()).stream("", [Message.user("hi")], []))
    assert caught.value.kind == ProviderError.UNAVAILABLE and "running the model" in caught.value.detail


def test_ollama_host_without_scheme_is_accepted(fake):
    assert "://" not in fake.env()["OLLAMA_HOST"]
    assert OllamaProvider(fake.settings()).url == fake.base_url + "/api/chat"


def test_num_ctx_is_the_models_context_limit_so_ollama_does_not_cut_the_prompt(fake):
    """Without num_ctx Ollama's small default drops the start of a long prompt: the system prompt and tools."""
    long_history = [Message.user("x" * 40_000)]  # about 10k tokens: past Ollama's 4096 default
    fake.add(Reply("ok", usage=(10_000, 2)))
    reply = OllamaProvider(fake.settings()).complete("You are goose.", long_history, [SHELL])
    assert fake.requests[0].body["options"] == {"num_ctx": 32_768}  # qwen2.5's window
    assert reply.usage.input_tokens >= 10_000 and not reply.warnings  # all of it read, none cut


def test_a_prompt_ollama_cut_anyway_carries_a_warning(fake):
    fake.add(Reply("ok", usage=(10_000, 2)))
    settings = fake.settings(model_capabilities={"qwen2.5": {"context_limit": 2048}})
    reply = OllamaProvider(settings).complete("You are goose.", [Message.user("x" * 40_000)], [SHELL])
    assert fake.requests[0].body["options"]["num_ctx"] == 2048
    (warning,) = reply.warnings
    assert warning.startswith("Ollama read only 2048 prompt tokens of about 10") and "2048-token context" in warning


def test_done_reason_length_is_an_answer_cut_at_the_output_limit(fake):
    fake.add(Reply("It was a", finish="length", stream=True))
    final = list(OllamaProvider(fake.settings(max_tokens=3)).stream("", [Message.user("story")], []))[-1]
    assert final.stop_reason == "max_tokens" and "3 tokens" in final.warnings[0]


def test_context_overflow_when_ollama_is_told_not_to_truncate(fake):
    fake.add(Fail(400, "the input length exceeds the context length"))
    with pytest.raises(ProviderError) as caught:
        OllamaProvider(fake.settings()).complete("", [Message.user("hi")], [])
    assert caught.value.kind == ProviderError.CONTEXT_LENGTH
