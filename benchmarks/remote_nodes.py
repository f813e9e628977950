"""What running workers as remote nodes costs against local workers (target: ratio under 1.1).

    python benchmarks/remote_nodes.py [--rounds 5] [--tasks 40] [--hold 0.05] [--cold]
    python benchmarks/remote_nodes.py --stored 4000 [--rounds 5]

The same benchmark (two models on two fake OpenAI-style servers, `--tasks` python tasks each,
every request held `--hold` seconds as a model would take, the answer store off so that every
answer is generated) runs alternately:

- locally, `pytest -n 2`: two popen workers write nothing; their reports carry the answers and
  cases to the controller, which writes them (storage/relay.py);
- through two execnet socket servers, each in its own copy of the project on this machine
  (`-d --tx socket=127.0.0.1:PORT//chdir=COPY`), as `--tx ssh=...` would reach other machines:
  the same path, plus each node's check before it runs (run/remote.py).

A socket server runs its workers in its own process, one run after another, so from the second
round on the nodes have the plugin imported already (as a long-lived node would); `--cold`
starts new socket servers before each round (untimed), as each run over SSH starts a new
Python. Per round the two wall-clocks (whole pytest processes); printed: each round's, the medians,
and the median of the per-round ratios (socket / local), the figure to quote on a noisy
machine.

`--stored N` measures instead what handing the stored answers to the workers costs: local
`-n 2` runs with a store holding N answers the run could reuse (the same models and sampling,
other prompts, each the size of a real answer with its token timeline), against the same runs
with an empty store. This measures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fakes.bench import add_task_number, add_tasks  # noqa: E402
from fakes.openai_server import FakeOpenAI, Reply  # noqa: E402
from fakes.socket_nodes import SocketNode  # noqa: E402

from pytest_llmbench.storage.answers import AnswerKey, AnswerStore  # noqa: E402
from pytest_llmbench.suites.base import Generation  # noqa: E402


def project(directory: Path, tasks: int) -> Path:
    (directory / "tasks" / "python").mkdir(parents=True)
    (directory / "tasks" / "python" / "many.yaml").write_text(add_tasks(tasks))
    (directory / "pytest.ini").write_text("[pytest]\n")
    return directory


def model(hold_s: float) -> Any:
    def answer(body: dict[str, Any]) -> Reply:
        time.sleep(hold_s)
        n = add_task_number(body)
        return Reply(f"```python\ndef add{n}(a, b):\n    return a + b + {n}\n```")

    return answer


def timed(cwd: Path, args: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "--tb=no", "-p", "no:cacheprovider", *args],
        cwd=cwd, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"pytest exited {done.returncode}:\n{done.stdout[-3000:]}{done.stderr}")
    return took


def fill_store(directory: Path, count: int) -> float:
    """`count` stored answers of models a and b at the default sampling; their size in MB."""
    from pytest_llmbench.exchange import Completion, Usage
    from pytest_llmbench.options import DEFAULT_SEED, DEFAULT_TEMPERATURE

    store = AnswerStore(directory / ".llmbench" / "store.sqlite3")
    text = "def f(x):\n    return x + 1\n" * 40  # about 1 kB of code
    timeline = tuple(("c", text[i : i + 4]) for i in range(0, len(text), 4))  # a token each
    answer = Completion(text, usage=Usage(50, 300, None, "server"), timeline=timeline)
    body = Generation(completions=(answer,), answer=text, reasoning="", truncated=False)
    for index in range(count):
        shown = {"messages": [{"role": "user", "content": f"other task {index}"}]}
        key = AnswerKey("openai", "ab"[index % 2], shown, 16384, DEFAULT_TEMPERATURE, DEFAULT_SEED)
        store.put(key, body)
    store.close()
    return (directory / ".llmbench" / "store.sqlite3").stat().st_size / 1e6


def handover(options: argparse.Namespace, common: list[str], base: Path) -> None:
    empty = project(base / "empty", options.tasks)
    full = project(base / "full", options.tasks)
    size = fill_store(full, options.stored)
    rows = []
    for index in range(options.rounds):
        order = [("empty", empty), ("full", full)]
        if index % 2:
            order.reverse()  # alternate which goes first
        took = {name: timed(where, [*common, "-n", "2"]) for name, where in order}
        rows.append(took)
        print(f"round {index + 1}: empty store {took['empty']:.2f} s, "
              f"{options.stored} stored {took['full']:.2f} s", flush=True)  # fmt: skip
    ratio = statistics.median(r["full"] / r["empty"] for r in rows)
    print(
        f"-n 2, {options.tasks} tasks x 2 models, resumed after round 1: a store of "
        f"{options.stored} reusable answers ({size:.0f} MB) handed to both workers: median "
        f"ratio {ratio:.3f} against an empty store"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--hold", type=float, default=0.05, help="seconds per request")
    parser.add_argument("--cold", action="store_true", help="new socket servers each round")
    parser.add_argument("--stored", type=int, default=0, help="measure the answers' hand-over")
    options = parser.parse_args()
    servers = [FakeOpenAI({name: model(options.hold)}).start() for name in ("a", "b")]
    common = [
        "--llmbench-backend=openai", "--models=a,b", "--llmbench-cache=off",
        f"--llmbench-endpoint=a={servers[0].url}", f"--llmbench-endpoint=b={servers[1].url}",
    ]  # fmt: skip
    if options.stored:
        # The store is read, so its answers are handed over; from the second round on, the
        # runs are resumed from it (where handing over matters).
        common.remove("--llmbench-cache=off")
        with tempfile.TemporaryDirectory() as tmp:
            handover(options, common, Path(tmp))
        for server in servers:
            server.stop()
        return
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        local = project(base / "local", options.tasks)
        controller = project(base / "controller", options.tasks)
        copies = [project(base / f"node{i}", options.tasks) for i in (1, 2)]
        nodes = [SocketNode(copy) for copy in copies]
        try:
            rows = []
            for index in range(options.rounds):
                if options.cold and index:
                    for node in nodes:
                        node.stop()
                    nodes = [SocketNode(copy) for copy in copies]
                # Alternate which goes first, so that a drift of the machine hits both.
                runs = {
                    "local": (local, [*common, "-n", "2"]),
                    "socket": (controller, [*common, "-d", *(node.tx for node in nodes)]),
                }
                order = ["local", "socket"] if index % 2 == 0 else ["socket", "local"]
                took = {name: timed(*runs[name]) for name in order}
                rows.append(took)
                ratio = took["socket"] / took["local"]
                print(
                    f"round {index + 1}: local -n 2 {took['local']:.2f} s, "
                    f"2 socket nodes {took['socket']:.2f} s, ratio {ratio:.3f}",
                    flush=True,
                )
        finally:
            for node in nodes:
                node.stop()
            for server in servers:
                server.stop()
    local_s = statistics.median(r["local"] for r in rows)
    socket_s = statistics.median(r["socket"] for r in rows)
    ratio = statistics.median(r["socket"] / r["local"] for r in rows)
    kind = "cold" if options.cold else "long-lived"
    print(
        f"{options.tasks} tasks x 2 models, {options.hold * 1000:.0f} ms per request, "
        f"{options.rounds} rounds, {kind} nodes: local -n 2 median {local_s:.2f} s, two socket "
        f"nodes median {socket_s:.2f} s; median ratio {ratio:.3f} (target < 1.1)"
    )


if __name__ == "__main__":
    main()
