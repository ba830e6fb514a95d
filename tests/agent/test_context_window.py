"""Context-window management: limits, estimates, truncate and summarize on long sessions."""

from __future__ import annotations

import pytest

from goose_api import conversation as conv
from goose_api.agent.context_window import ContextWindow, context_limit, history_tokens, message_tokens
from goose_api.conversation import Message
from goose_api.errors import ProviderError
from goose_api.providers.anthropic import AnthropicProvider
from goose_api.providers.base import ToolSpec
from goose_api.providers.openai import OpenAIProvider
from tests.fakes.anthropic import AnthropicFake
from tests.fakes.core import Fail, Reply
from tests.fakes.openai import OpenAIFake

SHELL = ToolSpec("developer__shell", "Run a shell command", {"type": "object", "properties": {
    "command": {"type": "string"}}})


def tool_session(rounds: int, output_chars: int = 2_000) -> list[Message]:
    """One user request followed by a long tool loop, the way agent sessions grow."""
    history = [Message.user("Refactor the payment module and run the tests.")]
    for n in range(rounds):
        history.append(Message.assistant(f"Step {n}.", conv.tool_request(f"call_{n}", "developer__shell",
                                                                         {"command": f"cat file_{n}.py"})))
        history.append(Message("user", [conv.tool_response(f"call_{n}", [conv.text(f"{n}:" + "x" * output_chars)])]))
    return history


def chat_session(turns: int) -> list[Message]:
    history = []
    for n in range(turns):
        history += [Message.user(f"question {n} " + "q" * 400), Message.assistant(f"answer {n} " + "a" * 400)]
    return history + [Message.user("And the last question?")]


def assert_valid_history(messages: list[Message]) -> None:
    """Starts with a user message; every request answered next; no result without its request."""
    assert messages and messages[0].role == "user"
    for index, message in enumerate(messages):
        asked = {r["id"] for r in message.tool_requests()}
        if asked:
            answered = {r["id"] for r in messages[index + 1].tool_responses()} if index + 1 < len(messages) else set()
            assert asked <= answered, f"message {index}: {asked - answered} unanswered"
        for response in message.tool_responses():
            previous = {r["id"] for r in messages[index - 1].tool_requests()} if index else set()
            assert response["id"] in previous, f"message {index}: orphan result {response['id']}"


@pytest.fixture
def openai():
    with OpenAIFake() as server:
        yield server
        server.assert_done()


def test_limits_table_and_override(openai):
    assert context_limit("gpt-4o") == 128_000 and context_limit("gpt-4o-mini") == 128_000
    assert context_limit("claude-sonnet-4-20250514") == 200_000
    assert context_limit("gemini-2.5-pro") == 1_000_000 and context_limit("gemini-2.0-flash") == 1_000_000
    assert context_limit("o3-mini") == 200_000 and context_limit("some-new-model") == 128_000
    assert context_limit("gpt-4o", openai.settings(context_limit=9_000)) == 9_000


def test_estimate_is_cached_and_follows_edits():
    message = Message.user("x" * 400)
    assert message_tokens(message) == message_tokens(message) == 104
    message.content.append(conv.image("aGk=" * 10_000, "image/png"))
    assert message_tokens(message) == 104 + 800  # images count as a picture, not as base64 text


def test_each_message_is_estimated_once_and_again_only_when_it_changes():
    """Sessions reach thousands of messages, re-estimated every turn: each keeps its estimate (its cost is
    measured in bench/, not here)."""
    history = chat_session(2_500)
    total = history_tokens(history)
    assert all("_token_estimate" in message.__dict__ for message in history)
    assert history_tokens(history) == total
    history[0].content.append(conv.text("y" * 400))
    assert history_tokens(history) == total + 100, "a message whose content changed is counted again"


def test_a_history_that_fits_is_left_alone(openai):
    history = chat_session(3)
    result = ContextWindow(openai.settings()).fit(OpenAIProvider(openai.settings()), "sys", history, [SHELL])
    assert result.messages is history and not result.changed and result.note is None


def test_truncate_a_long_tool_loop_keeps_pairs_and_restates_the_request(openai):
    settings = openai.settings(context_limit=20_000, context_strategy="truncate")
    window, provider = ContextWindow(settings), OpenAIProvider(settings)
    history = tool_session(100)
    result = window.fit(provider, "sys", history, [SHELL])
    assert result.changed and result.removed > 150 and "removed" in result.note
    assert_valid_history(result.messages)
    assert result.messages[0].text().endswith("The user's request was:\nRefactor the payment module and run the tests.")
    assert result.messages[-1] is history[-1]  # the newest steps stay as they were
    assert history_tokens(result.messages) < window.budget(provider)
    openai.add(Reply("continuing"))
    provider.complete("sys", result.messages, [SHELL])  # the fake rejects any broken pairing
    assert not window.fit(provider, "sys", result.messages, [SHELL]).changed


def test_truncate_keeps_the_latest_prompt_when_it_can(openai):
    settings = openai.settings(context_limit=4_000, max_tokens=500, context_strategy="truncate")
    history = chat_session(40)
    result = ContextWindow(settings).fit(OpenAIProvider(settings), "", history, [])
    assert result.changed and result.messages[-1] is history[-1]
    assert result.messages[0].text().startswith("Earlier messages were removed")
    assert "The user's request was" not in result.messages[0].text()
    assert_valid_history(result.messages)


def test_truncated_history_is_valid_for_anthropic_too():
    with AnthropicFake([Reply("ok")]) as fake:
        settings = fake.settings(context_limit=15_000, context_strategy="truncate")
        provider = AnthropicProvider(settings)
        result = ContextWindow(settings).fit(provider, "sys", tool_session(60), [SHELL])
        provider.complete("sys", result.messages, [SHELL])  # strict roles and tool_result pairing
        fake.assert_done()


def test_summarize_replaces_the_history_with_a_summary(openai):
    settings = openai.settings(context_limit=20_000)
    provider = OpenAIProvider(settings)
    history = tool_session(100)
    openai.add(Reply("The user wants the payment module refactored; files 0-99 were read.", usage=(3000, 40)),
               Reply("Next step."))
    result = ContextWindow(settings).fit(provider, "sys", history, [SHELL])
    assert result.changed and result.removed == len(history) and "summary" in result.note
    assert [m.role for m in result.messages] == ["user", "assistant", "user"]
    assert "files 0-99 were read" in result.messages[0].text()
    assert "continue calling tools" in result.messages[1].text()
    assert result.messages[2].text() == "Refactor the payment module and run the tests."
    assert result.usage.input_tokens == 3000
    request = openai.requests[0].body
    assert request["messages"][0]["content"].startswith("You summarize a conversation")
    assert "tool_request(developer__shell)" in request["messages"][1]["content"] and "tools" not in request
    provider.complete("sys", result.messages, [SHELL])


def test_summarize_shrinks_its_transcript_when_the_summary_call_is_too_long(openai):
    settings = openai.settings(context_limit=20_000)
    openai.add(Fail(400, code="context_length_exceeded"), Reply("short summary"))
    result = ContextWindow(settings).fit(OpenAIProvider(settings), "", tool_session(100), [])
    first, second = (len(r.body["messages"][1]["content"]) for r in openai.requests)
    assert second < first and result.messages[0].text().endswith("short summary")


def test_summarize_surfaces_other_provider_errors(openai):
    settings = openai.settings(context_limit=20_000, env={"OPENAI_API_KEY": "wrong"})
    with pytest.raises(ProviderError) as caught:
        ContextWindow(settings).fit(OpenAIProvider(settings), "", tool_session(100), [])
    assert caught.value.kind == ProviderError.AUTH


def test_compact_after_a_context_error_always_reduces(openai):
    settings = openai.settings(context_strategy="truncate")  # gpt-4o: 128k, so the estimate says it fits
    provider, window = OpenAIProvider(settings), ContextWindow(settings)
    history = tool_session(40)
    assert not window.fit(provider, "sys", history, [SHELL]).changed
    result = window.compact(provider, "sys", history, [SHELL])
    assert result.changed and history_tokens(result.messages) <= history_tokens(history) // 2
    assert_valid_history(result.messages)


def test_compact_reports_no_change_when_nothing_can_go(openai):
    settings = openai.settings(context_strategy="truncate")
    result = ContextWindow(settings).compact(OpenAIProvider(settings), "", [Message.user("y" * 10_000)], [])
    assert not result.changed
