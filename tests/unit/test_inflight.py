"""How many requests each replica gets at once, whether that batches answers, and how a run
says whether its answers can be had again; the audit's choice of tasks; the options."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import pytest

from pytest_llmbench.backends.inflight import answers_note, plan
from pytest_llmbench.caseresult import CaseResult
from pytest_llmbench.exchange import Completion, ToolCall
from pytest_llmbench.options import (
    Settings,
    _audit,
    _concurrency,
    _endpoints,
    _seed,
    audit_count,
)
from pytest_llmbench.results.aggregate import Audit, aggregate
from pytest_llmbench.run.scheduler import Job, audited_jobs
from pytest_llmbench.suites.base import Generation, same_answer


@dataclass
class Server:
    """A backend stand-in: the slots it decodes at once, and the requests it decodes alone."""

    slots: int | None = None
    alone: int | None = None

    def parallel_slots(self, key: str) -> int | None:
        return self.slots

    def alone_slots(self, key: str) -> int | None:
        return self.alone


def counts(settings: Settings, *servers: Any) -> tuple[list[int], str, bool]:
    made = plan(settings, "m", servers, builtin=False)
    return [n for _, n in made.replicas], made.why, made.batched


DEFAULT = Settings(models=("m",))


@pytest.mark.parametrize(
    ("settings", "servers", "expected"),
    [
        # Deterministic sampling (the default seed): one per server process, each alone.
        (DEFAULT, [Server(4)], ([1], "reproducible", False)),
        (DEFAULT, [Server(4), Server(8)], ([1, 1], "reproducible", False)),  # replicas
        (DEFAULT, [Server(2, alone=2)], ([2], "reproducible", False)),  # 2 single-slot servers
        (replace(DEFAULT, seed=None, temperature=0.0), [Server(4)], ([1], "reproducible", False)),
        # Answers vary anyway: keep the server busy.
        (replace(DEFAULT, seed=None), [Server(4)], ([4], "server", True)),
        (replace(DEFAULT, seed=None), [Server()], ([4], "default", True)),
        # Asked for speed.
        (replace(DEFAULT, concurrency="server"), [Server(6)], ([6], "server", True)),
        (replace(DEFAULT, concurrency=3), [Server(4)], ([3], "option", True)),
        # More in flight than the server decodes at once only queue there: still alone.
        (replace(DEFAULT, concurrency=3), [Server(1)], ([3], "option", False)),
        (replace(DEFAULT, concurrency=1), [Server()], ([1], "option", False)),
        # A batch-invariant server keeps its slots busy with exact answers.
        (replace(DEFAULT, batch_invariant=True), [Server(16)], ([16], "server", False)),
    ],
)
def test_plan(settings: Settings, servers: list[Server], expected: Any) -> None:
    assert counts(settings, *servers) == expected


def replicas(*urls: str, **settings: Any) -> Settings:
    """DEFAULT with `m` served from `urls`, each `URL*N` parsed as the option does."""
    endpoint, in_flight = _endpoints("m=" + ",".join(urls))
    return replace(DEFAULT, endpoint=endpoint, endpoint_in_flight=in_flight, **settings)


@pytest.mark.parametrize(
    ("settings", "servers", "expected"),
    [
        # N in flight whatever the option says, batched where N is more than it decodes alone.
        (replicas("http://a*3"), [Server(4)], ([3], "endpoint", True)),
        (replicas("http://a*3", concurrency=1), [Server(4)], ([3], "endpoint", True)),
        (replicas("http://a*3", concurrency="server"), [Server(8)], ([3], "endpoint", True)),
        (replicas("http://a*1", seed=None), [Server(4)], ([1], "endpoint", False)),
        (replicas("http://a*3"), [Server(4, alone=3)], ([3], "endpoint", False)),
        # A one-slot server queues the rest: each answer is still decoded alone.
        (replicas("http://a*3"), [Server(1)], ([3], "endpoint", False)),
        (replicas("http://a*3", batch_invariant=True), [Server(4)], ([3], "endpoint", False)),
        # Replicas without a count are planned as before, beside those with one.
        (replicas("http://a*2", "http://b"), [Server(4), Server(4)],
         ([2, 1], "endpoint, reproducible", True)),
        (replicas("http://a", "http://b*1"), [Server(4), Server(8)],
         ([1, 1], "endpoint, reproducible", False)),
        (replicas("http://a*2", "http://b", concurrency="server"), [Server(4), Server(6)],
         ([2, 6], "endpoint, server", True)),
        (replicas("http://a*1", "http://b", concurrency=5), [Server(4), Server(1)],
         ([1, 5], "endpoint, option", False)),
    ],
)  # fmt: skip
def test_plan_with_endpoint_counts(
    settings: Settings, servers: list[Server], expected: Any
) -> None:
    assert counts(settings, *servers) == expected


def test_an_endpoint_count_belongs_to_its_url_whichever_model_it_serves() -> None:
    settings = replicas("http://a*2", base_url="http://base")
    settings = replace(settings, endpoint=(*settings.endpoint, ("b", ("http://c", "http://a"))))
    made = plan(settings, "b", [Server(4), Server(4)], builtin=False)
    assert ([n for _, n in made.replicas], made.why, made.batched) == (
        [1, 2], "endpoint, reproducible", True,
    )  # fmt: skip
    # A model on the base URL has no count.
    made = plan(settings, "other", [Server(4)], builtin=False)
    assert ([n for _, n in made.replicas], made.why) == ([1], "reproducible")


def test_pseudo_models_answer_at_once() -> None:
    made = plan(DEFAULT, "reference", [Server(4)], builtin=True)
    assert (made.total, made.why, made.batched) == (1, "built-in: answers at once", False)


SETTINGS = {"temperature": 0.2, "seed": 1, "batch_invariant": False}


def test_what_the_run_says_of_its_answers() -> None:
    assert answers_note(SETTINGS, 1, "reproducible", False) == (
        True,
        "reproducible at temperature 0.2, seed 1: each answer decoded alone; "
        "--llmbench-concurrency=server for speed, answers then depend on batching",
    )
    assert answers_note({**SETTINGS, "temperature": 0}, 1, "option", False) == (
        True,
        "reproducible at temperature 0: each answer decoded alone",
    )
    exact, note = answers_note(SETTINGS, 4, "server", True)
    assert not exact and note.startswith("NOT reproducible: answers share the server's batches")
    assert "(4 in flight)" in note and "--llmbench-audit=N" in note
    exact, note = answers_note({**SETTINGS, "seed": None}, 4, "server", True)
    assert not exact and note.startswith("answers vary from run to run: temperature 0.2 without")
    invariant = {**SETTINGS, "batch_invariant": True}
    assert answers_note(invariant, 16, "server", False)[0] is True
    assert answers_note(SETTINGS, 1, "built-in", False) == (
        True,
        "built-in: the same answer every time",
    )


def jobs(count: int, repeats: int = 1) -> list[Job]:
    return [
        Job(("m", f"t.yaml::task{n}" + (f"#repeat{r}" if r else "")), "python", None, repeat=r)
        for n in range(count)
        for r in range(repeats)
    ]


def test_the_audit_picks_a_spread_of_first_samples_the_same_every_time() -> None:
    chosen = audited_jobs(jobs(40, repeats=2), "10")
    assert len(chosen) == 10 and all(job.repeat == 0 for job in chosen)
    assert audited_jobs(jobs(40, repeats=2), "10") == chosen
    assert audited_jobs(list(reversed(jobs(40))), "10") == list(reversed(chosen))  # item order
    numbers = sorted(int(job.key[1].split("task")[1]) for job in chosen)
    assert numbers != list(range(10)) and numbers != list(range(30, 40))  # not a block
    assert len(audited_jobs(jobs(40), "25%")) == 10
    assert audited_jobs(jobs(40), "all") == jobs(40)
    assert len(audited_jobs(jobs(3), "10")) == 3


def test_options_of_the_reproducible_run() -> None:
    assert _seed("none") is None and _seed("7") == 7
    assert _concurrency("server") == "server" and _concurrency("AUTO") == "auto"
    assert [_audit(text) for text in ("5", "20%", "ALL")] == ["5", "20%", "all"]
    for wrong in ("0", "-1", "0%", "150%", "some"):
        with pytest.raises(ValueError):
            _audit(wrong)
    assert audit_count("1%", 50) == 1  # any share gets at least one task
    assert DEFAULT.seed == 1  # the same command draws the same tokens


def generation(*completions: Completion) -> Generation:
    return Generation(completions=completions, answer=completions[-1].content, reasoning="",
                      truncated=False)  # fmt: skip


def test_same_answer_compares_text_thinking_and_calls_not_timings() -> None:
    call = ToolCall("c1", "get", '{"a": 1}')
    first = generation(Completion("x", reasoning="r", tool_calls=(call,), wall_s=1.0))
    assert same_answer(first, generation(Completion("x", reasoning="r", tool_calls=(call,))))
    assert not same_answer(first, generation(Completion("x", reasoning="r")))
    assert not same_answer(first, generation(Completion("x", reasoning="s", tool_calls=(call,))))
    other = ToolCall("c2", "get", '{"a": 2}')
    assert not same_answer(first, generation(Completion("x", reasoning="r", tool_calls=(other,))))


def test_the_audit_of_a_model_counts_flips_and_changed_answers() -> None:
    def case(task: str, outcome: str, alone: str | None, same: bool | None) -> CaseResult:
        return CaseResult("m", "python", task, "c", outcome, audit_outcome=alone,  # type: ignore[arg-type]
                          audit_same_answer=same)  # fmt: skip

    results = [
        case("a", "passed", "failed", False),  # flipped
        case("b", "passed", "passed", False),  # another answer, the same verdict
        case("c", "failed", "failed", True),
        case("d", "error", "passed", False),  # an error says nothing about batching
        case("e", "passed", None, None),  # not audited
    ]
    (report,) = aggregate(results, ("m",))
    audit = report.audit()
    assert audit == Audit(tasks=3, answers_changed=("python:a", "python:b"), flipped=("python:a",))
    assert audit.to_dict()["flip_rate"] == round(1 / 3, 4)
    low, high = audit.to_dict()["interval"]
    assert 0 < low < 1 / 3 < high < 1
    (unaudited,) = aggregate([case("e", "passed", None, None)], ("m",))
    assert unaudited.audit() is None
