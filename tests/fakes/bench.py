"""Scripted models and small task files for the plugin's end-to-end tests."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

from pytest_llmbench.caseresult import GenerationStats
from pytest_llmbench.exchange import Completion, Usage
from pytest_llmbench.results import history
from pytest_llmbench.suites.base import Generation
from pytest_llmbench.taskfiles.format import PythonCase, PythonTask

from .openai_server import Reply, Script, by_prompt, last_user_text

# One small python task and a generation for it, as the record's and the relay's unit tests use.
ADD_TASK = PythonTask(
    id="add",
    prompt="Write add(a, b).",
    entry_point="add",
    reference="def add(a, b):\n    return a + b\n",
    cases=[PythonCase.model_validate({"id": f"c{i}", "args": [i, 1], "expect": i + 1})
           for i in range(3)],
)  # fmt: skip
ADD_ANSWER = "```python\ndef add(a, b):\n    return a + b\n```"


def add_generation(answer: str = ADD_ANSWER) -> Generation:
    return Generation(
        completions=(Completion(answer, usage=Usage(10, 20, None, "server")),),
        answer=answer,
        reasoning="",
        truncated=False,
        stats=GenerationStats(seconds=0.5, completion_tokens=20, requests=1),
    )


PYTHON_TASKS = """\
suite: python
tasks:
  - id: add
    prompt: Write `def add(a, b)` returning the sum of a and b.
    entry_point: add
    reference: |
      def add(a, b):
          return a + b
    cases:
      - {id: small, args: [1, 2], expect: 3}
      - {id: negative, args: [-5, 2], expect: -3}
      - {id: floats, args: [0.1, 0.2], expect: 0.3, float_tol: 1.0e-9}
"""

CLI_TASKS = """\
suite: cli
tasks:
  - id: count_lines
    prompt: Print the number of lines in data.txt, and nothing else.
    files:
      data.txt: "a\\nb\\nc\\n"
    reference: wc -l < data.txt
    cases:
      - {id: three, stdout_words: ["3"]}
"""

TOOLING_TASKS = """\
suite: tooling
tasks:
  - id: weather
    prompt: What is the weather in Paris right now?
    tools: [get_weather, get_time]
    reference:
      - [{name: get_weather, arguments: {city: Paris}}]
    cases:
      - {id: called, called: get_weather, args: {city: {contains: paris}}}
      - {id: not_time, not_called: get_time}
  - id: lookup_then_email
    prompt: Look up Alice's email address, then email her with the subject 'Hello'.
    tools: [get_user, send_email]
    max_steps: 4
    reference:
      - [{name: get_user, arguments: {name: Alice}}]
      - [{name: send_email, arguments: {to: alice@example.com, subject: Hello}}]
    cases:
      - id: emailed
        called: send_email
        args: {to: alice@example.com, subject: {contains: hello}}
"""

GOOD_CODE = "```python\ndef add(a, b):\n    return a + b\n```"
WRONG_CODE = "```python\ndef add(a, b):\n    return a - b\n```"


# The right answer to lookup_then_email, turn by turn.
ALICE_TURNS = [
    Reply(tool_calls=[{"name": "get_user", "arguments": {"name": "Alice"}}]),
    Reply(
        tool_calls=[
            {"name": "send_email", "arguments": {"to": "alice@example.com", "subject": "Hello"}}
        ]
    ),
    Reply("Sent."),
]


def add_tasks(count: int) -> str:
    """A python task file of `count` tasks add{n}(a, b) = a + b + n, two cases each, whose
    prompts a script tells apart with `add_task_number`."""
    return "suite: python\ntasks:\n" + "".join(
        f"""  - id: add{n}
    prompt: Write `def add{n}(a, b)` returning a + b + {n}.
    entry_point: add{n}
    reference: |
      def add{n}(a, b):
          return a + b + {n}
    cases:
      - {{id: small, args: [1, 2], expect: {3 + n}}}
      - {{id: zero, args: [0, 0], expect: {n}}}
"""
        for n in range(count)
    )


def add_task_number(body: dict[str, Any]) -> int:
    """n of the add{n} task a request asks for."""
    return int(last_user_text(body).split("`def add")[1].split("(")[0])


def good_script() -> Script:
    return by_prompt(
        {
            "def add": Reply(GOOD_CODE),
            "lines": Reply("```bash\nwc -l < data.txt\n```"),
            "weather": [
                Reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}]),
                Reply("It is cloudy in Paris."),
            ],
            "Alice": ALICE_TURNS,
        }
    )


def bad_script() -> Script:
    return by_prompt(
        {
            "def add": Reply(WRONG_CODE),
            "lines": Reply("```bash\nwc -l < da", finish_reason="length"),
            "weather": Reply("I cannot check the weather."),
            "Alice": [
                Reply(tool_calls=[{"name": "send_email", "arguments": {"to": "bob@example.com"}}]),
                Reply("Done."),
            ],
        }
    )


def thinker_script() -> Script:
    """Right answers, wrapped in thinking that itself holds a wrong code block."""
    return by_prompt(
        {
            "def add": Reply(f"<think>maybe\n{WRONG_CODE}\nno.</think>\n{GOOD_CODE}"),
            "lines": Reply(
                "```bash\nwc -l < data.txt\n```", reasoning_content="```bash\nrm -rf x\n```"
            ),
        },
        default=Reply("</think>nothing to say"),
    )


DOUBLE_TASKS = """\
suite: python
tasks:
  - id: double
    prompt: Write `def double(x)` returning twice x.
    entry_point: double
    reference: |
      def double(x):
          return 2 * x
    cases:
      - {id: two, args: [2], expect: 4}
"""
THINKING = "I will work this out one careful step at a time"  # 11 tokens


def seeded_script() -> Script:
    """Answers that depend on the request's seed, some long enough for small budgets to cut:

    - add: 11 tokens of thinking, then the code (10 tokens): right for an even seed, wrong
      for an odd one;
    - double: always wrong;
    - count_lines: 11 tokens of thinking, then the command (4 tokens): always right;
    - weather: a call (2 tokens), then 1 token of text: always right;
    - lookup_then_email: right (three turns of at most 2 tokens) when the seed is 2 mod 4,
      else an email to the wrong address.
    """

    def script(body: dict[str, Any]) -> Reply:
        seed = int(body.get("seed") or 0)
        wrong_alice = [
            Reply(tool_calls=[{"name": "send_email", "arguments": {"to": "bob@example.com"}}]),
            Reply("Done."),
        ]
        return by_prompt(
            {
                "def add": Reply(GOOD_CODE if seed % 2 == 0 else WRONG_CODE, THINKING),
                "def double": Reply("```python\ndef double(x):\n    return x + 1\n```"),
                "lines": Reply("```bash\nwc -l < data.txt\n```", THINKING),
                "weather": [
                    Reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}]),
                    Reply("Cloudy."),
                ],
                "Alice": ALICE_TURNS if seed % 4 == 2 else wrong_alice,
            }
        )(body)

    return script


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The records of a results file the plugin wrote: every line of it a whole record."""
    found = history.read_jsonl(path)
    assert not found.unreadable, f"{found.unreadable} unreadable lines in {path}"
    return found.records


def comparison_cells(page: str) -> list[dict[str, str]]:
    """The rows of an HTML report's comparison table: each cell's text by its heading."""
    table = page.split("<table id=comparison>")[-1].split("</table>")[0]
    head = re.findall(r"<th>(.*?)</th>", table.split("</thead>")[0])
    rows = re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>")[1])
    cell = re.compile(r"<t[hd][^>]*>(.*?)</t[hd]>")
    return [
        dict(zip(head, (html.unescape(re.sub(r"<[^>]+>", "", c)) for c in cell.findall(row)),
                 strict=True))
        for row in rows
    ]  # fmt: skip


def case_outcomes(rows: list[dict[str, Any]]) -> dict[tuple[str, str, str, str], str]:
    """(model, suite, task, case) -> outcome, from JSONL rows."""
    return {
        (row["model"], task["suite"], task["task"], case["id"]): case["outcome"]
        for row in rows
        for task in row["results"]
        for case in task["cases"]
    }


# The words of pytest's short test summary for benchmark items (the plugin names its outcomes).
SUMMARY_WORDS = ("PASSED", "FAILED", "ERROR", "NO ANSWER", "TRUNCATED", "TIMEOUT")
NOT_PASSED = frozenset(SUMMARY_WORDS) - {"PASSED"}


def short_summary(lines: list[str]) -> dict[str, str]:
    """node id -> its word in the short test summary (-rA, -rf)."""
    outcomes = {}
    for line in lines:
        word = next((w for w in SUMMARY_WORDS if line.startswith(w + " ")), None)
        nodeid = line[len(word) + 1 :].split(" - ")[0] if word else ""
        if word and "::" in nodeid:
            outcomes[nodeid] = word
    return outcomes


def not_passed(lines: list[str]) -> list[str]:
    """The node ids the short test summary lists as anything but passed, in order."""
    return [nodeid for nodeid, word in short_summary(lines).items() if word in NOT_PASSED]
