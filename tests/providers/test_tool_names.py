"""MCP tool names the provider APIs refuse (".", "/", over 64 characters) sent as names they accept, and back."""

from __future__ import annotations

import re

import pytest

from goose_api import conversation as conv
from goose_api.conversation import Message
from goose_api.providers.anthropic import AnthropicProvider
from goose_api.providers.base import ToolSpec
from goose_api.providers.google import GoogleProvider
from goose_api.providers.ollama import OllamaProvider
from goose_api.providers.openai import OpenAIProvider
from goose_api.providers.tool_names import ToolNames
from tests.fakes import AnthropicFake, GoogleFake, OllamaFake, OpenAIFake, Reply, ToolCall

SCHEMA = {"type": "object", "properties": {"path": {"type": "string"}}}
DOTTED = "github__search.issues"
SLASHED = "fs__read/file"
LONG = "warehouse__" + "generate_the_quarterly_inventory_report_for_every_region" + "_and_email_it"
VALID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
GEMINI = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_-]{0,63}$")


def spec(name: str) -> ToolSpec:
    return ToolSpec(name, "a tool", SCHEMA)


def test_valid_names_are_kept_and_invalid_ones_replaced_stably():
    names = ToolNames(["developer__shell", DOTTED, SLASHED, LONG])
    assert names.wire("developer__shell") == "developer__shell"
    assert names.wire(DOTTED) == "github__search_issues" and names.wire(SLASHED) == "fs__read_file"
    assert len(LONG) > 64 and VALID.match(names.wire(LONG)) and names.wire(LONG).startswith("warehouse__generate")
    assert ToolNames([LONG]).wire(LONG) == names.wire(LONG)  # the same on every call, whatever else is offered
    for name in (DOTTED, SLASHED, LONG, "developer__shell"):
        assert names.goose(names.wire(name)) == name


def test_collisions_get_distinct_names_and_map_back():
    names = ToolNames(["a__b.c", "a__b_c", "a__b/c"])
    wires = {names.wire(n) for n in ("a__b.c", "a__b_c", "a__b/c")}
    assert len(wires) == 3 and names.wire("a__b_c") == "a__b_c"  # a valid name is never renamed
    assert all(VALID.match(w) for w in wires)
    assert {names.goose(w) for w in wires} == {"a__b.c", "a__b_c", "a__b/c"}


def test_gemini_names_start_with_a_letter_or_underscore():
    names = ToolNames(["9lives__run", "x__ok"], letter_first=True)
    assert GEMINI.match(names.wire("9lives__run")) and names.goose(names.wire("9lives__run")) == "9lives__run"
    assert names.wire("x__ok") == "x__ok"


def test_a_history_name_no_longer_offered_still_gets_a_valid_name():
    names = ToolNames(["developer__shell"])
    assert VALID.match(names.wire("old__tool.v1")) and names.wire("old__tool.v1") != "old__tool_v1"


PROVIDERS = [(OpenAIFake, OpenAIProvider), (AnthropicFake, AnthropicProvider), (GoogleFake, GoogleProvider),
             (OllamaFake, OllamaProvider)]


@pytest.mark.parametrize("fake_class, provider_class", PROVIDERS, ids=lambda v: getattr(v, "provider", ""))
def test_every_provider_sends_accepted_names_and_maps_calls_back(fake_class, provider_class):
    tools = [spec(DOTTED), spec(SLASHED), spec(LONG)]
    names = ToolNames([t.name for t in tools], letter_first=True)
    with fake_class() as fake:
        wire_long = names.wire(LONG)
        fake.add(Reply(tool_calls=[ToolCall(wire_long, {"path": "x"}, id="call_1")]), Reply("done"))
        provider = provider_class(fake.settings())
        first = provider.complete("sys", [Message.user("go")], tools)
        (request,) = first.message.tool_requests()
        assert request["toolCall"]["value"]["name"] == LONG  # the session keeps goose's name
        history = [Message.user("go"), first.message,
                   Message("user", [conv.tool_response(request["id"], [conv.text("ok")])])]
        assert provider.complete("sys", history, tools).message.text() == "done"
        fake.assert_done()  # the fake refuses any name its service refuses
        sent = fake.requests[1].body
        assert wire_long in str(sent) and LONG not in str(sent) and DOTTED not in str(sent)
