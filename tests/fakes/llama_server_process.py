"""A stand-in for the `llama-server` executable, run as a real child process by the embedded tests.

It takes llama-server's arguments and serves the fake llama-server (`LlamaServerFake`) on the
port it is given: `/health` answers 503 while "loading", `/props` reports the context per slot
(`-c` divided by `--parallel`, as llama.cpp does), the slots, the model's path, the template
file given with `--chat-template-file` (else a built-in one) and the build ($FAKE_LLAMA_BUILD,
else the fake's default), and `--alias` names the model. It
writes its argv and pid, and the pid of a helper child it spawns, to $FAKE_LLAMA_STATE so tests
can check both are gone after unload. FAKE_LLAMA_MODE=crash makes it die at start-up after
printing an error, as llama-server does for a file that is not a model.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fakes.chat_stream import Answer, tokens
from fakes.llamacpp_server import LlamaServerFake


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("-m", "--model")
    parser.add_argument("-a", "--alias")
    parser.add_argument("-c", "--ctx-size", type=int, default=4096)
    parser.add_argument("-np", "--parallel", type=int, default=1)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--jinja", action="store_true")
    parser.add_argument("--chat-template-file")
    # Accepted and ignored, like the tuning flags a real server takes.
    parser.add_argument("-t", "--threads")
    parser.add_argument("-tb", "--threads-batch")
    parser.add_argument("--reasoning-format")
    parser.add_argument("--no-webui", action="store_true")
    parser.add_argument("--cache-ram")
    return parser.parse_args(argv)


def main() -> None:
    args = parse(sys.argv[1:])
    state = Path(os.environ["FAKE_LLAMA_STATE"])
    if os.environ.get("FAKE_LLAMA_MODE") == "crash":
        print("llama_model_load: error loading model: invalid magic", flush=True)
        sys.exit(3)
    helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    line = json.dumps({"argv": sys.argv[1:], "pid": os.getpid(), "helper": helper.pid})
    with state.open("a") as log:  # one write of one short line: servers started at once
        log.write(line + "\n")
    time.sleep(float(os.environ.get("FAKE_LLAMA_BIND_S", "0.2")))  # start-up before listening
    alias = args.alias or Path(args.model).name
    template = None
    if args.chat_template_file:
        # /props of the real server gives the file without its final newline (Jinja's
        # keep_trailing_newline is off in llama.cpp's template engine).
        template = Path(args.chat_template_file).read_text().removesuffix("\n")
    fake = LlamaServerFake(
        model=Path(args.model).name,
        model_path=args.model,
        alias=alias,
        n_ctx=args.ctx_size // args.parallel,
        total_slots=args.parallel,
        loading_polls=int(os.environ.get("FAKE_LLAMA_LOADING_POLLS", "3")),
        answers={alias: Answer(tokens(f"hello from {alias}"))},
        port=args.port,
    )
    if template is not None:
        fake.chat_template = template
    fake.build_info = os.environ.get("FAKE_LLAMA_BUILD", fake.build_info)
    fake.serve_forever()


if __name__ == "__main__":
    main()
