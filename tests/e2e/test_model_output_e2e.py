"""End-to-end: what a model writes is shown, never obeyed. Escape sequences in its answer do
not reach the terminal raw, and what its command does to the work dir is described in words."""

from __future__ import annotations

from typing import Any

import pytest
from fakes.bench import read_jsonl
from fakes.openai_server import Reply, by_prompt

from pytest_llmbench.display import printable

HOSTILE = (
    "\x1b[2J\x1b[H"  # clear the screen, cursor home
    "\x1b]0;pwned\x07"  # retitle the terminal window
    "\x1b]52;c;ZWNobyBoaQ==\x07"  # write the clipboard
    "\x00\x9b31m\u202etxt.exe"  # NUL, a C1 CSI, a right-to-left override
)


def test_model_text_in_the_terminal_is_escaped(
    bench_dir: pytest.Pytester, fake_openai: Any
) -> None:
    answer = f"{HOSTILE}\n```python\ndef add(a, b):\n    return a - b  # {HOSTILE}\n```"
    server = fake_openai({"m": by_prompt({"def add": Reply(answer)})})
    result = bench_dir.runpytest(
        "--llmbench-backend=openai", f"--llmbench-base-url={server.url}", "--models=m",
        "--llmbench-jsonl=out.jsonl", "-p", "no:cacheprovider", "-k", "add", "--color=no",
    )  # fmt: skip
    result.assert_outcomes(failed=3)
    shown = result.stdout.str()
    assert "answer of m:" in shown
    for raw in ("\x1b", "\x07", "\x00", "\x9b", "\u202e"):
        assert raw not in shown
    assert "\\x1b[2J" in shown and "\\x1b]0;pwned\\x07" in shown and "\\u202e" in shown
    # the JSONL keeps results, escaped by JSON itself
    (row,) = read_jsonl(bench_dir.path / "out.jsonl")
    assert row["total"] == 3


def test_printable_spells_out_controls_and_keeps_lines() -> None:
    assert printable("a\tb\nc") == "a\tb\nc"
    assert printable("\x1b[31mred\x1b[0m") == "\\x1b[31mred\\x1b[0m"
    assert printable("\x00\x7f\x85\u2066") == "\\x00\\x7f\\x85\\u2066"
    assert printable("naïve — ünïcödé") == "naïve — ünïcödé"


CLI_TASKS = """\
suite: cli
tasks:
  - id: flood
    prompt: Print the word yes, once.
    reference: echo yes
    timeout_s: 60
    cases:
      - {id: says_yes, stdout: "yes"}
  - id: write_out
    prompt: Write hello into out.txt.
    reference: echo hello > out.txt
    cases:
      - {id: written, file: {name: out.txt, content: hello}}
      - {id: like_reference, matches_reference: true}
"""


def test_floods_and_fifos_are_described_in_words(
    pytester: pytest.Pytester, fake_openai: Any
) -> None:
    pytester.makefile(".yaml", **{"tasks/cli/odd": CLI_TASKS})
    endless = "[sys.stdout.write('y' * 65536) for _ in iter(int, 1)]"
    flood = f'```bash\npython3 -c "import sys; {endless}"\n```'
    fifo = "```bash\npython3 -c \"import os; os.mkfifo('out.txt')\"\n```"
    server = fake_openai({"m": by_prompt({"yes": Reply(flood), "hello": Reply(fifo)})})
    result = pytester.runpytest(
        "--llmbench-backend=openai", f"--llmbench-base-url={server.url}", "--models=m",
        "--llmbench-jsonl=out.jsonl", "-p", "no:cacheprovider",
    )  # fmt: skip
    result.assert_outcomes(failed=3)
    (row,) = read_jsonl(pytester.path / "out.jsonl")
    details = {c["id"]: c["detail"] for t in row["results"] for c in t["cases"]}
    assert details["says_yes"].startswith("stdout exceeded 67,108,864 bytes, so `python3")
    assert details["written"] == "out.txt is a FIFO, expected a regular file"
    assert details["like_reference"] == "out.txt is a FIFO, expected a regular file"
    text = result.stdout.str()
    assert "exited None" not in text and "a other" not in text
