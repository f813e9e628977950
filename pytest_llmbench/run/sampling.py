"""More than one score from a run's answers: repeated samples, and smaller token budgets.

Repeats are independent samples of one task: repeat r asks with a seed derived from the run's
seed and r (repeat 0 with the run's seed itself, so one repeat is an ordinary run). Budgets
cost no generation: each answer is generated once at the largest budget, and every smaller
budget is scored from the answer cut where that budget would have stopped it
(`Suite.within_budget`); only a cut answer that still holds something to run goes back to the
sandbox.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from ..sandbox.base import Sandbox
from ..suites.base import ExecT, Generation, Suite, TaskT


def repeat_seed(seed: int | None, repeat: int) -> int | None:
    """The sampling seed of repeat `repeat`. Without a run seed the server draws its own, and
    repeats differ as any two requests do (at temperature 0 they may not differ at all)."""
    if repeat == 0 or seed is None:
        return seed
    digest = hashlib.sha256(f"{seed}:{repeat}".encode()).digest()
    return int.from_bytes(digest[:4], "big") >> 1  # 31 bits: every server takes that


def budget_runs(
    suite: Suite[TaskT, Any, ExecT],
    task: TaskT,
    generation: Generation,
    execution: ExecT,
    budgets: Sequence[int],
    sandbox: Sandbox | None,
) -> dict[int, tuple[Generation, ExecT]]:
    """Per budget, the generation a run capped there would have produced, and its execution.

    An answer that fits a budget is the same answer: its execution is reused. Cut answers
    that are equal (the same answer text, both cut or not) share one execution.
    """
    executions: dict[tuple[str, bool], ExecT] = {
        (generation.answer, generation.truncated): execution
    }
    runs: dict[int, tuple[Generation, ExecT]] = {}
    for budget in sorted(budgets):
        within = suite.within_budget(task, generation, budget)
        key = (within.answer, within.truncated)
        if key not in executions:
            executions[key] = suite.execute(task, within, sandbox)
        runs[budget] = (within, executions[key])
    return runs
