"""How the embedded backend should lay out its llama-servers: speed in all, and exact answers.

    python benchmarks/embedded_slots.py [--layouts 2x1x1,1x4x2,1x1x2] [--requests 16]
                                        [--max-tokens 128] [--model smollm2]

A layout is SERVERSxSLOTSxTHREADS: that many llama-server processes, each with that many slots
(`--parallel`) and threads. For each layout it starts the embedded backend so, warms it up
with one request, then sends `requests` chat requests (the bundled python prompts, so answers
are as long as in `make bench`) with servers x slots of them in flight, each request with
temperature 0.2 and seed 1, and prints: the wall-clock, the completion tokens, the aggregate
tokens per second (all tokens over the wall-clock: what a benchmark run gets), the median
per-request decode rate as llama-server timed it, and how many answers equal those of the
first layout (a layout whose slots are all single decodes each answer alone, with the prompt
cache off, as the plugin's reproducible mode does). It measures; it asserts nothing. The
machine's load changes the speeds, not the answers: run it when nothing else runs, or say
what else ran.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pytest_llmbench.backends.base import LoadSettings
from pytest_llmbench.backends.embedded import EmbeddedBackend
from pytest_llmbench.exchange import ChatRequest, Completion

ROOT = Path(__file__).resolve().parent.parent


def prompts(count: int) -> list[str]:
    found: list[str] = []
    for path in sorted((ROOT / "tasks" / "python").glob("*.yaml")):
        for task in yaml.safe_load(path.read_text())["tasks"]:
            found.append(str(task["prompt"]))
    return found[:count]


def run(
    model: str, layout: tuple[int, int, int], texts: list[str], max_tokens: int
) -> tuple[str, list[str]]:
    servers, slots, threads = layout
    backend = EmbeddedBackend(timeout_s=600, servers=servers, slots=slots, threads=threads)
    backend.load(model, LoadSettings())
    exact = slots == 1  # each answer decoded alone: asked for without the prompt cache

    def ask(text: str) -> Completion:
        return backend.chat(
            ChatRequest(
                model=model,
                messages=[{"role": "user", "content": text}],
                max_tokens=max_tokens,
                temperature=0.2,
                seed=1,
                exact=exact,
            )
        )

    try:
        ask("Say hi.")  # warm-up: first-request costs are not what we compare
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=servers * slots) as pool:
            done = list(pool.map(ask, texts))
        wall = time.monotonic() - started
    finally:
        backend.close()
    tokens = sum(c.usage.completion_tokens or 0 for c in done)
    rates = [c.decode_tok_s for c in done if c.decode_tok_s]
    median = statistics.median(rates) if rates else float("nan")
    name = "x".join(map(str, layout))
    line = f"{name:>8}  {wall:>7.1f}  {tokens:>6}  {tokens / wall:>10.1f}  {median:>16.1f}"
    return line, [c.content for c in done]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layouts", default="2x1x1,1x4x2,1x1x2")
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--model", default="smollm2")
    args = parser.parse_args()
    texts = prompts(args.requests)
    cpus = len(os.sched_getaffinity(0))
    print(
        f"model {args.model}, {len(texts)} requests of up to {args.max_tokens} tokens, "
        f"{cpus} usable CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    print("  layout  wall(s)  tokens  agg tok/s  median req tok/s  answers as the first")
    first: list[str] | None = None
    for word in args.layouts.split(","):
        servers, slots, threads = (int(part) for part in word.split("x"))
        line, answers = run(args.model, (servers, slots, threads), texts, args.max_tokens)
        first = first or answers
        same = sum(a == b for a, b in zip(first, answers, strict=True))
        print(f"{line}  {same:>4} of {len(answers)}", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
