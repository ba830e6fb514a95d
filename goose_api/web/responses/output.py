"""A run's event log as the Responses API's output items and streaming events (pure: no I/O).

``OutputBuilder.feed`` takes the run's events in order (the log of
``runs/event_log.py``) and returns the streaming events they make, while it
keeps the response's ``output`` list. The same events always make the same
items, ids and events, so a stream can be replayed from the log to a client
that re-attaches (``starting_after``), in any worker.

- assistant text (``message`` events: streamed chunks, or a whole answer)
  becomes a ``message`` item with one ``output_text`` part;
- a tool call (``tool_request`` then ``tool_response``) becomes an
  ``mcp_call`` item: ``server_label`` is the extension, ``name`` its tool;
  the item is announced at the call's first sign of life (its answer, a
  notification), because a call that needs approval is no call yet;
- a call waiting for approval (``approval_required``) becomes an
  ``mcp_approval_request`` item and ends the response; the response that
  continues after the client's ``mcp_approval_response`` is seeded with the
  call (``continued``) and shows it as an ``mcp_call`` with its
  ``approval_request_id`` (a denied call shows nothing);
- ``done`` and ``error`` end the response.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from goose_api import conversation as conv
from goose_api.runs.event_log import Event

DONE, FAILED, APPROVAL = "done", "error", "approval"
DEFAULT_LABEL = "goose"


def split_tool_name(name: str | None) -> tuple[str, str]:
    """``developer__shell`` -> (``developer``, ``shell``): the extension is the MCP server's label."""
    label, sep, tool = (name or "").partition("__")
    return (label, tool) if sep and label and tool else (DEFAULT_LABEL, name or "unknown")


def approval_request_id(call_id: str) -> str:
    return f"mcpr_{call_id}"


def call_item_id(call_id: str) -> str:
    return f"mcp_{call_id}"


def approval_item(call_id: str, tool: str | None, arguments: dict[str, Any]) -> dict[str, Any]:
    label, name = split_tool_name(tool)
    return {"id": approval_request_id(call_id), "type": "mcp_approval_request", "server_label": label,
            "name": name, "arguments": json.dumps(arguments, ensure_ascii=False)}


class OutputBuilder:
    def __init__(self, key: str, continued: dict[str, dict[str, Any]] | None = None):
        self.key = key                            # makes the message ids of this response unique
        self.continued = continued or {}          # call id -> {tool, arguments, approve}: calls approved before
        self.output: list[dict[str, Any]] = []
        self.ended: str | None = None             # DONE, FAILED or APPROVAL once the response has its end
        self.final: dict[str, Any] | None = None  # the run's done or error data
        self.approvals: list[dict[str, Any]] = []  # the pending entries the response asks about
        self._message: int | None = None          # index of the message item being written
        self._waiting: dict[str, Any] | None = None  # a tool request not announced yet
        self._calls: dict[str, int] = {}          # call id -> index of its mcp_call item

    def feed(self, event: Event) -> list[dict[str, Any]]:
        """The streaming events (without sequence numbers) ``event`` makes; nothing once the response ended."""
        if self.ended is not None:
            return []
        handler = getattr(self, f"_on_{event.type}", None)
        return handler(event) if handler is not None else []

    # --- events of the run ---------------------------------------------------------

    def _on_message(self, event: Event) -> list[dict[str, Any]]:
        out = self._announce_waiting()
        if self._message is None:
            out += self._open_message(event.id)
        item = self.output[self._message]
        part = item["content"][0]
        part["text"] += event.data.get("text") or ""
        out.append({"type": "response.output_text.delta", "item_id": item["id"], "output_index": self._message,
                    "content_index": 0, "delta": event.data.get("text") or "", "logprobs": []})
        return out

    def _on_tool_request(self, event: Event) -> list[dict[str, Any]]:
        out = self._close_message() + self._announce_waiting()
        self._waiting = event.data
        return out

    def _on_notification(self, event: Event) -> list[dict[str, Any]]:
        return self._announce_waiting()

    def _on_approval_required(self, event: Event) -> list[dict[str, Any]]:
        entry = event.data
        out = self._close_message()
        if self._waiting is not None and conv.call_id(self._waiting) == entry["id"]:
            self._waiting = None
        else:
            out += self._announce_waiting()
        item = approval_item(entry["id"], entry.get("tool"), entry.get("arguments") or {})
        self.approvals.append(entry)
        self.ended = APPROVAL
        return out + self._added_and_done(item)

    def _on_tool_response(self, event: Event) -> list[dict[str, Any]]:
        call_id = conv.call_id(event.data)
        out = self._announce_waiting() if self._waiting is not None and conv.call_id(self._waiting) == call_id \
            else []
        if call_id not in self._calls:
            seeded = self.continued.get(call_id)
            if seeded is None or not seeded.get("approve"):
                return out  # denied after an approval request (or not a call of this response)
            out += self._start_call(call_id, seeded.get("tool"), seeded.get("arguments") or {},
                                    approval_request_id(call_id))
        index = self._calls[call_id]
        item = self.output[index]
        error = conv.tool_result_error(event.data)
        if error is None:
            item.update(status="completed", output=conv.tool_result_text(event.data))
        else:
            item.update(status="failed", error={"type": "mcp_tool_execution_error",
                                                "content": [{"type": "text", "text": error}]})
        kind = "response.mcp_call.completed" if error is None else "response.mcp_call.failed"
        return out + [{"type": kind, "item_id": item["id"], "output_index": index},
                      {"type": "response.output_item.done", "output_index": index, "item": copy.deepcopy(item)}]

    def _on_done(self, event: Event) -> list[dict[str, Any]]:
        self.ended, self.final = DONE, event.data
        return self._close_message() + self._announce_waiting()

    def _on_error(self, event: Event) -> list[dict[str, Any]]:
        self.ended, self.final = FAILED, event.data
        return self._close_message("incomplete")

    # --- items -------------------------------------------------------------------

    def _open_message(self, event_id: int) -> list[dict[str, Any]]:
        item = {"id": f"msg_{self.key}_{event_id}", "type": "message", "role": "assistant",
                "status": "in_progress", "content": []}
        self.output.append(item)
        self._message = len(self.output) - 1
        part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        added = [{"type": "response.output_item.added", "output_index": self._message, "item": copy.deepcopy(item)},
                 {"type": "response.content_part.added", "item_id": item["id"], "output_index": self._message,
                  "content_index": 0, "part": copy.deepcopy(part)}]
        item["content"].append(part)
        return added

    def _close_message(self, status: str = "completed") -> list[dict[str, Any]]:
        if self._message is None:
            return []
        index, self._message = self._message, None
        item = self.output[index]
        part = item["content"][0]
        item["status"] = status
        return [{"type": "response.output_text.done", "item_id": item["id"], "output_index": index,
                 "content_index": 0, "text": part["text"], "logprobs": []},
                {"type": "response.content_part.done", "item_id": item["id"], "output_index": index,
                 "content_index": 0, "part": copy.deepcopy(part)},
                {"type": "response.output_item.done", "output_index": index, "item": copy.deepcopy(item)}]

    def _announce_waiting(self) -> list[dict[str, Any]]:
        """The tool request seen last is a call under way: its ``mcp_call`` item starts."""
        request, self._waiting = self._waiting, None
        if request is None:
            return []
        name = conv.tool_call_name(request)
        return self._start_call(conv.call_id(request), name, conv.tool_call_arguments(request))

    def _start_call(self, call_id: str, tool: str | None, arguments: dict[str, Any],
                    approval: str | None = None) -> list[dict[str, Any]]:
        label, name = split_tool_name(tool)
        item: dict[str, Any] = {"id": call_item_id(call_id), "type": "mcp_call", "server_label": label,
                                "name": name, "arguments": json.dumps(arguments, ensure_ascii=False),
                                "status": "in_progress", "output": None, "error": None}
        if approval:
            item["approval_request_id"] = approval
        self.output.append(item)
        index = self._calls[call_id] = len(self.output) - 1
        return [{"type": "response.output_item.added", "output_index": index, "item": copy.deepcopy(item)},
                {"type": "response.mcp_call_arguments.done", "item_id": item["id"], "output_index": index,
                 "arguments": item["arguments"]},
                {"type": "response.mcp_call.in_progress", "item_id": item["id"], "output_index": index}]

    def _added_and_done(self, item: dict[str, Any]) -> list[dict[str, Any]]:
        self.output.append(item)
        index = len(self.output) - 1
        return [{"type": "response.output_item.added", "output_index": index, "item": copy.deepcopy(item)},
                {"type": "response.output_item.done", "output_index": index, "item": copy.deepcopy(item)}]


def usage_object(usage: dict[str, int] | None) -> dict[str, Any] | None:
    """goose's token counts as the Responses API's ``usage``."""
    if usage is None:
        return None
    return {"input_tokens": int(usage.get("input_tokens") or 0),
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": int(usage.get("output_tokens") or 0),
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": int(usage.get("total_tokens") or 0)}


def response_object(record: dict[str, Any], output: list[dict[str, Any]], status: str,
                    usage: dict[str, int] | None = None, error: dict[str, Any] | None = None,
                    completed_at: float | None = None) -> dict[str, Any]:
    """The Responses API's ``response`` object of a stored record."""
    return {"id": record["id"], "object": "response", "created_at": record["created_at"], "status": status,
            "background": record["background"], "completed_at": completed_at, "error": error,
            "incomplete_details": None, "instructions": record.get("instructions"), "max_output_tokens": None,
            "metadata": record.get("metadata") or {}, "model": record["model"], "output": copy.deepcopy(output),
            "parallel_tool_calls": False, "previous_response_id": record.get("previous_response_id"),
            "store": record["store"], "temperature": None, "text": {"format": {"type": "text"}},
            "tool_choice": "auto", "tools": [], "top_p": None, "truncation": "disabled",
            "usage": usage_object(usage), "conversation": {"id": record["session_id"]}}
