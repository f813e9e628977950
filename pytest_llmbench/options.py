"""Command-line options with ini and LLMBENCH_* environment twins, resolved into one Settings.

Precedence: command line > environment > ini file > default. Settings is plain frozen data so
that xdist can ship it to workers unchanged.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

DEFAULT_MAX_TOKENS = 16384
DEFAULT_TEMPERATURE = 0.2
# Sent with every request unless `--llmbench-seed=none`: with a seed, sampling at any
# temperature draws the same tokens again, so a run can be repeated exactly (where the server
# decodes each answer alone, see backends/inflight.py). Not 0: some servers read 0 as "no seed".
DEFAULT_SEED = 1
DEFAULT_TIMEOUT_S = 600.0
# Requests in flight when the server cannot say how many it serves at once: LM Studio's default
# of parallel predictions; a server that serves fewer queues the rest.
DEFAULT_CONCURRENCY = 4


@dataclass(frozen=True)
class Option:
    """One setting: its flag, its ini/env twins, how to parse it and its help text."""

    dest: str
    flag: str
    help: str
    default: Any = None
    parse: Callable[[str], Any] = str
    is_flag: bool = False
    ini_type: str = "string"
    metavar: str | None = None
    short: str | None = None  # the README's short name, registered only when it is free

    @property
    def name(self) -> str:
        """The twins' name, from the flag: --llmbench-context gives context."""
        return self.flag.lstrip("-").removeprefix("llmbench-").replace("-", "_")

    @property
    def ini(self) -> str:
        return "llmbench_" + self.name

    @property
    def env(self) -> str:
        return "LLMBENCH_" + self.name.upper()


def _models(text: str) -> tuple[str, ...]:
    return tuple(m.strip() for m in text.replace("\n", ",").split(",") if m.strip())


def _bool(text: str) -> bool:
    return text.strip().lower() in ("1", "true", "yes", "on")


def _on_off(text: str) -> bool:
    value = text.strip().lower()
    if value in ("on", "true", "yes", "1"):
        return True
    if value in ("off", "false", "no", "0"):
        return False
    raise pytest.UsageError(f"--llmbench-sanitize must be on or off (got {text!r})")


Endpoints = tuple[tuple[str, tuple[str, ...]], ...]  # (model, its servers' bare URLs)


def _replica(item: str, url: str) -> tuple[str, int | None]:
    """`URL*N`: the bare URL and N, the requests that server takes at once (None without)."""
    bare, star, count = url.rpartition("*")
    if not star:
        return url, None
    if not bare or not re.fullmatch(r"[0-9]+", count) or int(count) < 1:
        raise pytest.UsageError(
            f"--llmbench-endpoint expects URL*N with N a positive whole number, got {item!r}"
        )
    return bare, int(count)


def _endpoints(text: str) -> tuple[Endpoints, tuple[tuple[str, int], ...]]:
    """`a=URL1*4,URL2,b=URL3`: a comma-separated word that does not name a model is one more
    replica of the model named before it. Returns the models' bare URLs, and (URL, N) for each
    URL given as `URL*N`."""
    merged: dict[str, list[str]] = {}
    counts: dict[str, int] = {}
    current: str | None = None
    for item in _models(text):
        model, sep, url = item.partition("=")
        if sep and "://" not in model:
            if not model or not url:
                raise pytest.UsageError(f"--llmbench-endpoint expects MODEL=URL, got {item!r}")
            current, url = model, url
        elif current is None:
            raise pytest.UsageError(f"--llmbench-endpoint expects MODEL=URL, got {item!r}")
        else:
            url = item
        url, count = _replica(item, url)
        # N is what the server takes, so it holds for every model the URL serves; the URL
        # given bare elsewhere says nothing against it.
        if count is not None and counts.setdefault(url, count) != count:
            raise pytest.UsageError(
                f"--llmbench-endpoint gives {url} two counts: *{counts[url]} and *{count}"
            )
        urls = merged.setdefault(current, [])
        if url not in urls:
            urls.append(url)
    return tuple((model, tuple(urls)) for model, urls in merged.items()), tuple(counts.items())


def _variants(text: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """`REF=V1,V2` (repeatable, or `REF=V1,V2,REF2=V3`): V1 and V2 are variants of REF (its
    quantisations, context sizes, thinking on and off, another server), compared with it."""
    groups: dict[str, list[str]] = {}
    current: str | None = None
    for item in _models(text):
        reference, sep, variant = item.partition("=")
        if sep:
            if not reference or not variant:
                raise ValueError(item)
            current = reference
        elif current is None:
            raise ValueError(item)
        else:
            variant = item
        if variant == current:
            raise ValueError(item)
        variants = groups.setdefault(current, [])
        if variant not in variants:
            variants.append(variant)
    if not groups:
        raise ValueError(text)
    return tuple((reference, tuple(variants)) for reference, variants in groups.items())


@dataclass(frozen=True)
class Limits:
    """What a model must do to be recommended (--llmbench-limits): each limit optional."""

    min_speed: float | None = None  # decode tokens per second
    max_memory: int | None = None  # bytes
    max_ttft: float | None = None  # seconds, the median time to first token
    suite: str | None = None  # the quality that counts: this suite's (default: all)
    text: str = ""  # as the user wrote it

    def __str__(self) -> str:
        return self.text or "no limits"


_SIZE_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 1 << 10,
               "mib": 1 << 20, "gib": 1 << 30}  # fmt: skip


def parse_size(text: str) -> int:
    """`4GB`, `512 MiB`, `1.5gib`, `2000000000`: bytes."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", text)
    if match is None or match.group(2).lower() not in _SIZE_UNITS:
        raise ValueError(text)
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()])


def _limits(text: str) -> tuple[Limits, ...]:
    """Sets of limits separated by `;`, each `speed>=20,memory<=4GB,ttft<=1.5,suite=python`."""
    sets = []
    for spec in (part.strip() for part in text.split(";")):
        if not spec:
            continue
        values: dict[str, Any] = {}
        for item in (word.strip() for word in spec.split(",")):
            match = re.fullmatch(r"(speed|memory|ttft|suite)\s*(>=|<=|=)\s*(\S.*)", item)
            if match is None:
                raise ValueError(item)
            key, op, value = match.groups()
            wanted = {"speed": ">=", "memory": "<=", "ttft": "<=", "suite": "="}[key]
            if op != wanted:
                raise ValueError(item)
            if key == "speed":
                values["min_speed"] = float(value)
            elif key == "memory":
                values["max_memory"] = parse_size(value)
            elif key == "ttft":
                values["max_ttft"] = float(value)
            else:
                values["suite"] = value.strip()
        sets.append(Limits(**values, text=",".join(w.strip() for w in spec.split(","))))
    if not sets:
        raise ValueError(text)
    return tuple(sets)


def _concurrency(text: str) -> int | str:
    if text.strip().lower() in ("auto", "server"):
        return text.strip().lower()
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text.strip().lower() not in allowed:
            raise ValueError(text)
        return text.strip().lower()

    return parse


def _budgets(text: str) -> tuple[int, ...]:
    values = sorted({int(word) for word in _models(text)})
    if not values or values[0] < 1:
        raise ValueError(text)
    return tuple(values)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


def _seed(text: str) -> int | None:
    """A whole number, or `none`: the server draws a seed of its own for every request."""
    return None if text.strip().lower() == "none" else int(text)


def _audit(text: str) -> str:
    """`N` tasks per model, `P%` of them, or `all` (kept as text; `audit_count` applies it)."""
    value = text.strip().lower()
    audit_count(value, 1)  # raises ValueError on anything else
    return value


def audit_count(spec: str, tasks: int) -> int:
    """How many of a model's `tasks` an --llmbench-audit spec asks for (at least one of any
    share above 0, never more than there are)."""
    if spec == "all":
        return tasks
    if spec.endswith("%"):
        share = float(spec[:-1]) / 100
        if not 0 < share <= 1:
            raise ValueError(spec)
        return min(tasks, max(1, round(share * tasks)))
    return min(tasks, _positive(spec))


def parse_rate(text: str) -> float:
    """`0.75`, `75%` or `75` (a number above 1 is a percentage) as a fraction."""
    value = float(text.strip().removesuffix("%"))
    if text.strip().endswith("%") or value > 1:
        value /= 100
    if not 0 <= value <= 1:
        raise ValueError(f"a pass rate is between 0 and 1 (or 0% and 100%), got {text!r}")
    return value


OPTIONS: tuple[Option, ...] = (
    Option("models", "--llmbench-models", "comma-separated model keys to benchmark, as the "
           "backend names them; 'reference' and 'null' are built-in pseudo-models", (), _models,
           metavar="A,B", short="--models"),
    Option("oracle", "--llmbench-oracle", "model key whose failures flag suspect tasks",
           metavar="KEY", short="--oracle"),
    Option("max_tokens", "--llmbench-max-tokens", "generation cap per request (default 16384; "
           "the embedded backend defaults to what fits its context)", None, int, metavar="N",
           short="--max-tokens"),
    Option("backend", "--llmbench-backend", "backend: lmstudio (default), openai, ollama, "
           "llamacpp, vllm, embedded", "lmstudio", metavar="NAME"),
    Option("base_url", "--llmbench-base-url", "server root, e.g. http://localhost:1234 "
           "(a trailing /v1 is accepted)", metavar="URL"),
    Option("temperature", "--llmbench-temperature", "sampling temperature (default 0.2)",
           DEFAULT_TEMPERATURE, float, metavar="T"),
    Option("seed", "--llmbench-seed", f"sampling seed sent with every request (default "
           f"{DEFAULT_SEED}); none: the server draws one, and answers vary from run to run",
           DEFAULT_SEED, _seed, metavar="N|none"),
    Option("jsonl", "--llmbench-jsonl", "JSONL file results are appended to "
           "(default .llmbench/results.jsonl in the rootdir)", None, Path, metavar="PATH"),
    Option("markdown", "--llmbench-markdown", "write the comparison table as markdown here",
           None, Path, metavar="PATH"),
    Option("html", "--llmbench-html", "write the HTML report of this run here (answers, "
           "transcripts, plots)", None, Path, metavar="PATH"),
    Option("list", "--llmbench-list", "list the backend's installed models and exit",
           False, _bool, is_flag=True, ini_type="bool"),
    Option("timeout", "--llmbench-timeout", "seconds per request (default 600)",
           DEFAULT_TIMEOUT_S, float, metavar="SECONDS"),
    Option("context_length", "--llmbench-context", "context length to load models with",
           None, int, metavar="TOKENS"),
    Option("endpoint", "--llmbench-endpoint", "MODEL=URL[,URL...]: serve this model from other "
           "servers of the same backend; several URLs are replicas sharing its requests; "
           "URL*N: that server takes N requests at once, whatever --llmbench-concurrency says "
           "(repeatable)", (), _endpoints),
    Option("concurrency", "--llmbench-concurrency", "requests in flight per server: auto "
           "(default: one per server process, so each answer is decoded alone and the run is "
           "reproducible; as many as the server takes when answers vary anyway), server (as "
           "many as the server decodes at once: llama-server's slots, LM Studio's parallel "
           f"predictions, else {DEFAULT_CONCURRENCY}; faster, answers then depend on batching), "
           "or N", "auto", _concurrency, metavar="N|auto|server"),
    Option("batch_invariant", "--llmbench-batch-invariant", "the servers give the same tokens "
           "whatever else they decode at once (vLLM started with VLLM_BATCH_INVARIANT=1): keep "
           "their slots busy and still call the run reproducible", False, _bool, is_flag=True,
           ini_type="bool"),
    Option("audit", "--llmbench-audit", "batching audit: generate N tasks (or P%, or all) of "
           "each model that ran several requests at once on one server again, one at a time, "
           "and report the verdicts that flipped", None, _audit, metavar="N|P%|all"),
    Option("cache", "--llmbench-cache", "answer store under .llmbench/: use (reuse finished "
           "answers), refresh (ask again, store the new answers), off", "use",
           _choice("use", "refresh", "off"), metavar="MODE"),
    Option("validate", "--llmbench-validate", "run every task's controls (reference passes, "
           "null and wrong answers fail) and report tasks that fail them", False, _bool,
           is_flag=True, ini_type="bool"),
    Option("isolation", "--llmbench-isolation", "required sandbox tier: full, reduced or auto "
           "(default: the strongest available, never none)", "auto", metavar="TIER"),
    Option("sanitize", "--llmbench-sanitize", "on (default): python answers run without their "
           "top-level calls, asserts, prints and main block; off: as the script they are",
           True, _on_off, metavar="on|off"),
    Option("budgets", "--llmbench-budgets", "token budgets to score, e.g. 512,1024,4096: one "
           "generation at the largest, every smaller one scored from its cut answers",
           (), _budgets, metavar="N,N,..."),
    Option("repeat", "--llmbench-repeat", "samples per task (seeds derived from the run's): "
           "pass@1 averaged over them, pass@k and pass^k, unstable cases, flaky tasks", 1,
           _positive, metavar="K"),
    Option("variants", "--llmbench-variants", "REF=VARIANT[,VARIANT...]: these models are "
           "variants of REF (quantisations, context sizes, thinking on/off, another server): "
           "each is compared with REF, paired, with its cost ratios (repeatable; added to "
           "--models)", (), _variants, metavar="REF=V,V"),
    Option("limits", "--llmbench-limits", "what a recommended model must do, e.g. "
           "speed>=20,memory<=8GB,ttft<=1.5,suite=python: one recommendation line per set "
           "(repeatable)", (), _limits, metavar="SPEC"),
    Option("baseline", "--llmbench-baseline", "compare this run with a baseline at the end: a "
           "JSONL file (its latest run), a run id in the JSONL, or 'latest' (the run before this "
           "one)", metavar="FILE|RUN"),
    Option("fail_under", "--llmbench-fail-under", "gate: exit 7 if a model passed fewer cases "
           "than RATE (a fraction like 0.8, or a percentage); wrong answers alone then exit 0",
           None, parse_rate, metavar="RATE"),
    Option("fail_on_regression", "--llmbench-fail-on-regression", "gate: exit 7 if a model is "
           "significantly worse than in --llmbench-baseline", False, _bool, is_flag=True,
           ini_type="bool"),
)  # fmt: skip


GROUP = "llmbench"
# Options given more than once: their values joined with the separator their parser splits on.
REPEATABLE = {"endpoint": ",", "variants": ",", "limits": ";"}
# Short names another plugin or the project's conftest had already taken, for the header.
SHORT_NAMES_TAKEN = pytest.StashKey[tuple[str, ...]]()

# A path an xdist controller hands a remote worker relative to the project (run/remote.py);
# the worker reads it against its own working directory, the copy's root.
ROOTDIR_ARG = "<rootdir>/"


def read_rootdir_args(args: list[str]) -> None:
    """On a worker, before pytest parses its command line: `<rootdir>/PATH` back to PATH."""
    args[:] = [arg.removeprefix(ROOTDIR_ARG) for arg in args]


def _add(group: pytest.OptionGroup, opt: Option, flag: str, help: str) -> None:
    dest = "llmbench_" + opt.dest
    help = help.replace("%", "%%")  # argparse fills %-placeholders in help texts
    if opt.is_flag:
        group.addoption(flag, action="store_true", default=None, dest=dest, help=help)
    elif opt.dest in REPEATABLE:
        group.addoption(
            flag, action="append", default=None, dest=dest, metavar=opt.metavar, help=help
        )
    else:
        group.addoption(flag, default=None, dest=dest, metavar=opt.metavar, help=help)


def add_options(parser: pytest.Parser) -> None:
    """The `--llmbench-*` options and their ini twins; they always exist."""
    group = parser.getgroup(GROUP, "benchmark local language models")
    for opt in OPTIONS:
        short = f" (short: {opt.short}, unless the project uses it)" if opt.short else ""
        _add(group, opt, opt.flag, f"{opt.help}{short} [env {opt.env}]")
        parser.addini(
            opt.ini,
            help=opt.help,
            type=opt.ini_type,  # type: ignore[arg-type]
            default=None,
        )


def _names_in_use(parser: pytest.Parser) -> set[str]:
    # pytest has no public way to ask which option strings exist; its groups know.
    groups = getattr(parser, "_groups", ())
    return {name for group in groups for option in group.options for name in option.names()}


def add_short_names(parser: pytest.Parser) -> tuple[str, ...]:
    """Register `--models`, `--oracle`, `--max-tokens` where no plugin or conftest registered
    them first (pytest refuses a second registration); returns the ones left to the project.

    Called once the initial conftests are loaded, so a conftest's own `--models` wins.
    """
    group = parser.getgroup(GROUP)
    in_use = _names_in_use(parser)
    taken: list[str] = []
    for opt in OPTIONS:
        if opt.short is None:
            continue
        if opt.short in in_use:
            taken.append(opt.short)
            continue
        try:
            _add(group, opt, opt.short, f"same as {opt.flag}")
        except (ValueError, argparse.ArgumentError):
            taken.append(opt.short)
    return tuple(taken)


@dataclass(frozen=True)
class Settings:
    models: tuple[str, ...] = ()
    oracle: str | None = None
    max_tokens: int | None = None
    backend: str = "lmstudio"
    base_url: str | None = None
    temperature: float = DEFAULT_TEMPERATURE
    seed: int | None = DEFAULT_SEED
    jsonl: Path | None = None
    markdown: Path | None = None
    html: Path | None = None
    list: bool = False
    timeout: float = DEFAULT_TIMEOUT_S
    context_length: int | None = None
    endpoint: Endpoints = ()
    endpoint_in_flight: tuple[tuple[str, int], ...] = ()  # (URL, N) from URL*N
    variants: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (reference, its variants)
    limits: tuple[Limits, ...] = ()
    concurrency: int | str = "auto"
    batch_invariant: bool = False
    audit: str | None = None  # N, P% or all (options.audit_count)
    cache: str = "use"
    isolation: str = "auto"
    sanitize: bool = True
    validate: bool = False
    budgets: tuple[int, ...] = ()
    repeat: int = 1
    baseline: str | None = None
    fail_under: float | None = None
    fail_on_regression: bool = False
    rootdir: Path = field(default_factory=Path.cwd)

    @property
    def endpoints(self) -> dict[str, tuple[str, ...]]:
        return dict(self.endpoint)

    def urls_for(self, model: str) -> tuple[str | None, ...]:
        """The servers a model's requests go to: its replicas, else the run's base URL."""
        return self.endpoints.get(model) or (self.base_url,)

    def in_flight_for(self, model: str) -> tuple[int | None, ...]:
        """Per server of `model`, in urls_for's order: the N of its `URL*N`, else None."""
        told = dict(self.endpoint_in_flight)
        return tuple(told.get(url) if url else None for url in self.urls_for(model))

    @property
    def store_path(self) -> Path:
        return self.rootdir / ".llmbench" / "store.sqlite3"

    @property
    def active(self) -> bool:
        """Whether this run benchmarks or validates anything (else the plugin stays quiet)."""
        return bool(self.models or self.validate)

    @property
    def real_models(self) -> tuple[str, ...]:
        from .exchange import PSEUDO_MODELS

        return tuple(m for m in self.models if m not in PSEUDO_MODELS)

    @property
    def jsonl_path(self) -> Path:
        return self.jsonl or self.rootdir / ".llmbench" / "results.jsonl"


def _raw_value(config: pytest.Config, opt: Option) -> Any:
    cli = config.getoption("llmbench_" + opt.dest)
    if cli is not None:
        if opt.dest in REPEATABLE:
            return REPEATABLE[opt.dest].join(cli)
        return cli
    if opt.env in os.environ:
        return os.environ[opt.env]
    ini = config.getini(opt.ini)
    if ini not in (None, "", []):
        return ini
    return None


def resolve(config: pytest.Config) -> Settings:
    values: dict[str, Any] = {}
    for opt in OPTIONS:
        raw = _raw_value(config, opt)
        if raw is None:
            continue
        if isinstance(raw, bool) or not isinstance(raw, str):
            values[opt.dest] = raw
            continue
        try:
            values[opt.dest] = opt.parse(raw)
        except ValueError:
            named = f"{opt.short} ({opt.flag})" if opt.short else opt.flag
            raise pytest.UsageError(f"{named}: cannot use {raw!r}") from None
    if "endpoint" in values:
        # The counts get a field of their own: everything else that reads a URL wants it bare.
        values["endpoint"], values["endpoint_in_flight"] = values["endpoint"]
    if values.get("isolation", "auto") not in ("auto", "full", "reduced"):
        raise pytest.UsageError("--llmbench-isolation must be one of auto, full, reduced")
    if values.get("fail_on_regression") and not values.get("baseline"):
        raise pytest.UsageError(
            "--llmbench-fail-on-regression needs --llmbench-baseline=FILE|RUN to compare with"
        )
    budgets = values.get("budgets")
    if budgets:
        # One generation at the largest budget serves them all: it is the generation cap.
        if values.get("max_tokens") not in (None, budgets[-1]):
            raise pytest.UsageError(
                f"--max-tokens={values['max_tokens']} and --llmbench-budgets disagree: the "
                f"largest budget ({budgets[-1]}) is the generation cap; drop --max-tokens"
            )
        values["max_tokens"] = budgets[-1]
    oracle = values.get("oracle")
    models = values.get("models", ())
    if oracle and oracle not in models:
        # `pytest --oracle=a` alone benchmarks a: the oracle is always part of the run.
        values["models"] = models = (*models, oracle)
    # Variants and their references are part of the run too, in the order they are named.
    groups = values.get("variants", ())
    in_groups = [m for reference, variants in groups for m in (reference, *variants)]
    if any(m not in models for m in in_groups):
        values["models"] = (*models, *dict.fromkeys(m for m in in_groups if m not in models))
    return Settings(rootdir=Path(config.rootpath), **values)
