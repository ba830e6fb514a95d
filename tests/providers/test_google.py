"""Google Gemini: converters against recorded payloads, and the provider against the fake."""

from __future__ import annotations

import json

import pytest
import requests

from goose_api import conversation as conv
from goose_api.conversation import Message
from goose_api.errors import ProviderError
from goose_api.providers import google as wire
from goose_api.providers.base import ProviderReply, TextDelta, ToolCallReady, ToolSpec
from goose_api.providers.gemini_schema import clean_schema
from goose_api.providers.google import GoogleProvider
from goose_api.providers.retry import RetryingProvider
from goose_api.sessions.store import SessionStore
from goose_api.storage.data_dir import DataDir
from tests.fakes.core import Fail, Reply, ToolCall
from tests.fakes.google import GoogleFake, quota_body
from tests.support.goose_format import assert_goose_session

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
    # thinking tokens are output tokens: 18 of answer + 54 of thoughts
    assert (reply.usage.input_tokens, reply.usage.output_tokens, reply.usage.total_tokens) == (103, 72, 175)


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


# --- Gemini 3: thought signatures -------------------------------------------------------

def test_a_thought_signature_survives_a_reload_and_goes_back_with_its_call(tmp_path):
    with GoogleFake([Reply(tool_calls=[ToolCall("developer__shell", {"command": "date"}),
                                       ToolCall("developer__shell", {"command": "whoami"})]),
                     Reply("It is noon.")]) as fake:
        settings = fake.settings(model="gemini-3-pro-preview")
        data = DataDir.at(tmp_path / "data", tmp_path / "sessions")
        store = SessionStore(data)
        session = store.create("gem", str(tmp_path))
        store.append(session, Message.user("time?"))
        first = GoogleProvider(settings).complete("", session.messages, [SHELL])
        store.append(session, first.message)
        ids = [r["id"] for r in first.message.tool_requests()]
        store.append(session, Message("user", [conv.tool_response(i, [conv.text("ok")]) for i in ids]))
        assert_goose_session(store.path("gem"))  # goose's own field: the file stays one goose reads
        reloaded = SessionStore(data).load("gem")  # a new store: as after a restart
        assert GoogleProvider(settings).complete("", reloaded.messages, [SHELL]).message.text() == "It is noon."
        fake.assert_done()  # Gemini 3 refuses the call sent back without its signature
    signed = fake.requests[1].body["contents"][1]["parts"][0]
    assert signed["thoughtSignature"] in fake.signatures
    assert first.message.tool_requests()[0]["thoughtSignature"] == signed["thoughtSignature"]
    assert "thoughtSignature" not in first.message.tool_requests()[1]  # only the first call of a step has one


def test_calls_another_provider_made_get_the_documented_placeholder_on_gemini_3():
    history = [Message.user("time?"), Message.assistant(conv.tool_request("call_openai1", "developer__shell", {})),
               Message("user", [conv.tool_response("call_openai1", [conv.text("noon")])])]
    with GoogleFake([Reply("Noon.")]) as fake:
        GoogleProvider(fake.settings(model="gemini-3-flash-preview")).complete("", history, [SHELL])
        fake.assert_done()
    assert fake.requests[0].body["contents"][1]["parts"][0]["thoughtSignature"] == "skip_thought_signature_validator"


# --- schemas ----------------------------------------------------------------------------

MCP_SCHEMA = {  # what MCP servers send (pydantic models, TypeScript zod schemas), all of which Gemini refuses
    "$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object", "additionalProperties": False,
    "$defs": {"Point": {"type": "object", "properties": {"x": {"type": "number"}, "y": {"type": "number"}},
                        "required": ["x", "y"]},
              "Tree": {"type": "object", "properties": {"children": {"type": "array", "items": {"$ref": "#/$defs/Tree"}}}}},
    "properties": {
        "origin": {"$ref": "#/$defs/Point", "description": "where to start"},
        "label": {"type": ["string", "null"], "default": None},
        "mode": {"oneOf": [{"const": "fast"}, {"const": "safe"}]},
        "level": {"type": "integer", "enum": [1, 2, 3]},
        "tags": {"type": "object", "propertyNames": {"pattern": "^[a-z]+$"}, "additionalProperties": {"type": "string"}},
        "both": {"allOf": [{"type": "object", "properties": {"a": {"type": "string"}}},
                           {"properties": {"b": {"type": "string"}}, "required": ["b"]}]},
        "when": {"type": "string", "format": "date-time"}, "mail": {"type": "string", "format": "email"},
        "size": {"type": ["integer", "string"]}, "tree": {"$ref": "#/$defs/Tree"}, "any": {"type": "array"},
    },
    "required": ["origin", "missing"]}


def test_mcp_schemas_are_cleaned_to_what_gemini_accepts():
    cleaned = clean_schema(MCP_SCHEMA)
    props = cleaned["properties"]
    assert props["origin"] == {"type": "object", "description": "where to start", "required": ["x", "y"],
                               "properties": {"x": {"type": "number"}, "y": {"type": "number"}}}
    assert props["label"] == {"type": "string", "nullable": True}
    assert props["mode"] == {"anyOf": [{"type": "string", "enum": ["fast"]}, {"type": "string", "enum": ["safe"]}]}
    assert props["level"] == {"type": "integer", "description": "Allowed values: 1, 2, 3"}
    assert props["tags"] == {"type": "object"}
    assert props["both"]["properties"] == {"a": {"type": "string"}, "b": {"type": "string"}}
    assert props["when"] == {"type": "string", "format": "date-time"} and props["mail"] == {"type": "string"}
    assert props["size"] == {"anyOf": [{"type": "integer"}, {"type": "string"}]}
    assert props["any"] == {"type": "array", "items": {"type": "string"}}
    assert cleaned["required"] == ["origin"]  # a required name with no property would be refused
    assert "$schema" not in str(cleaned) and "$ref" not in str(cleaned) and "additionalProperties" not in str(cleaned)


def test_the_cleaned_schema_passes_the_sdk_schema_and_the_api(fake):
    from google.genai import types
    types.Schema.model_validate_json(json.dumps(clean_schema(MCP_SCHEMA)))  # raises on anything Gemini refuses
    fake.add(Reply("ok"))
    GoogleProvider(fake.settings()).complete("", [Message.user("hi")], [ToolSpec("draw__shape", "draw", MCP_SCHEMA)])


def test_the_raw_schema_is_what_the_fake_refuses():
    with GoogleFake() as fake:
        body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
                "tools": [{"functionDeclarations": [{"name": "draw", "parameters": MCP_SCHEMA}]}]}
        answer = requests.post(fake.base_url + "/v1beta/models/gemini-2.5-pro:generateContent", json=body,
                               headers={"x-goog-api-key": "test-key"}, timeout=5)
        assert answer.status_code == 400 and "Unknown name" in answer.json()["error"]["message"]
        fake.violations.clear()


# --- quotas and usage --------------------------------------------------------------------

def test_a_429_waits_the_retry_delay_google_gives(fake):
    fake.add(Fail(429, body=quota_body(retry_delay="0.25s")), Reply("ok"))
    waits = []
    provider = RetryingProvider(GoogleProvider(fake.settings()), fake.settings(), sleep=waits.append)
    assert provider.complete("", [Message.user("hi")], []).message.text() == "ok"
    assert waits == [0.25]


def test_a_daily_quota_is_not_retried(fake):
    fake.add(Fail(429, body=quota_body(retry_delay="41s", quota_id="GenerateRequestsPerDayPerProjectPerModel-FreeTier")))
    waits = []
    provider = RetryingProvider(GoogleProvider(fake.settings()), fake.settings(provider_retries=3), sleep=waits.append)
    with pytest.raises(ProviderError) as caught:
        provider.complete("", [Message.user("hi")], [])
    assert caught.value.kind == ProviderError.QUOTA and waits == []


def test_thinking_and_cached_tokens_are_counted(fake):
    fake.add(Reply("ok", usage=(100, 10), usage_details={"thoughtsTokenCount": 40, "cachedContentTokenCount": 64}))
    usage = GoogleProvider(fake.settings()).complete("", [Message.user("hi")], []).usage
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens, usage.cache_read_tokens) == (100, 50, 150, 64)


def test_the_placeholder_goes_only_to_steps_gemini_did_not_sign():
    signed = Message.assistant(conv.tool_request("c1", "developer__shell", {}, thought_signature="c2lnbmVk"),
                               conv.tool_request("c2", "developer__shell", {}))
    contents = wire.to_contents([Message.user("go"), signed], signatures=True)
    assert [p.get("thoughtSignature") for p in contents[1]["parts"]] == ["c2lnbmVk", None]
