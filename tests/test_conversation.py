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


def test_accessors_read_tool_requests():
    request = conv.tool_request("c1", "developer__shell", {"command": "ls"})
    assert conv.is_tool_request(request) and not conv.is_tool_response(request) and conv.kind(request) == "toolRequest"
    assert conv.call_id(request) == "c1" and conv.tool_call_parsed(request)
    assert (conv.tool_call_name(request), conv.tool_call_arguments(request)) == ("developer__shell", {"command": "ls"})
    assert conv.tool_call_error(request) is None
    assert conv.tool_call_json(request) == {"status": "success", "value": {"name": "developer__shell",
                                                                           "arguments": {"command": "ls"}}}
    broken = conv.tool_request_error("c2", "arguments are not JSON")
    assert not conv.tool_call_parsed(broken) and conv.tool_call_name(broken) is None
    assert conv.tool_call_arguments(broken) == {} and conv.tool_call_error(broken) == "arguments are not JSON"


def test_accessors_read_tool_responses_and_text():
    image = {"type": "image", "data": "AA==", "mimeType": "image/png"}
    ok = conv.tool_response("c1", [conv.text("one"), image, conv.text("two")])
    assert conv.is_tool_response(ok) and conv.tool_result_ok(ok) and conv.tool_result_error(ok) is None
    assert conv.tool_result_text(ok) == "one\ntwo" and conv.tool_result_content(ok)[1] == image
    failed = conv.tool_error("c2", "no such tool")
    assert not conv.tool_result_ok(failed) and conv.tool_result_error(failed) == "no such tool"
    assert conv.tool_result_content(failed) == [] and conv.tool_result_text(failed) == ""
    assert conv.is_image(image) and conv.image_mime_type(image) == "image/png" and conv.text_of(image) == ""
    assert conv.is_text(conv.text("hi")) and conv.text_of(conv.text("hi")) == "hi"


def test_token_fields_are_goose_metadata_order():
    assert conv.TOKEN_FIELDS == ("total_tokens", "input_tokens", "output_tokens")
    assert conv.ACCUMULATED_FIELDS == ("accumulated_total_tokens", "accumulated_input_tokens",
                                       "accumulated_output_tokens")
    assert conv.accumulated_field("input_tokens") == "accumulated_input_tokens"
