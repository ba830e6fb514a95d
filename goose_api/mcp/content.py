"""MCP tool results in goose's JSON shape.

A goose ``toolResult`` value is a list of content items of three kinds only:
``text``, ``image`` and ``resource``. Other MCP kinds (audio, resource links,
and whatever later revisions add) become readable text items so the model still
learns what the tool returned; audience/priority annotations are kept.
"""

from __future__ import annotations

import json
from typing import Any

import mcp_types

from goose_api import conversation as conv

KEPT_ANNOTATIONS = ("audience", "priority")


def to_goose_content(result: mcp_types.CallToolResult) -> list[dict[str, Any]]:
    """The result's content blocks as goose content dicts (structured content as JSON text if alone)."""
    items = [_item(block) for block in result.content]
    if not items and result.structured_content is not None:
        items.append(conv.text(json.dumps(result.structured_content, ensure_ascii=False)))
    return items


def error_text(result: mcp_types.CallToolResult) -> str:
    """The readable message of an ``isError`` result."""
    texts = [conv.text_of(item) for item in to_goose_content(result) if conv.is_text(item)]
    return "\n".join(texts) or "The tool reported an error without a message."


def _item(block: Any) -> dict[str, Any]:
    if isinstance(block, mcp_types.TextContent):
        item = conv.text(block.text)
    elif isinstance(block, mcp_types.ImageContent):
        item = conv.image(block.data, block.mime_type)
    elif isinstance(block, mcp_types.EmbeddedResource):
        item = conv.resource(_resource(block.resource))
    elif isinstance(block, mcp_types.AudioContent):
        item = conv.text(f"[audio content ({block.mime_type}, {len(block.data)} base64 characters) "
                         "was returned but cannot be shown here]")
    elif isinstance(block, mcp_types.ResourceLink):
        item = conv.text(_link_text(block))
    else:
        dumped = block.model_dump(mode="json", by_alias=True, exclude_none=True)
        item = conv.text(f"[{dumped.get('type', 'unknown')} content] {json.dumps(dumped)[:2000]}")
    annotations = getattr(block, "annotations", None)
    if annotations is not None:
        kept = annotations.model_dump(mode="json", by_alias=True, exclude_none=True, include=set(KEPT_ANNOTATIONS))
        if kept:
            item["annotations"] = kept
    return item


def _resource(contents: mcp_types.TextResourceContents | mcp_types.BlobResourceContents) -> dict[str, Any]:
    out: dict[str, Any] = {"uri": contents.uri}
    if contents.mime_type:
        out["mimeType"] = contents.mime_type
    if isinstance(contents, mcp_types.TextResourceContents):
        out["text"] = contents.text
    else:
        out["blob"] = contents.blob
    return out


def _link_text(link: mcp_types.ResourceLink) -> str:
    parts = [f"Resource link: {link.name} <{link.uri}>"]
    if link.mime_type:
        parts.append(f"({link.mime_type})")
    if link.description:
        parts.append(f"- {link.description}")
    return " ".join(parts)
