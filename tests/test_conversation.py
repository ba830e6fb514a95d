"""The goose message model and its validation."""

import pytest

from goose_api import conversation as conv
from goose_api.conversation import Message, MessageFormatError, validate_message


def test_round_trip_keeps_goose_json():
    message = Message.assistant("hi", conv.tool_request("c1", "dev__shell", {"command": "ls"}))
    assert Message.from_json(message.to_json()) == message
    assert message.tool_requests()[0]["toolCall"]["value"]["name"] == "dev__shell"
    assert message.text() == "hi"


@pytest.mark.parametrize("bad", [
    {"role": "system", "created": 1, "content": []},
    {"role": "user", "created": 1.5, "content": []},
    {"role": "user", "created": True, "content": []},
    {"role": "user", "created": 1, "content": [{"type": "thinking", "thinking": "x"}]},
    {"role": "user", "created": 1, "content": [{"type": "text"}]},
    {"role": "assistant", "created": 1, "content": [conv.tool_response("c", [])]},
    {"role": "user", "created": 1, "content": [conv.tool_response("c", [{"type": "audio"}])]},
    {"role": "user", "created": 1, "content": [{"type": "toolResponse", "id": "c",
                                                "toolResult": {"status": "maybe"}}]},
])
def test_rejects_what_goose_cannot_read(bad):
    with pytest.raises(MessageFormatError):
        validate_message(bad)


def test_final_text_is_last_assistant_text():
    messages = [Message.user("q"), Message.assistant("first"), Message.user("again"), Message.assistant("last")]
    assert conv.final_text(messages) == "last"
