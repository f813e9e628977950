"""Unit tests: trimming a python answer to its definitions (suites/sanitize.py)."""

from __future__ import annotations

import ast
import textwrap

import pytest

from pytest_llmbench.suites.sanitize import sanitize


def trim(code: str) -> tuple[str, tuple[int, ...]]:
    result = sanitize(textwrap.dedent(code))
    return result.code, result.removed


def statements(code: str) -> list[str]:
    """The top-level statements of `code`, unparsed, for comparing structure."""
    return [ast.unparse(node) for node in ast.parse(code).body]


def test_definitions_stay_and_script_lines_go() -> None:
    code, removed = trim(
        """\
        import math
        from typing import List

        LIMIT = 10
        table: dict[str, int] = {}
        counter = 0
        counter += 1

        def area(r):
            return math.pi * r * r

        class Shape:
            sides = 0

        print(area(2))
        area(3)
        assert area(1) == 4, "a wrong self-test"
        for r in range(3):
            print(area(r))
        while False:
            pass
        del counter
        raise SystemExit(0)
        """
    )
    assert statements(code) == [
        "import math",
        "from typing import List",
        "LIMIT = 10",
        "table: dict[str, int] = {}",
        "counter = 0",
        "counter += 1",
        "def area(r):\n    return math.pi * r * r",
        "class Shape:\n    sides = 0",
    ]
    assert removed == (15, 16, 17, 18, 20, 22, 23)


def test_nothing_to_trim_leaves_the_text_as_it_is() -> None:
    source = "# a comment\ndef f(x):  # why\n    return x\n\n\nCONST = f(2)\n"
    result = sanitize(source)
    assert result.code == source and not result.trimmed


def test_assignments_that_call_are_kept() -> None:
    code, removed = trim(
        """\
        def compute():
            return 41
        x = compute() + 1
        y, z = divmod(x, 5)
        """
    )
    assert statements(code)[1:] == ["x = compute() + 1", "y, z = divmod(x, 5)"]
    assert removed == ()


def test_main_block_goes_without_counting_as_trimmed() -> None:
    # Answers run as module `solution`, so the block never ran: dropping it changes nothing.
    for guard in ('__name__ == "__main__"', "'__main__' == __name__"):
        result = sanitize(f"def f():\n    return 1\nif {guard}:\n    assert f() == 2\n")
        assert statements(result.code) == ["def f():\n    return 1"]
        assert not result.trimmed


def test_main_block_with_an_else_keeps_what_the_else_defines() -> None:
    code, removed = trim(
        """\
        if __name__ == "__main__":
            print("demo")
        else:
            import json
            print("imported")
        """
    )
    assert statements(code) == ["if __name__ == '__main__':\n    pass\nelse:\n    import json"]
    assert removed == (2, 5)


def test_top_level_try_keeps_conditional_imports() -> None:
    code, removed = trim(
        """\
        try:
            from functools import cache
        except ImportError:
            print("old python")
            cache = lambda f: f
        finally:
            print("checked")

        @cache
        def fib(n):
            return n if n < 2 else fib(n - 1) + fib(n - 2)

        try:
            print(fib(10))
        except Exception as error:
            print(error)
        """
    )
    assert statements(code) == [
        "try:\n    from functools import cache\nexcept ImportError:\n    cache = lambda f: f\n"
        "finally:\n    pass",
        "@cache\ndef fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)",
    ]
    assert removed == (4, 7, 14, 16)


def test_top_level_if_keeps_conditional_definitions() -> None:
    code, removed = trim(
        """\
        import sys
        if sys.version_info >= (3, 9):
            def merge(a, b):
                return a | b
            print("new")
        elif check():
            print("checked")
        if DEBUG:
            print("debug")
        """
    )
    assert statements(code) == [
        "import sys",
        "if sys.version_info >= (3, 9):\n\n    def merge(a, b):\n        return a | b",
    ]
    assert removed == (5, 7, 9)


def test_interpreter_set_up_calls_stay() -> None:
    code, removed = trim(
        """\
        import sys
        sys.setrecursionlimit(10 ** 6)
        from sys import set_int_max_str_digits
        set_int_max_str_digits(100000)
        sys.stdout.write("hello")
        """
    )
    assert statements(code) == [
        "import sys",
        "sys.setrecursionlimit(10 ** 6)",
        "from sys import set_int_max_str_digits",
        "set_int_max_str_digits(100000)",
    ]
    assert removed == (5,)


def test_docstrings_global_and_type_hints_stay() -> None:
    code, removed = trim(
        '''\
        """Module doc."""
        from __future__ import annotations
        global registry
        registry = []
        ...
        '''
    )
    assert len(statements(code)) == 5 and removed == ()


def test_line_numbers_still_point_into_the_answer() -> None:
    source = 'print("a")\n\ndef f():\n    """doc"""\n    return missing_name\n\nf()\n'
    result = sanitize(source)
    assert result.code.splitlines()[2:5] == source.splitlines()[2:5]
    assert len(result.code.splitlines()) == len(source.splitlines())


def test_statements_sharing_a_line_fall_back_to_the_syntax_tree() -> None:
    result = sanitize("def f():\n    return 1\nprint(f()); y = f()\n")
    assert statements(result.code) == ["def f():\n    return 1", "y = f()"]
    assert result.removed == (3,)


def test_an_answer_of_only_script_lines_keeps_a_valid_module() -> None:
    result = sanitize("print(1)\nprint(2)\n")
    assert result.trimmed
    compile(result.code, "solution.py", "exec")
    assert all(isinstance(node, ast.Pass) for node in ast.parse(result.code).body)


@pytest.mark.parametrize("source", ["def f(:\n    return 1\n", "x = 'unterminated\n", "a\0b"])
def test_code_that_does_not_parse_is_left_for_the_sandbox_to_report(source: str) -> None:
    result = sanitize(source)
    assert result.code == source and not result.trimmed


def test_non_ascii_text_keeps_its_offsets() -> None:
    result = sanitize('s = "été"; print(s)\nt = "ü"\nprint(t)\n')
    assert statements(result.code) == ["s = 'été'", "t = 'ü'"]
