"""How the HTML report copes with a big comparison: 10 models x 2,000 cases.

    python3 benchmarks/report_scale.py [--models 10] [--tasks 500] [--cases 4] [--repeat 3]

Writes a run record of generated data through the real writer (RunRecord.case, one commit per
case, as a run does), builds the report from it, then opens the page in Debian's headless
Chromium (Playwright driving /usr/bin/chromium) and measures, inside the page:

- load: navigation start to the grid built and the filters ready, and to the first frame
  painted after that (performance.now() taken in the page);
- filters: suite, outcome ("models disagree"), a text search, and back to all, each from the
  change to the next frame painted;
- the first drill-down into a model's column (parses that column's details) and a second one;
- the renderer's busy time while loading (Chrome's Performance.getMetrics: script, layout and
  style durations), which depends less on the machine's other load than wall-clock figures.

The target is "loads and filters in under a second". This measures and prints; it asserts
nothing. Medians over --repeat page loads.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pytest_llmbench.caseresult import CaseResult, GenerationStats
from pytest_llmbench.exchange import Completion, ToolCall, Usage
from pytest_llmbench.outcome import OUTCOMES
from pytest_llmbench.reporting.html.page import write_report
from pytest_llmbench.storage.record_writer import RECORD, RunRecord
from pytest_llmbench.suites.base import Generation, ToolExchange
from pytest_llmbench.taskfiles.format import CliTask, PythonTask, ToolingTask

SUITES = ("python", "cli", "tooling")
TIERS = ("easy", "medium", "hard")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


# Resolves with the milliseconds from `t` to the first frame painted after the change.
PAINTED = "requestAnimationFrame(() => setTimeout(() => done(performance.now() - t)));"


def make_task(suite: str, index: int, cases: int) -> Any:
    common = {"id": f"{suite}_task_{index:04d}", "difficulty": TIERS[index % 3],
              "prompt": f"Task {index}: " + "write the thing that does the work. " * 8}  # fmt: skip
    if suite == "python":
        return PythonTask.model_validate(
            {**common, "entry_point": "solve", "reference": "def solve(x):\n    return x\n",
             "cases": [{"id": f"c{i}", "args": [i, [i] * 5], "expect": i} for i in range(cases)]}
        )  # fmt: skip
    if suite == "cli":
        return CliTask.model_validate(
            {**common, "reference": "wc -l < data.txt", "files": {"data.txt": "a\nb\n" * 20},
             "cases": [{"id": f"c{i}", "stdout_words": [str(i)]} for i in range(cases)]}
        )  # fmt: skip
    return ToolingTask.model_validate(
        {**common, "tools": ["get_weather", "get_time"],
         "reference": [[{"name": "get_weather", "arguments": {"city": "Paris"}}]],
         "cases": [{"id": f"c{i}", "called": "get_weather", "args": {"city": {"contains": "par"}}}
                   for i in range(cases)]}
    )  # fmt: skip


def make_generation(suite: str, rng: random.Random) -> Generation:
    body = "\n".join(f"    total += step_{i}(x)  # keep going" for i in range(rng.randint(10, 40)))
    code = f"def solve(x):\n    total = 0\n{body}\n    return total"
    answer = f"Here is the code.\n\n```python\n{code}\n```"
    exchanges: tuple[ToolExchange, ...] = ()
    usage = Usage(300, rng.randint(100, 900), None, "server")
    reasoning = "thinking " * rng.randint(0, 120)
    completions = [Completion(answer, reasoning=reasoning, usage=usage, wall_s=rng.uniform(1, 20),
                              decode_tok_s=rng.uniform(20, 90))]  # fmt: skip
    if suite == "tooling":
        call = ToolCall("call_0", "get_weather", '{"city": "Paris"}')
        completions.insert(0, Completion("", tool_calls=(call,), finish_reason="tool_calls"))
        exchanges = (ToolExchange(0, call, {"city": "Paris"}, {"temperature_c": 18}),)
    tokens = sum(c.usage.completion_tokens or 0 for c in completions)
    stats = GenerationStats(seconds=sum(c.wall_s for c in completions), completion_tokens=tokens,
                            requests=len(completions), max_tokens=4096,
                            decode_tok_s=completions[-1].decode_tok_s)  # fmt: skip
    return Generation(tuple(completions), answer, completions[-1].reasoning, False,
                      exchanges, stats)  # fmt: skip


def write_record(path: Path, models: int, tasks: int, cases: int) -> tuple[str, float, int]:
    rng = random.Random(7)
    run_id = "bench" + "0" * 7
    record = RunRecord(path, run_id)
    names = [f"model-{m:02d}" for m in range(models)]
    record.start({"models": names, "backend": "openai", "settings": {"max_tokens": 4096}})
    all_tasks = [make_task(SUITES[i % 3], i, cases) for i in range(tasks)]
    skill = {name: rng.uniform(0.2, 0.9) for name in names}
    started = time.perf_counter()
    written = 0
    for name in names:
        for task in all_tasks:
            suite = SUITES[int(task.id.split("_")[-1]) % 3]
            generation = make_generation(suite, rng)
            for case in task.cases:
                outcome = "passed" if rng.random() < skill[name] else rng.choice(OUTCOMES[1:])
                result = CaseResult(name, suite, task.id, case.id, outcome,
                                    "" if outcome == "passed" else "expected 1, got 2",
                                    file=f"tasks/{suite}/big.yaml",
                                    generation=generation.stats, load_s=3.0)  # fmt: skip
                config = SimpleNamespace(stash={RECORD: record})
                item = SimpleNamespace(config=config, suite=suite, task=task, case=case,
                                       model=name, generation=generation)  # fmt: skip
                record.case(item, result, None)
                written += 1
    seconds = time.perf_counter() - started
    record.finish([], 1)
    record.close()
    return run_id, seconds, written


def measure(page_path: Path, repeat: int) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    if executable is None:
        raise SystemExit("Debian's chromium is needed: apt-get install chromium")
    figures: dict[str, list[float]] = {}

    def note(name: str, value: float) -> None:
        figures.setdefault(name, []).append(value)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=FLAGS)
        for _ in range(repeat):
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            cdp = page.context.new_cdp_session(page)
            cdp.send("Performance.enable")
            page.goto(page_path.as_uri())
            page.wait_for_function("window.llmbenchTimings?.paintedAt > 0", timeout=60_000)
            timings = page.evaluate("llmbenchTimings")
            # The renderer's own busy time: less at the mercy of other processes than wall time.
            metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
            note("load: renderer busy, all tasks (ms CPU)", 1000 * metrics["TaskDuration"])
            for name in ("ScriptDuration", "LayoutDuration", "RecalcStyleDuration"):
                note(f"  of which {name} (ms CPU)", 1000 * metrics[name])
            note("load: navigation to grid ready (ms)", timings["readyAt"])
            note("load: navigation to grid painted (ms)", timings["paintedAt"])
            note("  of which the page script (ms)", timings["initMs"])
            for label, script in (
                ("filter: suite = python (ms)", "f-suite', 'python"),
                ("filter: models disagree (ms)", "f-outcome', '~"),
                ("filter: back to all (ms)", "f-outcome', '"),
            ):
                select, value = script.split("', '")
                ms = page.evaluate(
                    "([s, v]) => new Promise(done => { const e = document.getElementById(s);"
                    " e.value = v; const t = performance.now();"
                    " e.dispatchEvent(new Event('change')); " + PAINTED + " })",
                    [select, value],
                )
                note(label, ms)
            ms = page.evaluate(
                "() => new Promise(done => { const e = document.getElementById('f-text');"
                " e.value = 'task_04'; const t = performance.now();"
                " e.dispatchEvent(new Event('input')); " + PAINTED + " })"
            )
            note("filter: text 'task_04' (ms)", ms)
            for label, column in (("first drill-down, column 3 (ms)", 3),
                                  ("second drill-down, same column (ms)", 3)):  # fmt: skip
                ms = page.evaluate(
                    "async (c) => { const t = performance.now(); await llmbench.openCase(c, 1, -1);"
                    " return performance.now() - t; }",
                    column,
                )
                note(label, ms)
            page.close()
        browser.close()
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=int, default=10)
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--cases", type=int, default=4, help="cases per task")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        database = Path(tmp) / "store.sqlite3"
        run_id, write_s, written = write_record(database, args.models, args.tasks, args.cases)
        print(f"record: {written} cases ({args.models} models x {args.tasks} tasks x "
              f"{args.cases} cases) written in {write_s:.1f}s, {written / write_s:.0f} cases/s, "
              f"{database.stat().st_size / 1e6:.1f} MB")  # fmt: skip
        started = time.perf_counter()
        page = write_report(database, [run_id], Path(tmp) / "report.html")
        build_s = time.perf_counter() - started
        print(f"report: built in {build_s:.1f}s (plots included: {page.plots}), "
              f"{page.bytes / 1e6:.1f} MB")  # fmt: skip
        for name, values in measure(page.path, args.repeat).items():
            print(f"{name:40s} median {statistics.median(values):7.0f}   "
                  f"(runs: {', '.join(f'{v:.0f}' for v in values)})")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
