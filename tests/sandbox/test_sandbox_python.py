"""run_python semantics, on every tier."""

from __future__ import annotations

import textwrap

import pytest

from pytest_llmbench.sandbox.base import PyCall
from pytest_llmbench.sandbox.tiers import IsolatedSandbox, make_sandbox

ADD = "def add(a, b):\n    return a + b\n"


def test_plain_values_come_back_with_exact_types(sandbox: IsolatedSandbox) -> None:
    code = "def echo(x):\n    return x\n"
    values = [
        None, True, False, 0, -7, 2**80, 1.5, float("inf"), "", "héllo\udc80", [1, [2]],
        (1, (2, [3])), {"a": (1,), "b": {"c": None}}, [], (), {},
    ]  # fmt: skip
    outcomes = sandbox.run_python(code, "echo", [PyCall(args=(value,)) for value in values])
    assert [o.status for o in outcomes] == ["ok"] * len(values)
    for value, outcome in zip(values, outcomes, strict=True):
        assert outcome.value == value
        assert repr(outcome.value) == repr(value)  # tuple vs list, bool vs int, 1 vs 1.0


def test_setup_and_call_expression_use_a_fresh_namespace_per_call(
    sandbox: IsolatedSandbox,
) -> None:
    code = textwrap.dedent(
        """
        COUNT = []
        class Cache:
            def __init__(self, size):
                self.size = size
                COUNT.append(1)
            def get(self, key):
                return (self.size, key, len(COUNT))
        """
    )
    calls = [
        PyCall(setup="c = Cache(2)", call="c.get(5)"),
        PyCall(setup="c = Cache(3)\nc2 = Cache(4)", call="c.get(6)"),
        PyCall(call="'c' in globals()"),
    ]
    outcomes = sandbox.run_python(code, "Cache", calls)
    assert [o.value for o in outcomes] == [(2, 5, 1), (3, 6, 2), False]


def test_args_and_kwargs(sandbox: IsolatedSandbox) -> None:
    code = "def f(a, b=0, *, c=1):\n    return [a, b, c]\n"
    (outcome,) = sandbox.run_python(code, "f", [PyCall(args=(1,), kwargs={"c": 3})])
    assert outcome.value == [1, 0, 3]


def test_raised_exception_reports_type_name_and_message(sandbox: IsolatedSandbox) -> None:
    code = "import json\ndef f(x):\n    if x == 1: raise ValueError('bad x')\n    json.loads('{')\n"
    outcomes = sandbox.run_python(code, "f", [PyCall(args=(1,)), PyCall(args=(2,))])
    assert (outcomes[0].status, outcomes[0].exception, outcomes[0].detail) == (
        "raised",
        "ValueError",
        "bad x",
    )
    assert outcomes[1].status == "raised"
    assert outcomes[1].exception == "json.decoder.JSONDecodeError"


@pytest.mark.parametrize(
    ("code", "needle"),
    [
        ("def add(a, b) return a + b\n", "SyntaxError"),
        ("raise RuntimeError('at import')\n", "RuntimeError: at import"),
        ("def other():\n    pass\n", "defines no `add`"),
        ("import sys\nsys.exit(4)\n", "SystemExit"),
    ],
)
def test_code_that_does_not_load_gives_load_error_for_every_call(
    sandbox: IsolatedSandbox, code: str, needle: str
) -> None:
    outcomes = sandbox.run_python(code, "add", [PyCall(args=(1, 2)), PyCall(args=(3, 4))])
    assert [o.status for o in outcomes] == ["load_error", "load_error"]
    assert needle in outcomes[0].detail


def test_interpreter_exit_while_loading_is_a_load_error(sandbox: IsolatedSandbox) -> None:
    outcomes = sandbox.run_python("import os\nos._exit(3)\n", "f", [PyCall(), PyCall()])
    assert [o.status for o in outcomes] == ["load_error", "load_error"]


def test_a_hanging_call_times_out_alone(sandbox: IsolatedSandbox) -> None:
    code = ADD + "def spin():\n    while True:\n        pass\n"
    calls = [
        PyCall(args=(1, 2)),
        PyCall(call="spin()", timeout_s=0.5),
        PyCall(args=(3, 4)),
    ]
    outcomes = sandbox.run_python(code, "add", calls)
    assert [o.status for o in outcomes] == ["ok", "timeout", "ok"]
    assert outcomes[2].value == 7
    assert outcomes[1].seconds > 0.4  # CPU time: on a busy machine, later in wall time


def test_load_that_hangs_times_out_every_call(sandbox: IsolatedSandbox) -> None:
    from pytest_llmbench.sandbox.pyrunner import PythonRunner

    runner = PythonRunner(sandbox.python.launcher, load_timeout_s=0.5, startup_s=1.0)
    outcomes = runner.run("while True:\n    pass\n", "f", [PyCall(), PyCall()])
    assert [o.status for o in outcomes] == ["timeout", "timeout"]


@pytest.mark.parametrize(
    ("expression", "status"),
    [
        ("__import__('os')._exit(0)", "crashed"),
        ("__import__('sys').exit(0)", "crashed"),
        ("exit()", "crashed"),
        ("__import__('os').kill(__import__('os').getpid(), 9)", "crashed"),
        ("(_ for _ in ()).throw(KeyboardInterrupt())", "raised"),
    ],
)
def test_a_dying_call_fails_alone(sandbox: IsolatedSandbox, expression: str, status: str) -> None:
    outcomes = sandbox.run_python(
        ADD, "add", [PyCall(args=(1, 1)), PyCall(call=expression), PyCall(args=(2, 2))]
    )
    assert [o.status for o in outcomes] == ["ok", status, "ok"]
    assert outcomes[2].value == 4


@pytest.mark.parametrize(
    "expression",
    [
        "{1, 2}",
        "b'bytes'",
        "type('I', (int,), {})(3)",
        "type('S', (str,), {})('x')",
        "{1: 'int key'}",
        "object()",
        "add",
        "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
        "'x' * (2 * 1024 * 1024)",
        "list(range(200000))",
        "10 ** 5000",
    ],
)
def test_results_that_are_not_plain_data_are_bad_results(
    sandbox: IsolatedSandbox, expression: str
) -> None:
    (outcome,) = sandbox.run_python(ADD, "add", [PyCall(call=expression)])
    assert outcome.status == "bad_result", outcome


def test_each_call_starts_from_the_loaded_module(sandbox: IsolatedSandbox) -> None:
    # The second call patches a builtin the runner itself uses to frame results: that must
    # change only what the call returns, and nothing for the next call.
    code = "STATE = []\ndef f():\n    STATE.append(1)\n    return len(STATE)\n"
    calls = [
        PyCall(),
        PyCall(setup="import builtins\nbuiltins.len = lambda x: 99"),
        PyCall(),
    ]
    assert [o.value for o in sandbox.run_python(code, "f", calls)] == [1, 99, 1]


def test_runs_debian_python_isolated_with_a_fixed_hash_seed(sandbox: IsolatedSandbox) -> None:
    code = (
        "import os, sys\n"
        "def f():\n"
        "    return [sys.executable, sys.flags.no_user_site, sys.flags.safe_path,\n"
        "            sys.flags.hash_randomization, sorted(k for k in os.environ if 'PY' in k)]\n"
    )
    (outcome,) = sandbox.run_python(code, "f", [PyCall()])
    assert outcome.status == "ok", outcome
    assert outcome.value == ["/usr/bin/python3", 1, True, 0, ["PYTHONHASHSEED"]]


def test_the_same_code_orders_a_set_of_strings_the_same_way_every_run(
    sandbox: IsolatedSandbox,
) -> None:
    """A model's `list(set(s))` passed in one run and failed in the next when every sandboxed
    interpreter drew its own hash seed: the verdict must not depend on the run."""
    code = "def f(words):\n    return list(set(words))\n"
    words = [f"w{i}" for i in range(40)] + ["mississippi", "banana", "apple"]
    runs = []
    for _ in range(3):  # a fresh sandbox each time: a python session would keep its seed
        fresh = make_sandbox(sandbox.tier)
        try:
            runs.append(fresh.run_python(code, "f", [PyCall(args=(words,))])[0].value)
        finally:
            fresh.close()
    assert all(run == runs[0] for run in runs), runs


def test_no_calls_means_no_outcomes(sandbox: IsolatedSandbox) -> None:
    assert sandbox.run_python(ADD, "add", []) == []


def test_killing_the_fork_server_fails_only_that_call(sandbox: IsolatedSandbox) -> None:
    # The task's fork-server dies; a new one (a new sandbox in the reduced tier, a new task
    # of the same session in the full tier) serves the rest.
    kill_parent = "__import__('os').kill(__import__('os').getppid(), 9) or 'survived'"
    outcomes = sandbox.run_python(
        ADD, "add", [PyCall(args=(1, 1)), PyCall(call=kill_parent), PyCall(args=(2, 2))]
    )
    assert outcomes[0].value == 2 and outcomes[2].value == 4
    assert outcomes[1].status == "crashed"
