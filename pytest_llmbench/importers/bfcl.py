"""BFCL (the `bfcl-eval` package's simple / multiple / parallel categories) -> tooling YAML.

Each entry becomes one task: the functions become bare OpenAI tool specs (BFCL's own types
mapped to JSON schema: dict -> object, float -> number, tuple -> array, any -> untyped; dots
in function names become underscores, as BFCL does for function-calling models), the question
becomes the prompt, and the possible answers become one case checked the way BFCL's AST
checker does (`strict`, `one_of` with `normalize`, `optional` for the "" option, nested dicts
key by key). simple and multiple give a `called` case; parallel gives a `calls` case matched by
best assignment, all in one turn and nothing else (`same_turn`, `only`). The reference replays
the first acceptable value of every parameter.
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..suites.base import ToolExchange
from ..suites.matching import check_case
from ..taskfiles.format import ToolingTask
from ._common import ImportReport, dump_task_file

CATEGORIES: dict[str, str] = {
    "simple": "simple_python",
    "multiple": "multiple",
    "parallel": "parallel",
    "parallel_multiple": "parallel_multiple",
}
DEFAULT_CATEGORIES = ("simple", "multiple", "parallel")
_TYPES = {"dict": "object", "float": "number", "tuple": "array", "integer": "integer",
          "string": "string", "boolean": "boolean", "array": "array"}  # fmt: skip
_HEADS = ("equals", "one_of", "contains", "approx")


class Unconvertible(ValueError):
    """An entry that cannot be expressed in our format; the message is the reason."""


def default_source() -> Path:
    """The data directory shipped by the installed `bfcl-eval` package."""
    spec = importlib.util.find_spec("bfcl_eval")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the bfcl-eval package is not installed: pip install bfcl-eval "
            "(or pass --source DIR with the BFCL_v*_*.json files)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _data_file(directory: Path, stem: str) -> Path:
    pattern = re.compile(rf"BFCL_v(\d+)_{re.escape(stem)}\.json")
    found = sorted(
        (p for p in directory.glob("BFCL_v*.json") if pattern.fullmatch(p.name)),
        key=lambda p: int(pattern.fullmatch(p.name).group(1)),  # type: ignore[union-attr]
    )
    if not found:
        raise FileNotFoundError(f"no BFCL_v*_{stem}.json in {directory}")
    return found[-1]


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def tool_name(name: str) -> str:
    return name.replace(".", "_")


def convert_schema(schema: Any) -> Any:
    """BFCL's parameter schema -> JSON schema, recursively."""
    if isinstance(schema, list):
        return [convert_schema(s) for s in schema]
    if not isinstance(schema, Mapping):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "type" and isinstance(value, str):
            if value == "any":
                continue
            if value not in _TYPES:
                raise Unconvertible(f"unknown parameter type {value!r}")
            out[key] = _TYPES[value]
        elif key in ("properties",) and isinstance(value, Mapping):
            out[key] = {k: convert_schema(v) for k, v in value.items()}
        elif key in ("items", "additionalProperties"):
            out[key] = convert_schema(value)
        else:
            out[key] = value
    return out


def _value_matcher(value: Any) -> Any:
    """One acceptable BFCL value as a matcher: dicts are BFCL's per-key answer lists."""
    if isinstance(value, Mapping):
        body = {str(k): _values_matcher(v) for k, v in value.items()}
        return {"equals": body} if any(k in _HEADS for k in body) else body
    if isinstance(value, list):
        return [_value_matcher(v) for v in value]
    return value


def _values_matcher(values: Any) -> Any:
    """BFCL's list of acceptable values ("" meaning the parameter may be left out)."""
    if not isinstance(values, list):
        raise Unconvertible("a possible answer is not a list of values")
    options = [v for v in values if v != ""]
    matcher: dict[str, Any] = {"one_of": [_value_matcher(v) for v in options] or [""]}
    matcher["normalize"] = True
    if "" in values:
        matcher["optional"] = True
    return matcher


def _reference_value(values: list[Any]) -> tuple[bool, Any]:
    """The first acceptable value, or (False, None) when leaving the parameter out is best."""
    for value in values:
        if value == "":
            return False, None
        if isinstance(value, Mapping):
            inner = {}
            for key, sub in value.items():
                keep, chosen = _reference_value(sub)
                if keep:
                    inner[str(key)] = chosen
            return True, inner
        if isinstance(value, list):
            return True, [_plain_reference(v) for v in value]
        return True, value
    return False, None


def _plain_reference(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _reference_value(v)[1] for k, v in value.items()}
    return value


def convert_entry(
    entry: Mapping[str, Any], answer: Mapping[str, Any], category: str
) -> dict[str, Any]:
    """One BFCL entry and its possible answer -> one task dict (raises Unconvertible)."""
    turns = entry.get("question") or []
    if len(turns) != 1:
        raise Unconvertible("multi-turn question")
    messages = turns[0]
    users = [m["content"] for m in messages if m.get("role") == "user"]
    systems = [m["content"] for m in messages if m.get("role") == "system"]
    if len(users) != 1:
        raise Unconvertible("not exactly one user message")
    functions = entry.get("function") or []
    tools: list[dict[str, Any]] = []
    names: list[str] = []
    for function in functions:
        name = tool_name(str(function["name"]))
        names.append(name)
        tools.append(
            {
                "type": "function",
                "function": {
                    "name": name,
                    "description": str(function.get("description", "")),
                    "parameters": convert_schema(function.get("parameters") or {}),
                },
            }
        )
    if len(set(names)) != len(names):
        raise Unconvertible("two functions share a name once dots become underscores")
    truth = answer.get("ground_truth") or []
    expected: list[dict[str, Any]] = []
    reference: list[dict[str, Any]] = []
    for call in truth:
        if not isinstance(call, Mapping) or len(call) != 1:
            raise Unconvertible("a ground-truth call is not {name: params}")
        ((raw_name, params),) = call.items()
        name = tool_name(str(raw_name))
        if name not in names:
            raise Unconvertible(f"the answer calls {raw_name!r}, which is not offered")
        args = {str(p): _values_matcher(v) for p, v in params.items()}
        expected.append({"name": name, "args": args})
        arguments = {}
        for p, values in params.items():
            keep, value = _reference_value(values)
            if keep:
                arguments[str(p)] = value
        reference.append({"name": name, "arguments": arguments})
    if not expected:
        raise Unconvertible("no ground-truth call")
    if category.startswith("parallel"):
        case: dict[str, Any] = {"id": "calls", "calls": expected, "strict": True,
                                "same_turn": True, "only": True}  # fmt: skip
    else:
        if len(expected) != 1:
            raise Unconvertible(f"{len(expected)} ground-truth calls in a {category} entry")
        case = {"id": "call", "called": expected[0]["name"], "strict": True,
                "args": expected[0]["args"]}  # fmt: skip
    task: dict[str, Any] = {
        "id": str(entry["id"]),
        "tags": ["bfcl", category],
        "prompt": users[0],
    }
    if systems:
        task["system"] = "\n\n".join(systems)
    task.update({"tools": tools, "max_steps": 1, "reference": [reference], "cases": [case]})
    return task


def _self_check(task: ToolingTask) -> None:
    """The reference must pass the case: a ground truth that breaks its own schema (a value
    of the wrong type, a parameter the function does not declare) is not convertible."""
    uses = [ToolExchange.of(0, c.name, dict(c.arguments)) for c in task.reference[0]]
    schemas = {t.function.name: t.function.parameters for t in task.tools if not isinstance(t, str)}
    for case in task.cases:
        why = check_case(case, uses, schemas.get)
        if why is not None:
            raise Unconvertible(f"the ground truth fails its own check ({why.split(': ', 1)[-1]})")


def convert(
    directory: Path, categories: Sequence[str], report: ImportReport, limit: int | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Convert the given categories; returns category -> task dicts."""
    out: dict[str, list[dict[str, Any]]] = {}
    for category in categories:
        stem = CATEGORIES[category]
        entries = _read_jsonl(_data_file(directory, stem))[:limit]
        answers = {a["id"]: a for a in _read_jsonl(_data_file(directory / "possible_answer", stem))}
        tasks = []
        for entry in entries:
            pid = str(entry["id"])
            try:
                if pid not in answers:
                    raise Unconvertible("no possible answer")
                task = convert_entry(entry, answers[pid], category)
                _self_check(ToolingTask.model_validate(task))
            except Unconvertible as exc:
                report.skip(pid, str(exc))
                continue
            except ValueError as exc:  # pydantic's ValidationError is a ValueError
                first = str(exc).splitlines()
                report.skip(pid, f"does not validate: {first[1] if len(first) > 1 else first[0]}")
                continue
            tasks.append(task)
            report.converted.append(pid)
            report.cases += len(task["cases"])
        out[category] = tasks
    return out


def run(
    out: Path,
    source: Path | None = None,
    categories: Sequence[str] = DEFAULT_CATEGORIES,
    limit: int | None = None,
) -> ImportReport:
    """Import BFCL categories into `out` (a directory): one bfcl_<category>.yaml each."""
    directory = source or default_source()
    unknown = [c for c in categories if c not in CATEGORIES]
    if unknown:
        raise ValueError(f"unknown BFCL category {unknown[0]!r} (known: {', '.join(CATEGORIES)})")
    report = ImportReport(source=f"BFCL ({directory})")
    for category, tasks in convert(directory, categories, report, limit).items():
        if tasks:
            header = (
                f"Imported from the Berkeley Function Calling Leaderboard ({category} category,\n"
                "bfcl-eval package) by `llmbench import bfcl`; checked as BFCL's AST checker does."
            )
            report.files.append(
                dump_task_file(out / f"bfcl_{category}.yaml", "tooling", tasks, header)
            )
    return report
