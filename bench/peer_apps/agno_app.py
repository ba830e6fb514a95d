"""The Agno side of bench/peers.py: an AgentOS app with one agent (Agno's own ReAct loop) and one tool.

Served by uvicorn from the peer's own venv (bench/.peers/agno); goose-api never
imports it. ``BENCH_PROVIDER_URL`` is the stub's address, ``BENCH_DB`` the SQLite
file its sessions and runs are kept in (Agno's own durable store).
"""

import os

from agno.agent import Agent
from agno.db.sqlite import SqliteDb
from agno.models.openai import OpenAIChat
from agno.os import AgentOS


def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


agent = Agent(id="bench", name="bench",
              model=OpenAIChat(id="gpt-4o", base_url=os.environ["BENCH_PROVIDER_URL"] + "/v1", api_key="bench-key",
                               max_retries=0),
              tools=[echo], db=SqliteDb(db_file=os.environ["BENCH_DB"]), add_history_to_context=True,
              num_history_runs=10_000, telemetry=False)
app = AgentOS(agents=[agent], telemetry=False).get_app()
