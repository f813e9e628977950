"""Which model to run here: each model's cost beside its quality, variants against their
reference, the frontier, and one recommendation per set of limits.

- Cost (`ModelCost`): memory (backends/memory.py, measured or reported, with its source), load
  time, prompt and decode tok/s (as the server timed them, else from the stream), and time to
  first token (median and p90 over the model's answers, measured at the client).
- Variants (--llmbench-variants REF=V,...): each variant's paired difference to its reference
  (cases, bootstrap interval; tasks, McNemar), the tasks that flipped, its cost ratios.
- The frontier: the models no other model beats on quality, decode speed and memory at once
  (an axis a model has no figure for is left out of its comparisons; speeds and memory within
  MARGIN, 5 %, of each other count as equal: timing noise must not decide).
- A recommendation per set of limits (--llmbench-limits): among the models within them, the
  best by quality; a cheaper one (faster, or smaller, and no worse on the other) that is not
  significantly worse than it (paired, 95 %) is named instead, with what it saves. A cheaper
  model that is significantly worse is said to be so, never recommended. With fewer than two
  models there is nothing to choose between, and nothing is said.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..backends.memory import NOT_KNOWN, MemoryFigure
from ..exchange import PSEUDO_MODELS
from ..options import Limits
from .aggregate import Comparison, ModelReport, compare

Point = tuple[float, float | None, int | None]  # quality, decode speed, memory


def _quantile(values: Sequence[float], q: float) -> float:
    """The q-quantile, linear between the closest ranks (numpy's default)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class ModelCost:
    """What running one model costs here, each figure with where it came from."""

    model: str
    memory: MemoryFigure
    load_s: float | None
    prompt_tok_s: float | None
    decode_tok_s: float | None
    decode_source: str
    ttft_median_s: float | None
    ttft_p90_s: float | None
    ttft_source: str

    def to_dict(self) -> dict[str, Any]:
        def rounded(value: float | None, digits: int) -> float | None:
            return round(value, digits) if value is not None else None

        return {
            "memory_peak_bytes": self.memory.peak_bytes,
            "memory_steady_bytes": self.memory.steady_bytes,
            "memory_source": self.memory.source,
            "memory_measured": self.memory.measured,
            "load_s": rounded(self.load_s, 3),
            "load_source": "measured: load request to ready" if self.load_s else "n/a",
            "prompt_tok_s": rounded(self.prompt_tok_s, 2),
            "prompt_source": "measured: the server's timings" if self.prompt_tok_s else "n/a",
            "decode_tok_s": rounded(self.decode_tok_s, 2),
            "decode_source": self.decode_source,
            "ttft_median_s": rounded(self.ttft_median_s, 4),
            "ttft_p90_s": rounded(self.ttft_p90_s, 4),
            "ttft_source": self.ttft_source,
        }


def cost_of(report: ModelReport, memory: MemoryFigure = NOT_KNOWN) -> ModelCost:
    ttfts = [g.ttft_s for g in report.generations if g.ttft_s is not None]
    timed = report.decode_timed_by
    decode_source = {
        "server": "measured: the server's timings",
        "stream": "measured: between first and last streamed token",
    }.get(timed, f"measured: {timed}" if timed != "none" else "n/a")
    in_flight = report.concurrency[0]
    queued = f", {in_flight} requests in flight" if in_flight and in_flight > 1 else ""
    return ModelCost(
        model=report.model,
        memory=memory,
        load_s=report.load_s,
        prompt_tok_s=report.prompt_tok_s,
        decode_tok_s=report.decode_tok_s,
        decode_source=decode_source if report.decode_tok_s is not None else "n/a",
        ttft_median_s=statistics.median(ttfts) if ttfts else None,
        ttft_p90_s=_quantile(ttfts, 0.9) if ttfts else None,
        ttft_source=(
            f"measured: request sent to first streamed token, {len(ttfts)} answers{queued}"
            if ttfts
            else "n/a"
        ),
    )


def _axes(report: ModelReport, cost: ModelCost, suite: str | None) -> Point:
    """(quality, decode speed, memory): higher, higher, lower is better."""
    return report.score(suite).rate, cost.decode_tok_s, cost.memory.known


# Speeds and memory that differ by less than this fraction count as equal: two runs of one
# model differ by a few per cent in speed, and a recommendation must not rest on that.
MARGIN = 0.05


def _compared(a: Point, b: Point) -> list[tuple[bool, bool]]:
    """Per axis both have a figure for: (a is no worse than b, a is better than b), speed and
    memory within MARGIN counting as equal."""
    axes = [(a[0] >= b[0], a[0] > b[0])]
    if a[1] is not None and b[1] is not None:
        axes.append((a[1] >= b[1] * (1 - MARGIN), a[1] >= b[1] * (1 + MARGIN)))
    if a[2] is not None and b[2] is not None:
        axes.append((a[2] <= b[2] * (1 + MARGIN), a[2] <= b[2] * (1 - MARGIN)))
    return axes


def dominates(a: Point, b: Point) -> bool:
    """Whether `a` is at least as good as `b` on every axis both have a figure for, and
    better on one (see MARGIN)."""
    axes = _compared(a, b)
    return all(no_worse for no_worse, _ in axes) and any(better for _, better in axes)


@dataclass(frozen=True)
class VariantResult:
    """A variant against its reference: paired over the tasks both ran."""

    reference: str
    variant: str
    comparison: Comparison  # reference -> variant: delta > 0 means the variant is better
    lost: tuple[str, ...]  # tasks the reference fully passed and the variant did not
    gained: tuple[str, ...]
    speed_ratio: float | None  # variant decode tok/s over the reference's
    memory_ratio: float | None
    ttft_ratio: float | None

    def to_dict(self) -> dict[str, Any]:
        def ratio(value: float | None) -> float | None:
            return round(value, 3) if value is not None else None

        return {
            "reference": self.reference,
            **self.comparison.to_dict(),
            "lost": list(self.lost),
            "gained": list(self.gained),
            "speed_ratio": ratio(self.speed_ratio),
            "memory_ratio": ratio(self.memory_ratio),
            "ttft_ratio": ratio(self.ttft_ratio),
        }


def _ratio(new: float | None, old: float | None) -> float | None:
    return new / old if new is not None and old else None


def flipped(old: ModelReport, new: ModelReport) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(lost, gained): tasks fully passed by one side only, among those both ran cleanly."""
    before = {(t.file, t.suite, t.task): t for t in old.tasks}
    lost, gained = [], []
    for task in new.tasks:
        other = before.get((task.file, task.suite, task.task))
        if other is None or task.errored or other.errored:
            continue
        if other.fully_passed and not task.fully_passed:
            lost.append(f"{task.suite}:{task.task}")
        elif task.fully_passed and not other.fully_passed:
            gained.append(f"{task.suite}:{task.task}")
    return tuple(lost), tuple(gained)


@dataclass(frozen=True)
class Choice:
    """Everything the run says about choosing among its models."""

    costs: dict[str, ModelCost]
    frontier: tuple[str, ...]
    variants: tuple[VariantResult, ...]
    recommendations: tuple[str, ...]

    def variant_of(self, model: str) -> VariantResult | None:
        return next((v for v in self.variants if v.variant == model), None)


def choose(
    reports: Sequence[ModelReport],
    memory: Mapping[str, MemoryFigure],
    variants: Sequence[tuple[str, Sequence[str]]] = (),
    limits: Sequence[Limits] = (),
) -> Choice:
    real = [r for r in reports if r.model not in PSEUDO_MODELS and r.total]
    costs = {r.model: cost_of(r, memory.get(r.model, NOT_KNOWN)) for r in real}
    points = {r.model: _axes(r, costs[r.model], None) for r in real}
    front = tuple(
        m for m in points if not any(dominates(points[o], points[m]) for o in points if o != m)
    )
    by_model = {r.model: r for r in real}
    found = []
    for reference, named in variants:
        for variant in named:
            old, new = by_model.get(reference), by_model.get(variant)
            if old is None or new is None:
                continue
            lost, gained = flipped(old, new)
            a, b = costs[reference], costs[variant]
            found.append(
                VariantResult(
                    reference, variant, compare(old, new), lost, gained,
                    _ratio(b.decode_tok_s, a.decode_tok_s),
                    _ratio(b.memory.known, a.memory.known),
                    _ratio(b.ttft_median_s, a.ttft_median_s),
                )
            )  # fmt: skip
    lines: list[str] = []
    if len(real) >= 2:
        for limit in limits or (Limits(),):
            line = recommend(real, costs, limit)
            if line:
                lines.append(line)
    return Choice(costs, front if len(real) >= 2 else (), tuple(found), tuple(lines))


def _outside(cost: ModelCost, report: ModelReport, limits: Limits) -> str | None:
    """Why the model is outside the limits, or None when it is within them."""
    if limits.suite is not None and not report.of_suite(limits.suite):
        return f"ran no {limits.suite} task"
    if limits.min_speed is not None:
        if cost.decode_tok_s is None:
            return "decode speed n/a"
        if cost.decode_tok_s < limits.min_speed:
            return f"{cost.decode_tok_s:.0f} tok/s"
    if limits.max_memory is not None:
        if cost.memory.known is None:
            return "memory n/a"
        if cost.memory.known > limits.max_memory:
            return size_text(cost.memory.known)
    if limits.max_ttft is not None:
        if cost.ttft_median_s is None:
            return "time to first token n/a"
        if cost.ttft_median_s > limits.max_ttft:
            return f"first token after {cost.ttft_median_s:.2f}s"
    return None


def size_text(size: int | None) -> str:
    if size is None:
        return "n/a"
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if size >= scale:
            return (
                f"{size / scale:.1f} {unit}" if size < 10 * scale else f"{size / scale:.0f} {unit}"
            )
    return f"{size} B"


def _cheaper(a: ModelCost, b: ModelCost) -> bool:
    """Whether `a` costs less than `b`: faster or smaller, and no worse on the other (an
    axis either has no figure for is left out; see MARGIN)."""
    costs = _compared((0.0, a.decode_tok_s, a.memory.known), (0.0, b.decode_tok_s, b.memory.known))[
        1:
    ]
    return bool(costs) and all(no_worse for no_worse, _ in costs) and any(x for _, x in costs)


def savings(cheap: ModelCost, dear: ModelCost) -> str:
    """ "2.1x faster, 40 % less memory": what `cheap` saves over `dear` (known axes only)."""
    parts = []
    speed = _ratio(cheap.decode_tok_s, dear.decode_tok_s)
    if speed is not None and speed >= 1 + MARGIN:
        parts.append(
            f"{speed:.1f}x faster" if speed >= 1.5 else f"{100 * (speed - 1):.0f} % faster"
        )
    memory = _ratio(cheap.memory.known, dear.memory.known)
    if memory is not None and memory <= 1 - MARGIN:
        parts.append(f"{1 - memory:.0%} less memory".replace("%", " %"))
    return ", ".join(parts)


def recommend(
    reports: Sequence[ModelReport], costs: Mapping[str, ModelCost], limits: Limits
) -> str | None:
    """One line: the model to run within `limits` (see the module's docstring)."""
    head = f"choose ({limits})"
    outside = {r.model: _outside(costs[r.model], r, limits) for r in reports}
    within = [r for r in reports if outside[r.model] is None]
    if not within:
        why = "; ".join(f"{m}: {reason}" for m, reason in outside.items())
        return f"{head}: no model is within them ({why})"
    suite = limits.suite

    def view(report: ModelReport) -> Any:
        return report.of_suite(suite) if suite is not None else report

    best = max(within, key=lambda r: r.score(suite).rate)  # the first of equals, in run order
    score = best.score(suite)
    best_text = f"{best.model} ({score.passed}/{score.total} cases)"
    if len(within) == 1:
        return f"{head}: {best_text}, the only model within them"
    cheaper = [r for r in within if r is not best and _cheaper(costs[r.model], costs[best.model])]
    # The cheapest first: the fastest, then the smallest.
    cheaper.sort(
        key=lambda r: (-(costs[r.model].decode_tok_s or 0), costs[r.model].memory.known or 0)
    )
    tied = [r for r in cheaper if not compare(view(best), view(r)).cases.significant]
    if tied:
        pick = tied[0]
        saved = savings(costs[pick.model], costs[best.model])
        return (
            f"{head}: {pick.model}: not significantly worse than {best.model} (paired, 95 %), "
            f"{saved}"
        )
    if cheaper:
        worse = cheaper[0]
        diff = compare(view(best), view(worse)).cases
        saved = savings(costs[worse.model], costs[best.model])
        return (
            f"{head}: {best_text}; {worse.model} is {saved} but significantly worse "
            f"({diff.delta * 100:+.0f} points of cases, paired 95 %)"
        )
    return f"{head}: {best_text}: no model within them costs less"
