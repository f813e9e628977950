"""The README's table of bundled tasks says what tasks/ holds."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from pytest_llmbench.spec import load_task_file

REPO = Path(__file__).resolve().parents[2]


def test_readme_task_table_matches_the_task_files() -> None:
    actual: dict[tuple[str, str], set[str]] = defaultdict(set)
    cases: dict[tuple[str, str], int] = defaultdict(int)
    for path in sorted((REPO / "pytest_llmbench" / "tasks").rglob("*.yaml")):
        loaded = load_task_file(path)
        for task in loaded.tasks:
            actual[(loaded.suite, task.difficulty or "-")].add(task.id)
            cases[(loaded.suite, task.difficulty or "-")] += len(task.cases)
    documented: dict[tuple[str, str], set[str]] = {}
    for line in (REPO / "README.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0] in ("python", "cli", "tooling"):
            suite, tier, n_tasks, n_cases, ids = cells
            documented[(suite, tier)] = set(ids.split(", "))
            assert int(n_tasks) == len(actual[(suite, tier)]), (suite, tier)
            assert int(n_cases) == cases[(suite, tier)], (suite, tier)
    assert documented == dict(actual)
