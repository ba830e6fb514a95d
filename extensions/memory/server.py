"""The memory extension: categorised, tagged notes kept across sessions, as an MCP server.

Global memories are read into the server's instructions at start, as goose
does, so the model sees them without asking; local ones belong to a project
(the session's working directory) and are retrieved on demand.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from typing import Iterator

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations

from extensions.memory.store import MemoryRequestError, MemoryStore
from extensions.request_meta import data_dir, working_dir

INSTRUCTIONS = """\
The memory extension stores and retrieves categorised information, with optional tags, across sessions.

Storage: global memories (is_global true) are the user's and apply everywhere; local memories
(is_global false) belong to the current project and are kept in its .goose/memory directory.

Save when the user shares preferences, project configuration, workflow habits or recurring
commands, and confirm with the user before saving. Suggest a category and tags, and say whether
you save locally or globally. Use category "*" with retrieve_memories or remove_memory_category
to reach every category.
"""
READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
ADDITIVE = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
DESTRUCTIVE = ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=False)


def build_server(store: MemoryStore | None = None) -> MCPServer:
    store = store or MemoryStore(data_dir() / "memory")
    server = MCPServer("memory", instructions=_instructions(store))

    @server.tool(structured_output=False, annotations=ADDITIVE)
    def remember_memory(category: str, data: str, is_global: bool, ctx: Context,
                        tags: list[str] | None = None) -> str:
        """Store a memory (data) in a category, with optional tags; global or local to the project."""
        with _errors():
            store.remember(store.directory(is_global, working_dir(ctx)), category, data, tags or [])
        return f"Stored memory in category: {category} ({_scope(is_global)})"

    @server.tool(structured_output=False, annotations=READ_ONLY)
    def retrieve_memories(category: str, is_global: bool, ctx: Context) -> str:
        """Retrieve the memories of a category ("*" for all), global or local to the project."""
        with _errors():
            found = store.retrieve(store.directory(is_global, working_dir(ctx)), category)
        if not found:
            return f"No {_scope(is_global)} memories found in category: {category}"
        return f"Retrieved {_scope(is_global)} memories:\n" + json.dumps(found, indent=2, ensure_ascii=False)

    @server.tool(structured_output=False, annotations=DESTRUCTIVE)
    def remove_memory_category(category: str, is_global: bool, ctx: Context) -> str:
        """Remove every memory in a category ("*" removes all categories), global or local."""
        with _errors():
            count = store.remove_category(store.directory(is_global, working_dir(ctx)), category)
        if category == "*":
            return f"Cleared all {_scope(is_global)} memory categories ({count})"
        return f"Cleared memories in category: {category}" if count else f"There is no category {category}"

    @server.tool(structured_output=False, annotations=DESTRUCTIVE)
    def remove_specific_memory(category: str, memory_content: str, is_global: bool, ctx: Context) -> str:
        """Remove the memories of a category whose text contains memory_content."""
        with _errors():
            count = store.remove_entry(store.directory(is_global, working_dir(ctx)), category, memory_content)
        if not count:
            raise ToolError(f"No memory in category {category} contains {memory_content!r}")
        return f"Removed {count} memory entr{'y' if count == 1 else 'ies'} from category: {category}"

    return server


def _instructions(store: MemoryStore) -> str:
    memories = store.retrieve(store.global_dir, "*")
    if not memories:
        return INSTRUCTIONS
    lines = [INSTRUCTIONS, "The user's saved global memories (keep them in mind; bring them up only "
                           "when relevant):"]
    for category, entries in memories.items():
        lines.append(f"\nCategory: {category}")
        lines.extend(f"- {entry['data']}" for entry in entries)
    return "\n".join(lines)


def _scope(is_global: bool) -> str:
    return "global" if is_global else "local"


@contextmanager
def _errors() -> Iterator[None]:
    """Turn the store's request errors and file errors into tool errors the model reads."""
    try:
        yield
    except MemoryRequestError as exc:
        raise ToolError(str(exc)) from None
    except OSError as exc:
        raise ToolError(f"The memory files could not be used: {exc.strerror or exc}") from None
