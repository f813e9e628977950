"""What running workers as remote nodes costs against local workers (target: ratio under 1.1).

    python benchmarks/remote_nodes.py [--rounds 5] [--tasks 40] [--hold 0.05] [--cold]

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
machine. This measures; it asserts nothing.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--hold", type=float, default=0.05, help="seconds per request")
    parser.add_argument("--cold", action="store_true", help="new socket servers each round")
    options = parser.parse_args()
    servers = [FakeOpenAI({name: model(options.hold)}).start() for name in ("a", "b")]
    common = [
        "--llmbench-backend=openai", "--models=a,b", "--llmbench-cache=off",
        f"--llmbench-endpoint=a={servers[0].url}", f"--llmbench-endpoint=b={servers[1].url}",
    ]  # fmt: skip
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
