"""The real embedded SmolLM2-135M calling tools under the grammar (marker ``local_model``).

Decoding is greedy (the provider's default), so each prompt gets the same
reply on every run; the prompts are ones bench/local_model.py measured the
135M model to handle.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from types import MappingProxyType

import pytest

from extensions.developer import server as developer
from goose_api import conversation as conv
from goose_api.conversation import Message
from goose_api.providers.base import (
    END_TURN,
    MAX_TOKENS,
    TOOL_USE,
    ProviderReply,
    TextDelta,
    ToolCallReady,
    ToolSpec,
    output_limit_warning,
)
from goose_api.providers.local import DEFAULT_MODEL_FILE, TOOL_CALL_BIAS, LocalProvider
from goose_api.providers.local_grammar import call_grammar
from goose_api.settings import Settings

pytestmark = pytest.mark.local_model

ROOT = Path(__file__).resolve().parents[2]
SYSTEM = ("You are goose, a general-purpose AI agent. You help the user by answering and, when tools are "
          "available, by using them to act on their behalf.\n\nThe working directory is /home/me/project on Linux.")
WEATHER = ToolSpec("weather__get_weather", "Get the current weather in a city.",
                   {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
PARIS = [Message.user("What is the weather in Paris?")]


def build(**values) -> LocalProvider:
    return LocalProvider(Settings(provider="local", **values, env=MappingProxyType({})))


@pytest.fixture(scope="module")
def local() -> LocalProvider:
    """One provider (one loaded model) for the module, with the default model fetched by the project's script."""
    subprocess.run([sys.executable, str(ROOT / "scripts" / "fetch_model.py")], check=True, timeout=600)
    assert DEFAULT_MODEL_FILE.is_file()
    provider = build()
    yield provider
    provider.close()


def answered(call: dict, result: str) -> list[Message]:
    return [Message.assistant(call), Message("user", [conv.tool_response(call["id"], [conv.text(result)])])]


def test_the_model_calls_the_offered_tool_then_answers_from_its_result(local):
    reply = local.complete(SYSTEM, PARIS, [WEATHER])
    [call] = reply.message.content
    assert call["type"] == "toolRequest" and call["toolCall"] == {
        "status": "success", "value": {"name": "weather__get_weather", "arguments": {"city": "Paris"}}}
    answer = local.complete(SYSTEM, PARIS + answered(call, "Sunny, 21 degrees Celsius in Paris"), [WEATHER])
    assert answer.message.tool_requests() == []
    assert "sunny" in answer.message.text().lower()


def test_streamed_a_call_arrives_whole_and_is_never_shown_as_text(local):
    events = list(local.stream(SYSTEM, PARIS, [WEATHER]))
    assert not [e for e in events if isinstance(e, TextDelta)]
    [ready] = [e for e in events if isinstance(e, ToolCallReady)]
    final = events[-1]
    assert isinstance(final, ProviderReply) and final.message.content == [ready.content]
    assert ready.content["toolCall"]["value"] == {"name": "weather__get_weather", "arguments": {"city": "Paris"}}
    assert final.usage.input_tokens > 100 and final.usage.output_tokens > 10


def test_a_question_no_tool_serves_is_answered_in_text(local):
    reply = local.complete(SYSTEM, [Message.user("What is the capital of France?")], [WEATHER])
    assert reply.message.tool_requests() == [] and "Paris" in reply.message.text()


def test_after_its_round_of_tools_the_model_answers_whatever_the_bias(local):
    call = conv.tool_request("call_1", "weather__get_weather", {"city": "Paris"})
    history = PARIS + answered(call, "Sunny, 21 degrees Celsius in Paris")
    local.tool_call_bias = 1000.0  # would force a call wherever one is allowed
    try:
        assert local.complete(SYSTEM, PARIS, [WEATHER]).message.tool_requests()
        reply = local.complete(SYSTEM, history, [WEATHER])
    finally:
        local.tool_call_bias = TOOL_CALL_BIAS
    assert reply.message.tool_requests() == [] and reply.message.text().strip()
    assert not reply.message.text().startswith("<")


def test_an_answer_cut_by_the_output_limit_is_kept_with_a_warning_and_a_cut_call_is_not_run():
    provider = build(max_tokens=20)  # a call needs about 30
    try:
        cut_call = provider.complete(SYSTEM, PARIS, [WEATHER])
        cut_text = provider.complete(SYSTEM, [Message.user("Tell me about the sea")], [WEATHER])
        whole = provider.complete(SYSTEM, [Message.user("What is 2+2?")], [WEATHER])
    finally:
        provider.close()
    [call] = cut_call.message.content
    assert call["type"] == "toolRequest" and call["toolCall"]["status"] == "error"
    assert "cut off at the output limit" in call["toolCall"]["error"] and "not run" in call["toolCall"]["error"]
    assert cut_text.message.text().strip() and not cut_text.message.tool_requests()
    for reply in (cut_call, cut_text):
        assert (reply.stop_reason, reply.warnings) == (MAX_TOKENS, [output_limit_warning(20)])
        assert reply.usage.output_tokens == 20
    assert (whole.stop_reason, whole.warnings) == (END_TURN, []) and "4" in whole.message.text()


def test_a_call_that_ends_reports_a_tool_use(local):
    reply = local.complete(SYSTEM, PARIS, [WEATHER])
    assert reply.stop_reason == TOOL_USE and reply.warnings == [] and reply.message.tool_requests()


def test_llama_cpp_parses_the_grammars_and_a_schema_it_would_refuse_takes_any_object(local):
    loaded = local.loaded()
    tools = [ToolSpec(f"developer__{t.name}", t.description or "", t.input_schema)
             for t in asyncio.run(developer.server.list_tools())]
    assert loaded.parses(call_grammar(tools, loaded.parses))
    assert not loaded.parses("root ::= undefined-rule")  # refused, and the process lives on
    # llama-cpp's converter writes this pattern as the literal "\d\d\d\d", which llama.cpp refuses
    year = ToolSpec("calendar__holidays", "List the holidays of a year.",
                    {"type": "object", "properties": {"year": {"type": "string", "pattern": "^\\d{4}$"}},
                     "required": ["year"]})
    grammar = call_grammar([year], loaded.parses)
    assert "call-0-arguments ::= object" in grammar.splitlines() and loaded.parses(grammar)
    reply = local.complete(SYSTEM, [Message.user("Which holidays are there in 2025?")], [year])
    assert reply.message.content  # generated under that grammar, and the process lives on


def test_the_issues_prompt_now_gets_a_shell_call_not_forty_repeated_lines(local):
    tools = [ToolSpec(f"developer__{t.name}", t.description or "", t.input_schema)
             for t in asyncio.run(developer.server.list_tools())]
    system = f"{SYSTEM}\n\n# Extensions\n\n## developer\n{developer.INSTRUCTIONS}"
    [call] = local.complete(system, [Message.user("list the files here")], tools).message.content
    assert call["type"] == "toolRequest" and call["toolCall"]["status"] == "success"
    assert call["toolCall"]["value"]["name"] == "developer__shell"


def test_the_default_sampling_ends_a_long_answer_before_the_limit_without_repeating_itself(local):
    reply = local.complete(SYSTEM, [Message.user("Tell me about the sea")], [])
    lines = [line.strip() for line in reply.message.text().splitlines() if line.strip()]
    assert 50 < reply.usage.output_tokens < local.sampling["max_tokens"]
    assert max(lines.count(line) for line in lines) == 1
