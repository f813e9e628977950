"""How many slots the embedded llama-server should have: aggregate decode speed at --parallel N.

    python benchmarks/embedded_slots.py [--slots 1,2,4] [--threads 1,2] [--requests 8]
                                        [--max-tokens 128] [--model smollm2]

For each (slots, threads) it starts the embedded backend, warms it up with one request, then
sends `requests` chat requests with `slots` of them in flight at a time (the bundled python
prompts, so answers are as long as in `make bench`) and prints: the wall-clock, the completion
tokens, the aggregate tokens per second (all tokens over the wall-clock: what a benchmark run
gets), and the median per-request decode rate as llama-server timed it (what one request
sees). It measures; it asserts nothing. The machine's load changes these figures: run it
when nothing else runs, or say what else ran.
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
    for path in sorted((ROOT / "pytest_llmbench" / "tasks" / "python").glob("*.yaml")):
        for task in yaml.safe_load(path.read_text())["tasks"]:
            found.append(str(task["prompt"]))
    return [found[i % len(found)] for i in range(count)]


def run(model: str, slots: int, threads: int, texts: list[str], max_tokens: int) -> str:
    backend = EmbeddedBackend(timeout_s=600, slots=slots, threads=threads)
    backend.load(model, LoadSettings())

    def ask(text: str) -> Completion:
        return backend.chat(
            ChatRequest(
                model=model,
                messages=[{"role": "user", "content": text}],
                max_tokens=max_tokens,
                temperature=0.2,
                seed=1,
            )
        )

    try:
        ask("Say hi.")  # warm-up: first-request costs are not what we compare
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=slots) as pool:
            done = list(pool.map(ask, texts))
        wall = time.monotonic() - started
    finally:
        backend.close()
    tokens = sum(c.usage.completion_tokens or 0 for c in done)
    rates = [c.decode_tok_s for c in done if c.decode_tok_s]
    median = statistics.median(rates) if rates else float("nan")
    return (
        f"{slots:>5}  {threads:>7}  {wall:>7.1f}  {tokens:>6}  {tokens / wall:>10.1f}  "
        f"{median:>15.1f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slots", default="1,2,4")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--requests", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--model", default="smollm2")
    args = parser.parse_args()
    texts = prompts(args.requests)
    cpus = len(os.sched_getaffinity(0))
    print(
        f"model {args.model}, {args.requests} requests of up to {args.max_tokens} tokens, "
        f"{cpus} usable CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    print("slots  threads  wall(s)  tokens  agg tok/s  median req tok/s")
    for slots in (int(s) for s in args.slots.split(",")):
        for threads in (int(t) for t in args.threads.split(",")):
            print(run(args.model, slots, threads, texts, args.max_tokens), flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
