"""Start-up and footprint: time to /health and idle memory against a bare Flask app; local tokens/s.

Start-up: gunicorn is launched (same ``gunicorn.conf.py``) for goose-api and
for ``bare_app.py`` in turn, and timed until ``GET /health`` answers 200.
Idle memory is the PSS of gunicorn's master and worker once healthy; the
extension servers goose-api starts on first use (the developer extension) are
counted separately, after one ``GET /extensions/list``.

Local provider: ``LocalProvider.complete`` against ``llama_cpp.Llama.create_chat_completion``
called directly on the same GGUF with the same messages and the provider's sampling
options (greedy) so both produce the same tokens; tokens per second = completion tokens / wall.
Goal (issue 7): ≥ 0.9 of the direct call's tokens per second.

Run: ``python -m bench.startup [--runs N] [--model PATH]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from bench import report
from bench.servers import base_env, gunicorn, memory_mib, scratch
from goose_api.conversation import Message
from goose_api.providers.local import DEFAULT_MODEL_FILE, LocalProvider
from goose_api.providers.local_format import to_chat
from goose_api.settings import Settings

TOKENS_GOAL = 0.9
MAX_TOKENS = 128
SYSTEM = "You are a helpful assistant."
PROMPT = "Write a long story about a robot who learns to paint. Use many details."


def startup(work: Path, runs: int) -> dict:
    samples: dict[str, list[float]] = {"goose_api": [], "bare_flask": []}
    memory: dict[str, list[dict]] = {"goose_api": [], "bare_flask": []}
    extensions: list[dict] = []
    for n in range(runs):
        for name, app in (("goose_api", "app:app"), ("bare_flask", "bench.bare_app:app")):
            with gunicorn(app, base_env(work / f"{name}-{n}"), work) as server:
                samples[name].append(server.startup_s)
                time.sleep(0.5)  # let the worker settle (imports finished, first request served)
                memory[name].append(memory_mib(server.pids()))
                if name == "goose_api":
                    server.get("/extensions/list").raise_for_status()
                    extensions.append(memory_mib(server.extension_pids()))
    out = {name: {"startup_s": report.stats(samples[name]),
                  "idle_pss_mib": report.stats(m["pss_mib"] for m in memory[name]),
                  "idle_rss_mib": report.stats(m["rss_mib"] for m in memory[name])} for name in samples}
    out["goose_api"]["extension_pss_mib"] = report.stats(m["pss_mib"] for m in extensions)
    for name, entry in out.items():
        print(f"startup: {name}: {entry['startup_s']['median']:.2f} s to /health, "
              f"idle PSS {entry['idle_pss_mib']['median']:.1f} MiB", flush=True)
    return out


def tokens_per_second(model: Path, runs: int) -> dict:
    import llama_cpp

    settings = Settings(local_model_path=str(model), temperature=0.0, max_tokens=MAX_TOKENS, env={})
    provider = LocalProvider(settings)
    history = [Message.user(PROMPT)]
    direct = llama_cpp.Llama(model_path=str(model), n_ctx=provider.n_ctx, verbose=False)
    messages = to_chat(SYSTEM, history, [])
    ours: list[float] = []
    theirs: list[float] = []
    tokens: dict[str, int] = {}
    try:
        for n in range(runs + 1):  # the first round warms both up (and loads the provider's model)
            started = time.perf_counter()
            body = direct.create_chat_completion(messages=messages, **provider.sampling)
            direct_s = time.perf_counter() - started
            started = time.perf_counter()
            reply = provider.complete(SYSTEM, history, [])
            ours_s = time.perf_counter() - started
            tokens = {"direct": body["usage"]["completion_tokens"], "provider": reply.usage.output_tokens}
            if n:
                theirs.append(tokens["direct"] / direct_s)
                ours.append(tokens["provider"] / ours_s)
    finally:
        provider.close()
        direct.close()
    ratio = statistics.median(ours) / statistics.median(theirs)
    print(f"startup: local provider {statistics.median(ours):.1f} tokens/s, direct {statistics.median(theirs):.1f} "
          f"tokens/s, ratio {ratio:.2f}", flush=True)
    return {"provider_tokens_per_s": report.stats(ours), "direct_tokens_per_s": report.stats(theirs),
            "completion_tokens": tokens, "ratio": ratio}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_FILE, help="GGUF file (default: make model's)")
    args = parser.parse_args()
    started = time.monotonic()
    notes = []
    with scratch("startup") as work:
        results = {"startup": startup(work, args.runs)}
    if args.model.is_file():
        results["local_tokens"] = tokens_per_second(args.model, args.runs)
    else:
        notes.append(f"no model at {args.model}: run `make model` (local tokens/s skipped)")
    ours, bare = results["startup"]["goose_api"], results["startup"]["bare_flask"]
    rows = [
        report.row("start-up: launch to /health answering", "report (no goal)",
                   f"{bare['startup_s']['median']:.2f} s", f"{ours['startup_s']['median']:.2f} s",
                   ours["startup_s"]["median"] / bare["startup_s"]["median"], None),
        report.row("idle memory (PSS, gunicorn master + 1 worker)", "report (no goal)",
                   f"{bare['idle_pss_mib']['median']:.1f} MiB",
                   f"{ours['idle_pss_mib']['median']:.1f} MiB (+ {ours['extension_pss_mib']['median']:.1f} MiB "
                   "developer extension)", ours["idle_pss_mib"]["median"] / bare["idle_pss_mib"]["median"], None),
    ]
    if "local_tokens" in results:
        local = results["local_tokens"]
        rows.append(report.row("local provider tokens/s (SmolLM2-135M, greedy)", f"≥ {TOKENS_GOAL}× direct",
                               f"{local['direct_tokens_per_s']['median']:.1f} tok/s (llama-cpp direct)",
                               f"{local['provider_tokens_per_s']['median']:.1f} tok/s", local["ratio"],
                               local["ratio"] >= TOKENS_GOAL))
    report.write("startup", started=started, rows=rows, results=results, notes=notes,
                 parameters={"runs": args.runs, "workers": 1, "threads": 16, "model": args.model.name,
                             "max_tokens": MAX_TOKENS, "temperature": 0.0, "prompt": PROMPT})


if __name__ == "__main__":
    main()
