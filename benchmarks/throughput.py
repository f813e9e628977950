"""How close a model's run comes to what its server allows: efficiency = ideal / measured.

    python benchmarks/throughput.py [--runs 3] [--tasks 64] [--slots 4] [--concurrency auto]

A loopback OpenAI-style server with `slots` parallel slots decodes at a fixed 200 tokens/s per
slot; every task's answer is 100 tokens (0.5 s), and a request beyond the slots waits for one.
The ideal wall-clock is tasks / slots x 0.5 s (64 tasks on 4 slots: 8 s). The measured figure is
the whole `pytest --models=m` process: start-up, collection, the sandbox self-test, generation
and scoring of every case in the sandbox. The answer store is off, so every run asks the server.

This measures; it asserts nothing (the target is 1.1 x ideal, an efficiency of 0.91 or more).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
from collections.abc import Iterator
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
        return Sse(self._held(chunks(body, answer, Quirks())), delay_s=TOKEN_S)

    def _held(self, stream: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        with self.slots:
            yield from stream


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=64)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--concurrency", default="4")
    args = parser.parse_args()
    ideal = args.tasks / args.slots * TOKENS * TOKEN_S
    server = SlotServer(args.slots).start()
    try:
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
    median = statistics.median(times)
    print(f"{args.tasks} tasks x {TOKENS} tokens, {args.slots} slots at 200 tok/s each")
    print(f"ideal {ideal:.2f}s; measured {spread(times)}")
    print(f"efficiency (ideal / measured median): {ideal / median:.2f}")
    print(load())


if __name__ == "__main__":
    main()
