"""A stand-in for `python -m llama_cpp.server`, run as a real child process by the embedded tests.

It takes the same arguments, serves the same endpoints and has the same quirks as
llama-cpp-python's server: any model name is answered (echoed back), streams carry no usage even
when asked, `/extras/tokenize/count` counts tokens (here: words). It writes its argv and pid, and
the pid of a helper child it spawns, to $FAKE_LLAMA_STATE so tests can check both are gone after
unload. FAKE_LLAMA_MODE=crash makes it die at start-up after printing an error.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fakes.chat_stream import Answer, Quirks, chunks, tokens
from fakes.http_fake import FakeHttpServer, Json, Response, Sse


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("-m", dest="module")
    for flag in (
        "--model",
        "--model_alias",
        "--n_ctx",
        "--host",
        "--port",
        "--n_threads",
        "--n_threads_batch",
    ):
        parser.add_argument(flag)
    return parser.parse_args(argv)


class FakeLlamaCppPython(FakeHttpServer):
    def __init__(self, alias: str, host: str, port: int) -> None:
        super().__init__(host, port)
        self.alias = alias
        self.route(
            "GET",
            "/v1/models",
            lambda b, q: Json(200, {"data": [{"id": alias, "object": "model"}]}),
        )
        self.route("POST", "/extras/tokenize/count", self._count)
        self.route("POST", "/v1/chat/completions", self._chat)

    def _count(self, body: dict[str, Any], query: dict[str, str]) -> Response:
        return Json(200, {"count": len(str(body.get("input", "")).split())})

    def _chat(self, body: dict[str, Any], query: dict[str, str]) -> Response:
        answer = Answer(tokens(f"hello from {self.alias}"))
        return Sse(list(chunks(body, answer, Quirks(usage=False))))


def main() -> None:
    args = parse(sys.argv[1:])
    state = Path(os.environ["FAKE_LLAMA_STATE"])
    if os.environ.get("FAKE_LLAMA_MODE") == "crash":
        print("error: failed to load model from file", flush=True)
        sys.exit(3)
    helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    state.write_text(json.dumps({"argv": sys.argv[1:], "pid": os.getpid(), "helper": helper.pid}))
    time.sleep(float(os.environ.get("FAKE_LLAMA_STARTUP_S", "0.3")))  # loading the model
    FakeLlamaCppPython(args.model_alias, args.host, int(args.port)).serve_forever()


if __name__ == "__main__":
    main()
