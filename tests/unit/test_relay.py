"""What xdist workers send the controller (storage/relay.py), and how remote nodes are checked
and handed paths (run/remote.py, run/node_check.py)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import execnet
import pytest
from fakes.bench import ADD_TASK, add_generation

from pytest_llmbench import __version__
from pytest_llmbench.caseresult import CaseResult
from pytest_llmbench.options import read_rootdir_args
from pytest_llmbench.run import node_check, remote
from pytest_llmbench.storage.answers import (
    AnswerKey,
    AnswerStore,
    decode_generation,
    encode_generation,
)
from pytest_llmbench.storage.record_reader import read_run
from pytest_llmbench.storage.record_writer import RECORD, RunRecord, record_case
from pytest_llmbench.storage.relay import Outbox, RelayedAnswers, parse
from pytest_llmbench.taskfiles.roots import TaskRoots


def key(model: str, prompt: str, backend: str = "openai") -> AnswerKey:
    return AnswerKey(backend, model, {"prompt": prompt}, 512, 0.0, None)


# ---------------------------------------------------------------------- the worker's side
def test_an_empty_outbox_sends_nothing() -> None:
    assert Outbox().take() is None


def test_answers_and_record_rows_reach_the_controllers_database_through_the_outbox(
    tmp_path: Path,
) -> None:
    outbox = Outbox()
    answers = RelayedAnswers({}, "use", outbox)
    answers.put(key("m", "p1"), add_generation("one"))
    worker_record = RunRecord(tmp_path / "never.sqlite3", "run1", outbox)
    for case in ADD_TASK.cases:
        item = SimpleNamespace(
            config=SimpleNamespace(stash={RECORD: worker_record}), suite="python", task=ADD_TASK,
            case=case, model="m", generation=add_generation("one"),
        )  # fmt: skip
        result = CaseResult("m", "python", "add", case.id, "passed", file="tasks/p.yaml")
        record_case(item, result, None)  # type: ignore[arg-type]
    text = outbox.take()
    assert text is not None and outbox.take() is None  # taken once
    json.loads(text)  # plain JSON: it rides on a report
    rows, statements = parse(text)
    assert not (tmp_path / "never.sqlite3").exists()  # the worker wrote nothing

    store = AnswerStore(tmp_path / "store.sqlite3")
    store.put_rows(rows)
    assert store.get(key("m", "p1")) is not None
    record = RunRecord(tmp_path / "store.sqlite3", "run1")
    record.begin(lambda: {"models": ["m"]})
    record.relayed(statements)
    record.finish([], 0)
    assert record.failure is None
    run = read_run(tmp_path / "store.sqlite3", "run1")
    (task,) = run.tasks
    assert [c.case for c in task.cases] == ["c0", "c1", "c2"]
    assert task.generation is not None and task.generation["answer"] == "one"


def test_a_worker_reads_the_controllers_answers_and_its_own(tmp_path: Path) -> None:
    outbox = Outbox()
    store = AnswerStore(tmp_path / "store.sqlite3")
    store.put(key("m", "old"), add_generation("stored"))
    answers = RelayedAnswers(store.stored("openai", ["m"], 0.0, [None]), "use", outbox)
    found = answers.get(key("m", "old"))
    assert found is not None and found.answer == "stored"
    assert answers.get(key("m", "new")) is None
    answers.put(key("m", "new"), add_generation("fresh"))
    again = answers.get(key("m", "new"))
    assert again is not None and again.answer == "fresh"


@pytest.mark.parametrize(("policy", "reads", "sends"), [("use", True, True),
                         ("refresh", False, True), ("off", False, False)])  # fmt: skip
def test_the_cache_policy_holds_on_a_worker(policy: str, reads: bool, sends: bool) -> None:
    outbox = Outbox()
    stored = {key("m", "p").digest: encode_generation(add_generation("stored"))}
    answers = RelayedAnswers(dict(stored), policy, outbox)
    assert (answers.get(key("m", "p")) is not None) is reads
    answers.put(key("m", "q"), add_generation("x"))
    assert (outbox.take() is not None) is sends


def test_the_controller_hands_over_only_what_the_run_could_reuse(tmp_path: Path) -> None:
    store = AnswerStore(tmp_path / "store.sqlite3")
    for model, backend in (("a", "openai"), ("b", "openai"), ("a", "ollama")):
        store.put(key(model, "p", backend), add_generation(f"{model}@{backend}"))
    store.put(AnswerKey("openai", "a", {"prompt": "p"}, 512, 0.8, 7), add_generation("warm"))
    store.put(AnswerKey("openai", "a", {"prompt": "p"}, 512, 0.8, 9), add_generation("other seed"))
    assert list(store.stored("openai", ["a"], 0.0, [None])) == [key("a", "p").digest]
    warm = store.stored("openai", ["a"], 0.8, [7, 8])
    assert [decode_generation(text).answer for text in warm.values()] == ["warm"]
    refresh = AnswerStore(tmp_path / "store.sqlite3", "refresh")
    assert refresh.stored("openai", ["a"], 0.0, [None]) == {}
    nowhere = AnswerStore(tmp_path / "none" / "store.sqlite3")
    assert nowhere.stored("openai", ["a"], 0.0, [None]) == {}
    assert not (tmp_path / "none").exists()  # asking does not create a database


def test_the_record_takes_only_its_own_rows_from_a_worker(tmp_path: Path) -> None:
    record = RunRecord(tmp_path / "store.sqlite3", "run1")
    record.relayed([("DROP TABLE runs", ())])
    assert record.failure is not None and "rows from a worker" in record.failure
    record.close()


# ---------------------------------------------------------------------- remote nodes
def test_paths_reach_a_remote_worker_relative_to_the_project(tmp_path: Path) -> None:
    (tmp_path / "tasks" / "python").mkdir(parents=True)
    (tmp_path / "tasks" / "python" / "a.yaml").write_text("suite: python\n")
    args = ["--models=a", "tasks/python", "tasks/python/a.yaml::add", "-k", "not_a_path", "."]
    sent = remote.relative_args(args, tmp_path, tmp_path)
    assert sent == [
        "--models=a", "<rootdir>/tasks/python", "<rootdir>/tasks/python/a.yaml::add", "-k",
        "not_a_path", "<rootdir>/.",
    ]  # fmt: skip
    assert all(not Path(arg).exists() for arg in sent if arg.startswith("<"))  # xdist leaves them
    read_rootdir_args(sent)
    assert sent == [*args[:5], "."]
    inside = tmp_path / "tasks"
    assert remote.relative_args(["python"], inside, tmp_path) == ["<rootdir>/tasks/python"]


def test_a_path_outside_the_project_cannot_reach_a_remote_worker(tmp_path: Path) -> None:
    (tmp_path / "project").mkdir()
    with pytest.raises(pytest.UsageError, match="outside the rootdir"):
        remote.relative_args([str(tmp_path)], tmp_path, tmp_path / "project")


@pytest.mark.parametrize(
    ("spec", "shown", "is_remote"),
    [
        ("socket=10.0.0.5:8888//chdir=/srv/p", "socket=10.0.0.5:8888//chdir=/srv/p", True),
        ("ssh=gpu-box//python=/opt/venv/bin/python", "ssh=gpu-box", True),
        ("popen", "popen", False),
        ("popen//chdir=/tmp/x", "popen//chdir=/tmp/x", True),
    ],
)  # fmt: skip
def test_nodes_are_named_as_the_user_named_them(spec: str, shown: str, is_remote: bool) -> None:
    xspec = execnet.XSpec(spec)
    assert remote.describe(xspec) == shown
    assert remote.is_remote(xspec) is is_remote


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_node_tells_its_version_files_and_unreachable_servers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "a.yaml").write_text("suite: python\n")
    monkeypatch.chdir(tmp_path)
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        up = f"http://127.0.0.1:{listening.getsockname()[1]}/v1"
        down = f"http://127.0.0.1:{closed_port()}/v1"
        facts = node_check.node_facts(
            {"files": ["tasks/a.yaml", "tasks/gone.yaml"], "urls": [up, down]}
        )
    assert facts["version"] == __version__
    assert facts["files"] == {
        "tasks/a.yaml": node_check.file_digest(tmp_path / "tasks" / "a.yaml"),
        "tasks/gone.yaml": "missing",
    }
    assert list(facts["unreachable"]) == [down]
    assert "tier" not in facts  # no sandbox asked for, none started


NEED: dict[str, Any] = {"files": {}, "isolation": "auto", "tier": "full", "urls": []}
GOOD: dict[str, Any] = {"python": "/usr/bin/python3", "cwd": "/srv/p", "version": __version__,
                        "files": {}, "tier": "full", "unreachable": {}}  # fmt: skip


@pytest.mark.parametrize(
    ("facts", "says"),
    [
        ({"missing": "No module named 'pytest_llmbench'"}, "has no pytest-llmbench: pip install"),
        ({"version": "0.0.1"}, f"runs pytest-llmbench 0.0.1, this machine {__version__}"),
        ({"tier": "reduced"}, "cannot isolate model code as this run does ('full')"),
        ({"tier": None, "sandbox_problem": "bwrap is not installed"}, "bwrap is not installed"),
        ({"unreachable": {"http://gpu:1234/v1": "Connection refused"}},
         "cannot reach the model server http://gpu:1234/v1 (Connection refused)"),
    ],
)  # fmt: skip
def test_a_node_that_cannot_take_part_gets_one_line_naming_it(
    facts: dict[str, Any], says: str
) -> None:
    line = remote.refusal("gw1 ssh=gpu", NEED, {**GOOD, **facts})
    assert line is not None and "\n" not in line
    assert line.startswith("llmbench: node gw1 ssh=gpu (")
    assert says in line
    assert remote.refusal("gw1 ssh=gpu", NEED, GOOD) is None


def test_task_files_that_differ_are_named(tmp_path: Path) -> None:
    (tmp_path / "tasks").mkdir()
    for name in ("a.yaml", "b.yaml"):
        (tmp_path / "tasks" / name).write_text(f"suite: python\n# {name}\n")
    roots = TaskRoots(((tmp_path / "tasks").resolve(),), "project")
    files = remote.task_files(roots, tmp_path)
    assert files == {
        f"tasks/{name}": node_check.file_digest(tmp_path / "tasks" / name)
        for name in ("a.yaml", "b.yaml")
    }
    need = {**NEED, "files": files}
    assert remote.refusal("gw0 x", need, {**GOOD, "files": dict(files)}) is None
    differ = {"tasks/a.yaml": "other", "tasks/b.yaml": "missing"}
    line = remote.refusal("gw0 x", need, {**GOOD, "files": differ})
    assert line is not None and "task file tasks/a.yaml differs there (and 1 more)" in line


def test_the_node_gathers_its_facts_in_a_python_of_its_own(tmp_path: Path) -> None:
    """The gateway's process is the one xdist then runs the worker in: if the check imported
    the plugin there, pytest could not rewrite its asserts (and says so in a warning)."""
    script = (
        "import json, runpy, sys\n"
        f"module = runpy.run_path({node_check.__file__!r}, run_name='node_check')\n"
        f"source = open({node_check.__file__!r}).read()\n"
        "facts = module['gathered']({'files': [], 'urls': []}, source)\n"
        "print(json.dumps([facts.get('version'), 'pytest_llmbench' in sys.modules]))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, check=True)  # fmt: skip
    assert json.loads(done.stdout) == [__version__, False]
