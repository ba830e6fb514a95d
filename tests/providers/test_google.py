"""Google Gemini: converters against recorded payloads, and the provider against the fake."""

from __future__ import annotations

import pytest

from goose_api import conversation as conv
from goose_api.conversation import Message
from goose_api.errors import ProviderError
from goose_api.providers import google as wire
from goose_api.providers.base import ProviderReply, TextDelta, ToolCallReady, ToolSpec
from goose_api.providers.google import GoogleProvider
from tests.fakes.core import Fail, Reply, ToolCall
from tests.fakes.google import GoogleFake

# An MCP tool schema as servers publish it: JSON-schema keys Gemini does not accept.
SHELL = ToolSpec("developer__shell", "Run a shell command", {
    "$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "additionalProperties": False,
    "properties": {"command": {"type": "string", "title": "Command"},
                   "env": {"type": "object", "additionalProperties": {"type": "string"}, "properties": {}}},
    "required": ["command"]})
NO_ARGS = ToolSpec("developer__list_windows", "List windows", {"type": "object", "properties": {}})

# A generateContent answer as generativelanguage.googleapis.com sends it.
RECORDED = {
    "candidates": [{"content": {"parts": [
        {"text": "Let me check.", "thought": True},
        {"functionCall": {"name": "developer__shell", "args": {"command": "date"}}}], "role": "model"},
        "finishReason": "STOP", "index": 0}],
    "usageMetadata": {"promptTokenCount": 103, "candidatesTokenCount": 18, "totalTokenCount": 175,
                      "thoughtsTokenCount": 54, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 103}]},
    "modelVersion": "gemini-2.5-pro", "responseId": "Xw2KaOq-Ca"}


@pytest.fixture
def fake():
    with GoogleFake() as server:
        yield server
        server.assert_done()


def test_recorded_answer_skips_thoughts_and_mints_call_ids():
    reply = wire.from_response(RECORDED, "gemini-2.5-pro")
    (call,) = reply.message.content
    assert call["toolCall"]["value"] == {"name": "developer__shell", "arguments": {"command": "date"}}
    assert call["id"].startswith("gemini_")
    assert (reply.usage.input_tokens, reply.usage.output_tokens, reply.usage.total_tokens) == (103, 18, 175)


def test_schemas_are_cut_down_to_the_openapi_subset():
    (declarations,) = wire.to_tools([SHELL, NO_ARGS])
    shell, no_args = declarations["functionDeclarations"]
    assert shell["parameters"] == {"type": "object", "properties": {
        "command": {"type": "string"}, "env": {"type": "object", "properties": {}}}, "required": ["command"]}
    assert "parameters" not in no_args


def test_text_answer_and_request_shape(fake):
    fake.add(Reply("Bonjour", usage=(9, 2)))
    settings = fake.settings(temperature=0.1, max_tokens=64)
    reply = GoogleProvider(settings).complete("Be brief.", [Message.user("hello")], [SHELL, NO_ARGS])
    assert reply.message.text() == "Bonjour" and reply.usage.total_tokens == 11
    request = fake.requests[0]
    assert request.path == "/v1beta/models/gemini-2.5-pro:generateContent"
    assert request.headers["x-goog-api-key"] == "test-key"
    assert request.body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert request.body["contents"] == [{"role": "user", "parts": [{"text": "hello"}]}]
    assert request.body["generationConfig"] == {"temperature": 0.1, "maxOutputTokens": 64}


def test_tool_round_trip_answers_by_name(fake):
    fake.add(Reply(tool_calls=[ToolCall("developer__shell", {"command": "date"}),
                               ToolCall("developer__shell", {"command": "whoami"})]),
             Reply("It is noon."))
    provider = GoogleProvider(fake.settings())
    first = provider.complete("", [Message.user("time?")], [SHELL])
    ids = [r["id"] for r in first.message.tool_requests()]
    history = [Message.user("time?"), first.message,
               Message("user", [conv.tool_response(ids[0], [conv.text("12:00")]), conv.tool_error(ids[1], "denied")])]
    assert provider.complete("", history, [SHELL]).message.text() == "It is noon."
    contents = fake.requests[1].body["contents"]
    assert contents[1]["parts"][0] == {"functionCall": {"name": "developer__shell", "args": {"command": "date"}}}
    assert contents[2] == {"role": "user", "parts": [
        {"functionResponse": {"name": "developer__shell", "response": {"output": "12:00"}}},
        {"functionResponse": {"name": "developer__shell", "response": {"error": "denied"}}}]}


def test_stream_yields_deltas_and_whole_calls(fake):
    fake.add(Reply("Checking the time", tool_calls=[ToolCall("developer__shell", {"command": "date"}, id="fc_1")],
                   usage=(30, 8), stream=True, chunk_size=6))
    events = list(GoogleProvider(fake.settings()).stream("", [Message.user("time?")], [SHELL]))
    assert fake.requests[0].path.endswith(":streamGenerateContent") and fake.requests[0].query == {"alt": "sse"}
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Checking the time"
    assert [e.content for e in events if isinstance(e, ToolCallReady)] == [
        conv.tool_request("fc_1", "developer__shell", {"command": "date"})]
    assert isinstance(events[-1], ProviderReply) and events[-1].usage.output_tokens == 8


@pytest.mark.parametrize("step, kind", [
    (Fail(429, "Resource has been exhausted (e.g. check quota).", retry_after=1), ProviderError.RATE_LIMIT),
    (Fail(400, code="context_length_exceeded"), ProviderError.CONTEXT_LENGTH),
    (Fail(503, "The model is overloaded. Please try again later."), ProviderError.UNAVAILABLE),
    (Fail(500, "An internal error has occurred."), ProviderError.UNAVAILABLE),
    (Fail(400, "Invalid value at 'contents[0].role'"), ProviderError.BAD_REQUEST),
    (Fail(403, "Method doesn't allow unregistered callers."), ProviderError.AUTH),
])
def test_error_answers_are_classified(fake, step, kind):
    fake.add(step)
    with pytest.raises(ProviderError) as caught:
        GoogleProvider(fake.settings()).complete("", [Message.user("hi")], [])
    assert caught.value.kind == kind


def test_invalid_key_is_auth_although_google_answers_400(fake):
    with pytest.raises(ProviderError) as caught:
        GoogleProvider(fake.settings(env={"GOOGLE_API_KEY": "bad"})).complete("", [Message.user("hi")], [])
    assert caught.value.kind == ProviderError.AUTH and caught.value.http_status == 400


def test_error_inside_a_stream_is_classified(fake):
    fake.add(Fail(429, "Resource has been exhausted", in_stream=True))
    with pytest.raises(ProviderError) as caught:
        list(GoogleProvider(fake.settings()).stream("", [Message.user("hi")], []))
    assert caught.value.kind == ProviderError.RATE_LIMIT
