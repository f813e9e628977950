"""xdist scheduling by model: all of one model's items go to one worker, in order.

Grouping keeps each model loaded once, on one worker; different models can run side by side
on different workers (on different servers with --llmbench-endpoint). pytest 9.2 broke
`--dist loadgroup`, so the grouping reads the model straight from the node id instead.
"""

from __future__ import annotations

from typing import Any

import pytest
from xdist.scheduler import LoadScopeScheduling  # type: ignore[import-untyped]


def model_of(nodeid: str) -> str | None:
    """The model key of a benchmark item's node id (`file::task::case[model]`)."""
    tail = nodeid.rsplit("::", 1)[-1]
    if not tail.endswith("]") or "[" not in tail:
        return None
    return tail[tail.index("[") + 1 : -1]


class ByModelScheduling(LoadScopeScheduling):  # type: ignore[misc]
    def _split_scope(self, nodeid: str) -> str:
        model = model_of(nodeid)
        if model is None:
            return str(super()._split_scope(nodeid))
        return "llmbench-model:" + model


class ByModelPlugin:
    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        from .session import STATE

        if not config.stash[STATE].settings.models:
            return None
        if config.getoption("dist") not in ("load", "loadscope", "loadgroup"):
            return None
        return ByModelScheduling(config, log)
