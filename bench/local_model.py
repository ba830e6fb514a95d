"""What the embedded model does with its defaults: tool calls and text answers (SmolLM2-135M by default).

Quality, not speed, so the machine's load does not change the numbers: decoding
is greedy, and a run gives the same answers again. Two measurements:

- tool calls: for prompts that need one of the offered tools and prompts that
  need none, whether ``LocalProvider`` answers with a tool call (which one, with
  what arguments) at several first-token biases, and whether its answer after
  the tool's result (a fixed text; nothing is run) uses that result;
- text answers (no tools): output tokens, answers cut by the output limit and
  the most times one line repeats, with llama-cpp's own sampling (what the
  provider used before) and with repeat penalties 1.0, 1.1 and 1.2;
- speed (this one depends on the load): tokens per second of the same long
  answer with tools offered (a first-token decision, then no grammar) and
  with none, as a ratio of medians from the same process, runs interleaved.

Run: ``python -m bench.local_model [--model PATH] [--biases 0,3,4.5,6]``; prints markdown tables.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections import Counter
from pathlib import Path
from types import MappingProxyType

from extensions.developer import server as developer
from goose_api import conversation as conv
from goose_api.conversation import Message
from goose_api.providers.base import ToolSpec
from goose_api.providers.local import DEFAULT_MODEL_FILE, LocalProvider
from goose_api.settings import Settings

SYSTEM = ("You are goose, a general-purpose AI agent. You help the user by answering and, when tools are "
          "available, by using them to act on their behalf.\n\nThe working directory is /home/me/project on Linux.")
WEATHER = [ToolSpec("weather__get_weather", "Get the current weather in a city.",
                    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})]
DEVELOPER = [ToolSpec(f"developer__{t.name}", t.description or "", t.input_schema)
             for t in asyncio.run(developer.server.list_tools())]
RESULTS = {"weather__get_weather": ("Sunny, 21 degrees Celsius", ("sunny", "21")),
           "developer__shell": ("main.py\nnotes.txt\nREADME.md", ("main.py", "notes.txt", "readme")),
           "developer__text_editor": ("Buy milk.", ("milk",))}
NEEDS_TOOL = [("weather", p) for p in ("What is the weather in Paris?", "What's the weather like in Tokyo?",
                                       "Is it raining in London?", "How warm is it in Rome today?")] + \
             [("developer", p) for p in ("list the files here", "Run the shell command ls",
                                         "Which files are in this directory?", "Show me the file notes.txt")]
NEEDS_NONE = ["What is the capital of France?", "hi", "Tell me a joke", "What is 2+2?",
              "Write a haiku about the sea", "Who wrote Hamlet?"]
TEXT_PROMPTS = ["list the files here", "Tell me about the sea", "Explain what a CPU does", "Write a poem about cats",
                "hi", "What is the capital of France?"]
SAMPLINGS = {"llama-cpp defaults (before)": {"temperature": 0.2, "repeat_penalty": 1.0},
             "greedy, repeat penalty 1.0": {"temperature": 0.0, "repeat_penalty": 1.0},
             "greedy, repeat penalty 1.1": {"temperature": 0.0, "repeat_penalty": 1.1},
             "greedy, repeat penalty 1.2": {"temperature": 0.0, "repeat_penalty": 1.2}}


def tool_turn(provider: LocalProvider, tools: list[ToolSpec], prompt: str) -> dict:
    """The first reply to ``prompt`` and, after a tool call, the answer to its (fixed) result.

    The system prompt is the agent's, with the developer extension's instructions when its tools are offered.
    """
    system = SYSTEM + (f"\n\n# Extensions\n\n## developer\n{developer.INSTRUCTIONS}" if tools == DEVELOPER else "")
    history = [Message.user(prompt)]
    reply = provider.complete(system, history, tools).message
    calls = [r for r in reply.tool_requests() if conv.tool_call_parsed(r)]
    if not calls:
        return {"call": None, "text": reply.text()[:60]}
    name, arguments = conv.tool_call_name(calls[0]), conv.tool_call_arguments(calls[0])
    result, evidence = RESULTS[name]
    history += [reply, Message("user", [conv.tool_response(conv.call_id(c), [conv.text(result)]) for c in calls])]
    answer = provider.complete(system, history, tools).message.text()
    return {"call": f"{name.split('__')[1]} {json.dumps(arguments)}", "answer": answer[:80],
            "uses_result": any(word in answer.lower() for word in evidence)}


def tool_calls(provider: LocalProvider, biases: list[float]) -> None:
    print("\n## Tool calls (rows: prompts; columns: first-token bias)\n")
    print("| prompt | " + " | ".join(f"bias {b:g}" for b in biases) + " |")
    print("|---" * (len(biases) + 1) + "|")
    totals = {b: Counter() for b in biases}
    for kind, prompt in NEEDS_TOOL + [("none", p) for p in NEEDS_NONE]:
        cells = []
        for bias in biases:
            provider.tool_call_bias = bias
            tools = WEATHER if kind == "weather" else DEVELOPER
            turn = tool_turn(provider, tools, prompt)
            if turn["call"] is None:
                cells.append(f"answers: {turn['text']!r}")
            else:
                used = "uses the result" if turn["uses_result"] else "ignores the result"
                cells.append(f"calls {turn['call']}; {used}")
            totals[bias][(kind != "none", turn["call"] is not None, turn.get("uses_result", False))] += 1
        print(f"| {prompt} ({kind} tools) | " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    print("\n| bias | needs a tool: calls one | ... and answers from the result | needs none: answers directly |")
    print("|---|---|---|---|")
    for bias in biases:
        t = totals[bias]
        calls = t[(True, True, True)] + t[(True, True, False)]
        print(f"| {bias:g} | {calls}/{len(NEEDS_TOOL)} | {t[(True, True, True)]}/{len(NEEDS_TOOL)} | "
              f"{t[(False, False, False)]}/{len(NEEDS_NONE)} |")


def text_answers(provider: LocalProvider) -> None:
    print(f"\n## Text answers (no tools, max_tokens {provider.sampling['max_tokens']})\n")
    print("| sampling | output tokens (per prompt) | cut by the limit | most repeats of one line |")
    print("|---|---|---|---|")
    defaults = dict(provider.sampling)
    for label, options in SAMPLINGS.items():
        provider.sampling.update(options)
        tokens, cut, repeats = [], 0, 0
        for prompt in TEXT_PROMPTS:
            reply = provider.complete(SYSTEM, [Message.user(prompt)], [])
            tokens.append(reply.usage.output_tokens)
            cut += reply.usage.output_tokens >= provider.sampling["max_tokens"]
            lines = Counter(line.strip() for line in reply.message.text().splitlines() if line.strip())
            repeats = max(repeats, max(lines.values(), default=0))
        print(f"| {label} | {', '.join(map(str, tokens))} | {cut}/{len(TEXT_PROMPTS)} | {repeats} |")
    provider.sampling.update(defaults)


def speed(settings: Settings, runs: int = 6) -> None:
    """Runs alternate between two providers (two loaded models), so each keeps its evaluated prompt
    (as a session's turns do) and both see the same load."""
    prompt = [Message.user("Write a long story about a robot who learns to paint.")]
    cases = {"no tools": (LocalProvider(settings), []), "tools offered": (LocalProvider(settings), WEATHER)}
    rates: dict[str, list[float]] = {label: [] for label in cases}
    try:
        for n in range(runs + 1):  # the first run evaluates the prompt
            for label, (provider, tools) in cases.items():
                started = time.perf_counter()
                reply = provider.complete(SYSTEM, prompt, tools)
                assert not reply.message.tool_requests(), "the speed prompt must get a text answer"
                if n:
                    rates[label].append(reply.usage.output_tokens / (time.perf_counter() - started))
    finally:
        for provider, _ in cases.values():
            provider.close()
    median = {label: statistics.median(values) for label, values in rates.items()}
    print("\n## Speed of a text answer\n")
    print(f"| no tools | tools offered | ratio |\n|---|---|---|\n| {median['no tools']:.1f} tok/s | "
          f"{median['tools offered']:.1f} tok/s | {median['tools offered'] / median['no tools']:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_FILE)
    parser.add_argument("--biases", default="0,3,4.5,6")
    parser.add_argument("--only", choices=("tools", "text", "speed"))
    args = parser.parse_args()
    settings = Settings(provider="local", local_model_path=str(args.model), env=MappingProxyType({}))
    provider = LocalProvider(settings)
    started = time.monotonic()
    try:
        if args.only in (None, "tools"):
            tool_calls(provider, [float(b) for b in args.biases.split(",")])
        if args.only in (None, "text"):
            text_answers(provider)
        if args.only in (None, "speed"):
            speed(settings)
    finally:
        provider.close()
    print(f"\n{args.model.name}, {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
