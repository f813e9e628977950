"""xdist scheduling by server: all the items of the models that share a server go to one worker.

A server runs one model at a time: two workers loading two models on one LM Studio would serve
requests with both loaded at once, skewing speed and exhausting memory. So the unit of work is
the server (all replicas of a model count as its servers; models whose servers overlap share a
unit, and the embedded backend's servers share the machine's cores, so they are one unit too).
Within a worker, items keep the run's model order, so each model loads once. Test functions
using the `llm` fixture go with their model's task files (their id ends with the model). `-n`
spreads models over *different* endpoints. pytest 9.2 broke `--dist loadgroup`, so the unit is
read from the node id instead.
"""

from __future__ import annotations

from typing import Any

import pytest
from xdist.scheduler import LoadScopeScheduling  # type: ignore[import-untyped]

from ..options import Settings
from ..taskfiles.selection import model_of_id


def server_units(settings: Settings) -> dict[str, str]:
    """model -> the name of its unit of work: models whose servers overlap share one."""
    from ..exchange import PSEUDO_MODELS

    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for model in settings.models:
        if model in PSEUDO_MODELS:
            continue
        if settings.backend == "embedded":
            servers = ["embedded:this machine"]
        else:
            servers = [f"{settings.backend}@{url or 'default'}" for url in settings.urls_for(model)]
        for server in servers:
            parent[find(server)] = find(f"model:{model}")
    return {
        model: find(f"model:{model}") for model in settings.models if model not in PSEUDO_MODELS
    }


class ByServerScheduling(LoadScopeScheduling):  # type: ignore[misc]
    def __init__(self, config: pytest.Config, log: Any, settings: Settings) -> None:
        super().__init__(config, log)
        self._units = server_units(settings)
        self._models = settings.models

    def _split_scope(self, nodeid: str) -> str:
        model = model_of_id(nodeid, self._models)
        if model is None:
            return str(super()._split_scope(nodeid))
        return "llmbench-server:" + self._units.get(model, "model:" + model)


class ByServerPlugin:
    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        from .session import STATE

        settings = config.stash[STATE].settings
        if not settings.models:
            return None
        if config.getoption("dist") not in ("load", "loadscope", "loadgroup"):
            return None
        return ByServerScheduling(config, log, settings)

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """Workers record under the controller's run id, so one run is one run in the store."""
        from .session import STATE

        node.workerinput["llmbench_run_id"] = node.config.stash[STATE].run_id
