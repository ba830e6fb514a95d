"""The LangGraph side of bench/peers.py: a ReAct agent (LangGraph's prebuilt) with one tool, on the provider stub.

Loaded by ``langgraph dev`` from the peer's own venv (bench/.peers/langgraph);
goose-api never imports it. ``BENCH_PROVIDER_URL`` is the stub's address.
"""

import os

from langchain_openai import ChatOpenAI
from langgraph.prebuilt import create_react_agent


def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


model = ChatOpenAI(model="gpt-4o", base_url=os.environ["BENCH_PROVIDER_URL"] + "/v1", api_key="bench-key",
                   max_retries=0, timeout=600)
graph = create_react_agent(model, [echo])
