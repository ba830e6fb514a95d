"""The embedded model's chat format: tools offered in the prompt, calls and results in its turns, its replies parsed."""

from __future__ import annotations

import itertools
import json

from goose_api import conversation as conv
from goose_api.conversation import Message
from goose_api.providers import local_format as lf
from goose_api.providers.base import ToolSpec

WEATHER = ToolSpec("weather__get_weather", "Get the current weather in a city.\n",
                   {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})


def ids():
    counter = itertools.count(1)
    return lambda: f"call_{next(counter)}"


def test_tools_join_the_system_prompt_as_json_with_the_call_format():
    chat = lf.to_chat("You are goose.", [Message.user("Weather in Paris?")], [WEATHER])
    system = chat[0]["content"]
    assert chat[0]["role"] == "system" and system.startswith("You are goose.\n\n# Tools")
    listed = system.split("<tools>\n", 1)[1].split("\n</tools>", 1)[0]
    assert json.loads(listed) == {"name": "weather__get_weather", "description": "Get the current weather in a city.",
                                  "parameters": WEATHER.input_schema}
    assert '<tool_call>[{"name": "tool_name", "arguments": {"argument_name": "value"}}]</tool_call>' in system
    assert chat[1:] == [{"role": "user", "content": "Weather in Paris?"}]


def test_without_tools_the_system_prompt_is_unchanged_and_an_empty_one_is_left_out():
    assert lf.to_chat("sys", [Message.user("hi")], []) == [{"role": "system", "content": "sys"},
                                                           {"role": "user", "content": "hi"}]
    assert lf.to_chat("", [Message.user("hi")], []) == [{"role": "user", "content": "hi"}]


def test_calls_and_results_are_shown_in_the_models_own_format():
    history = [
        Message.user("Weather in Paris and Rome?"),
        Message.assistant("Let me look.", conv.tool_request("c1", "weather__get_weather", {"city": "Paris"}),
                          conv.tool_request("c2", "weather__get_weather", {"city": "Rome"})),
        Message("user", [conv.tool_response("c1", [conv.text("Sunny"), conv.image("aGk=", "image/png")]),
                         conv.tool_error("c2", "no such city")]),
    ]
    assert lf.to_chat("", history, [])[1:] == [
        {"role": "assistant", "content": 'Let me look.\n<tool_call>[{"name": "weather__get_weather", "arguments": '
                                         '{"city": "Paris"}}, {"name": "weather__get_weather", "arguments": '
                                         '{"city": "Rome"}}]</tool_call>'},
        {"role": "user", "content": "<tool_response>\nSunny\n[an image]\n</tool_response>\n"
                                    "<tool_response>\nError: no such city\n</tool_response>"},
    ]


def test_an_unreadable_call_is_told_as_text_and_an_empty_assistant_turn_left_out():
    history = [Message.user("go"), Message.assistant(conv.tool_request_error("c1", "bad JSON")),
               Message("user", [conv.tool_error("c1", "Could not parse the tool call: bad JSON")]),
               Message.user("again", conv.image("aGk=", "image/png"))]
    assert lf.to_chat("", history, []) == [
        {"role": "user", "content": "go"},
        {"role": "user", "content": "Your tool call could not be run: Error: Could not parse the tool call: bad JSON"},
        {"role": "user", "content": "again\n[an image]"}]


def test_one_round_of_tool_calls_per_prompt():
    prompt = [Message.user("Weather in Paris?")]
    called = prompt + [Message.assistant(conv.tool_request("c1", "weather__get_weather", {"city": "Paris"})),
                       Message("user", [conv.tool_response("c1", [conv.text("Sunny")])])]
    assert lf.tool_rounds(prompt) == 0 and lf.may_call_tools(prompt, [WEATHER])
    assert lf.tool_rounds(called) == 1 and not lf.may_call_tools(called, [WEATHER])
    next_prompt = called + [Message.assistant("It is sunny."), Message.user("And in Rome?")]
    assert lf.tool_rounds(next_prompt) == 0 and lf.may_call_tools(next_prompt, [WEATHER])
    assert not lf.may_call_tools(prompt, [])


def test_a_call_block_becomes_tool_requests():
    text = '<tool_call>[\n{"name": "weather__get_weather", "arguments": {"city": "Paris"}}\n]</tool_call>'
    assert lf.parse_call(text, ids()) == [conv.tool_request("call_1", "weather__get_weather", {"city": "Paris"})]


def test_a_call_cut_off_is_an_error_naming_the_tool_and_never_a_call():
    cut = '<tool_call>[{"name": "developer__shell", "arguments": {"command": "ls -l /ho'
    [item] = lf.parse_call(cut, ids())
    assert item["toolCall"]["status"] == "error"
    assert item["toolCall"]["error"].startswith("The call to developer__shell is incomplete and was not run")
    for cut in ("<tool_call>[{", "<tool_"):
        [item] = lf.parse_call(cut, ids())
        assert item["toolCall"]["error"] == f"A tool call is incomplete and was not run: {cut}"


def test_a_block_that_is_not_a_list_of_calls_is_an_error():
    for body in ('{"name": "x", "arguments": {}}', "[]", '[{"name": "x"}]', '[{"name": 1, "arguments": {}}]'):
        [item] = lf.parse_call(f"<tool_call>{body}</tool_call>", ids())
        assert item["toolCall"]["status"] == "error" and "Not a list of tool calls" in item["toolCall"]["error"], body


def test_a_call_shown_to_the_model_reads_back_as_the_same_call():
    requests = [conv.tool_request("a", "developer__shell", {"command": "ls \"x\"\n"}),
                conv.tool_request("b", "memory__remember", {"text": "ünïcode", "tags": ["a"]})]
    parsed = lf.parse_call(lf.call_text(requests), ids())
    assert [p["toolCall"]["value"] for p in parsed] == [r["toolCall"]["value"] for r in requests]
