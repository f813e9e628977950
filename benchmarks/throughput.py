"""How close a model's run comes to what its server allows: efficiency = ideal / measured.

    python benchmarks/throughput.py [--runs 3] [--tasks 64] [--slots 4] [--concurrency 4]

A loopback OpenAI-style server with `slots` parallel slots decodes at a fixed 200 tokens/s per
slot; every task's answer is 100 tokens (0.5 s), and a request beyond the slots waits for one.
The ideal wall-clock is tasks / slots x 0.5 s (64 tasks on 4 slots: 8 s). The server paces each
answer's tokens against the moment its slot was taken (token n leaves at n x 5 ms), so the time
spent writing chunks does not add up; the role, finish and usage chunks carry no token and go
out at once.

Two figures, each a median over `runs`:
- the server's floor: a plain client (standard-library HTTP, as many threads as
  `--concurrency`, no pytest, no openai package) asking for every answer; it shows how close to
  ideal the instrument itself is;
- the plugin's: the whole `pytest --models=m` process: start-up, collection, the sandbox
  self-test, generation and scoring of every case in the sandbox. The answer store is off, so
  every run asks the server.

This measures; it asserts nothing (the target is 1.1 x ideal, an efficiency of 0.91 or more).
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _timing import BIN, ROOT, load, spread, wall

sys.path.insert(0, str(ROOT / "tests"))

from fakes.chat_stream import Answer, Quirks, chunks
from fakes.http_fake import FakeHttpServer, Json, Response, Sse

TOKENS = 100
TOKEN_S = 1 / 200


def task_file(count: int) -> str:
    lines = ["suite: python", "tasks:"]
    for n in range(count):
        lines += [
            f"  - id: t{n}",
            f"    prompt: 'Write `def f{n}(a)` returning a + {n}. [{n}]'",
            f"    entry_point: f{n}",
            f"    reference: 'def f{n}(a): return a + {n}'",
            "    cases:",
            f"      - {{id: one, args: [1], expect: {n + 1}}}",
            f"      - {{id: two, args: [2], expect: {n + 2}}}",
        ]
    return "\n".join(lines) + "\n"


def answer_tokens(prompt: str) -> list[str]:
    """A right answer for task n, padded with a comment to exactly TOKENS tokens."""
    n = int(prompt.rsplit("[", 1)[1].rstrip("]"))
    code = ["```python\n", f"def f{n}(a):\n", f"    return a + {n}\n"]
    pad = [f"# {i}\n" for i in range(TOKENS - len(code) - 1)]
    return code + pad + ["```"]


class SlotServer(FakeHttpServer):
    """Serves `slots` requests at once, each decoding at 200 tokens/s; the rest queue."""

    def __init__(self, slots: int) -> None:
        super().__init__()
        self.slots = threading.BoundedSemaphore(slots)
        self.route("GET", "/v1/models", lambda body, query: Json(200, {"data": [{"id": "m"}]}))
        self.route("POST", "/v1/chat/completions", self._chat)

    def _chat(self, body: dict[str, Any], query: dict[str, str]) -> Response:
        prompt = str(body["messages"][-1]["content"])
        answer = Answer(content=answer_tokens(prompt))
        return Sse(self._paced(chunks(body, answer, Quirks())))

    def _paced(self, stream: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """Holds a slot while the answer streams; the n-th token leaves n x TOKEN_S after the
        slot was taken, chunks without a token at once."""
        with self.slots:
            taken = time.monotonic()
            sent = 0
            for chunk in stream:
                if _carries_token(chunk):
                    sent += 1
                    time.sleep(max(0.0, taken + sent * TOKEN_S - time.monotonic()))
                yield chunk


def _carries_token(chunk: dict[str, Any]) -> bool:
    choices = chunk.get("choices") or [{}]
    return bool(choices[0].get("delta", {}).get("content"))


def plain_client(url: str, tasks: int, threads: int) -> float:
    """Seconds a minimal client takes to get every task's whole answer, `threads` at a time."""
    host, port = url.removeprefix("http://").split(":")

    def ask(n: int) -> None:
        body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": f"[{n}]"}]}
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        try:
            conn.request("POST", "/v1/chat/completions", json.dumps(body),
                         {"Content-Type": "application/json"})  # fmt: skip
            response = conn.getresponse()
            data = response.read()
            if response.status != 200 or b"[DONE]" not in data:
                raise SystemExit(f"the server answered {response.status}: {data[:200]!r}")
        finally:
            conn.close()

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(ask, range(tasks)))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=64)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--concurrency", default="4")
    args = parser.parse_args()
    ideal = args.tasks / args.slots * TOKENS * TOKEN_S
    threads = int(args.concurrency) if args.concurrency.isdigit() else args.slots
    server = SlotServer(args.slots).start()
    try:
        plain_client(server.url, args.tasks, threads)  # warm-up
        floors = [plain_client(server.url, args.tasks, threads) for _ in range(args.runs)]
        with tempfile.TemporaryDirectory() as tmp:
            project = Path(tmp)
            (project / "tasks" / "python").mkdir(parents=True)
            (project / "tasks" / "python" / "many.yaml").write_text(task_file(args.tasks))
            (project / "pytest.ini").write_text("[pytest]\n")
            command = [
                str(BIN / "pytest"), "--models=m", "--llmbench-backend=openai",
                f"--llmbench-base-url={server.url}", f"--llmbench-concurrency={args.concurrency}",
                "--llmbench-cache=off", "-q", "-p", "no:cacheprovider",
            ]  # fmt: skip
            wall(command, project)  # warm-up
            times = [wall(command, project) for _ in range(args.runs)]
    finally:
        server.stop()
    print(f"{args.tasks} tasks x {TOKENS} tokens, {args.slots} slots at 200 tok/s each")
    print(f"ideal {ideal:.2f}s")
    floor = statistics.median(floors)
    print(f"server floor (plain client, {threads} threads): {spread(floors)}; "
          f"efficiency {ideal / floor:.2f}")  # fmt: skip
    median = statistics.median(times)
    print(f"pytest --models=m (whole process): {spread(times)}")
    print(f"efficiency (ideal / measured median): {ideal / median:.2f}")
    print(load())


if __name__ == "__main__":
    main()
