"""The start-up check of the named models against what their servers have.

Before any item runs, each server that serves a named model is asked for its model list once.
A model it does not have is skipped: one line says which model, which server, and how to list
what is installed; its items are deselected (no errors, no 0/N row) and its JSONL line says
`skipped: not installed`. A server that does not answer stops the run with one line.

A server whose list cannot be read (it answers, but not with a list) is not judged here: loading
the model reports what is wrong, as before.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ..backends import make_backend
from ..backends.base import Backend
from ..exchange import PSEUDO_MODELS, BackendError, BackendUnreachable
from ..options import Settings
from .functions import item_model

if TYPE_CHECKING:
    from ..reporting.jsonl import RunInfo

NOT_INSTALLED = "not installed"
# How xdist's controller hands the verdict to its workers (they must deselect the same items).
WORKER_KEY = "llmbench_not_installed"


@dataclass(frozen=True)
class Missing:
    model: str
    backend: str  # --llmbench-backend name
    url: str | None  # the server's root; None for the embedded backend

    def line(self) -> str:
        where = f" at {self.url}" if self.url else ""
        listing = f"pytest --llmbench-list --llmbench-backend={self.backend}"
        if self.url:
            listing += f" --llmbench-base-url={self.url}"
        return (
            f"llmbench: skipping {self.model}: not installed in {self.backend}{where} "
            f"(installed models: {listing})"
        )


@dataclass(frozen=True)
class Verdict:
    missing: tuple[Missing, ...] = ()

    @property
    def skipped(self) -> frozenset[str]:
        return frozenset(m.model for m in self.missing)


VERDICT = pytest.StashKey[Verdict]()


def _has(backend: Backend, backend_name: str, model: str, listed: Sequence[str]) -> bool:
    if model in listed:
        return True
    if backend_name == "embedded":
        # Any .gguf path is a model of the embedded backend; same_model there says nothing.
        return model.lower().endswith(".gguf") and Path(model).expanduser().is_file()
    same = getattr(backend, "same_model", None)
    return callable(same) and any(same(model, name) for name in listed)


def _servers(settings: Settings) -> dict[str | None, list[str]]:
    """The real models by each URL that serves them (None: the backend's default); a model
    with replicas is listed under each of them."""
    by_url: dict[str | None, list[str]] = {}
    for model in settings.models:
        if model not in PSEUDO_MODELS:
            for url in settings.urls_for(model):
                by_url.setdefault(url, []).append(model)
    return by_url


def check(settings: Settings) -> Verdict:
    """Ask every server for its models; raises BackendUnreachable for one that does not answer.
    A model missing from any of its servers (a replica too) is skipped, named with the first
    server that lacks it."""
    missing: dict[str, Missing] = {}
    for url, models in _servers(settings).items():
        backend = make_backend(settings.backend, url, timeout_s=min(settings.timeout, 30.0))
        try:
            listed = [info.key for info in backend.list_models()]
        except BackendUnreachable:
            raise
        except BackendError:
            continue  # it answers but cannot list: the load will say what is wrong
        finally:
            backend.close()
        if not listed and settings.backend == "openai":
            continue  # an OpenAI-compatible server without a model list: nothing to go by
        root = None if settings.backend == "embedded" else backend.base_url
        for model in models:
            if model not in missing and not _has(backend, settings.backend, model, listed):
                missing[model] = Missing(model, settings.backend, root)
    return Verdict(tuple(missing[m] for m in settings.models if m in missing))


def run_check(config: pytest.Config, settings: Settings) -> Verdict:
    """The check as the run needs it: once, on the controller; stops on a server that does not
    answer."""
    if VERDICT not in config.stash:
        try:
            config.stash[VERDICT] = check(settings)
        except BackendUnreachable as exc:
            # A usage error is pytest's one-line stop before anything runs (exit code 4);
            # pytest.exit here would print the message twice.
            raise pytest.UsageError(f"llmbench: {exc.message}") from None
    return config.stash[VERDICT]


def worker_verdict(workerinput: dict[str, Any]) -> Verdict:
    """The controller's verdict, as an xdist worker received it."""
    missing = workerinput.get(WORKER_KEY) or ()
    return Verdict(tuple(Missing(*entry) for entry in missing))


def for_worker(verdict: Verdict) -> list[tuple[str, str, str | None]]:
    """Plain data for xdist's workerinput."""
    return [(m.model, m.backend, m.url) for m in verdict.missing]


def deselect(config: pytest.Config, items: list[pytest.Item], skipped: Iterable[str]) -> None:
    """Drop the items of models that are not installed (in place), as pytest deselection."""
    skipped = set(skipped)
    if not skipped:
        return
    dropped = [item for item in items if item_model(item) in skipped]
    if dropped:
        items[:] = [item for item in items if item_model(item) not in skipped]
        config.hook.pytest_deselected(items=dropped)


def jsonl_lines(verdict: Verdict, run: RunInfo) -> list[str]:
    """One JSONL line per skipped model: the run's metadata and `skipped`, no score."""
    lines = []
    for m in verdict.missing:
        record: dict[str, Any] = {
            "run_id": run.run_id,
            "timestamp": run.timestamp,
            "plugin_version": run.plugin_version,
            "tasks_digest": None,  # no case of the model ran
            "interrupted": run.interrupted,
            "model": m.model,
            "backend": m.backend,
            "base_url": m.url,
            "settings": run.settings,
            "skipped": NOT_INSTALLED,
            "results": [],
        }
        lines.append(json.dumps(record))
    return lines
