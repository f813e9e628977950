"""Statistics over results: intervals, pass@k and pass^k, paired comparisons. Pure functions on
counts.

The unit of independence is the task: the cases of one task share one answer, so they pass or
fail together far more often than independent trials would. Rates over cases therefore get a
cluster bootstrap (tasks are resampled with their cases), and rates over tasks, which are
independent trials, get Wilson's score interval. Every bootstrap here uses its own seeded
generator, so the same counts always give the same interval, whatever was computed before.
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

LEVEL = 0.95
Z95 = 1.959963984540054  # the normal quantile for a two-sided 95 % interval
RESAMPLES = 1000  # enough for 95 % percentile intervals (Efron & Tibshirani: >= 1000)
SEED = 0

Cluster = tuple[int, int]  # (cases passed, cases) of one task


@dataclass(frozen=True)
class Interval:
    low: float
    high: float

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def as_list(self, digits: int = 4) -> list[float]:
        return [round(self.low, digits), round(self.high, digits)]

    def percent(self) -> str:
        """`72-81%`, rounded outwards: the printed range never claims more than the interval."""
        return percent_range(self.low, self.high)


def percent_range(low: float, high: float) -> str:
    # round() first: 0.29 * 100 is 28.999999999999996, which must not floor to 28.
    return f"{math.floor(round(low * 100, 6))}-{math.ceil(round(high * 100, 6))}%"


def wilson(successes: float, trials: int, z: float = Z95) -> Interval:
    """Wilson's score interval for a binomial proportion (no trials: the whole range)."""
    if trials <= 0:
        return Interval(0.0, 1.0)
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    # Clamp the rounding noise at the ends: 0/n must start at exactly 0, n/n end at exactly 1.
    low = 0.0 if successes <= 0 else max(0.0, centre - half)
    high = 1.0 if successes >= trials else min(1.0, centre + half)
    return Interval(low, high)


def _quantile(ordered: Sequence[float], q: float) -> float:
    """The q-quantile of sorted values, linearly interpolated (numpy's default method)."""
    position = q * (len(ordered) - 1)
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


def _percentile_interval(values: list[float], level: float) -> Interval:
    values.sort()
    alpha = 1 - level
    return Interval(_quantile(values, alpha / 2), _quantile(values, 1 - alpha / 2))


def rate(clusters: Sequence[Cluster]) -> float:
    total = sum(t for _, t in clusters)
    return sum(p for p, _ in clusters) / total if total else 0.0


def cluster_bootstrap(
    clusters: Sequence[Cluster],
    *,
    seed: int = SEED,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
) -> Interval:
    """An interval for the case pass rate that respects the tasks: resample tasks, not cases.

    Percentile interval of the pooled rate (passed cases / cases) over `resamples` resamples
    of the tasks with replacement. When every task has the same rate (typically all passed or
    all failed) resampling cannot vary it; the interval is then Wilson's with the tasks as the
    trials, the honest width for what so few independent units can show.
    """
    return _cluster_bootstrap(tuple(c for c in clusters if c[1] > 0), seed, resamples, level)


# Reports ask for the same intervals several times (table, markdown, JSONL): resampling is the
# costly part, and the answer depends only on the arguments.
@functools.lru_cache(maxsize=512)
def _cluster_bootstrap(
    clusters: tuple[Cluster, ...], seed: int, resamples: int, level: float
) -> Interval:
    if not clusters:
        return Interval(0.0, 1.0)
    rates = {p / t for p, t in clusters}
    if len(rates) == 1:
        only = rates.pop()
        return wilson(only * len(clusters), len(clusters))
    values = [p / t for p, t in _resampled_sums(clusters, seed, resamples)]
    return _percentile_interval(values, level)


def _resampled_sums(
    rows: Sequence[tuple[int, ...]], seed: int, resamples: int
) -> Iterator[tuple[int, ...]]:
    """For each of `resamples` resamples of the rows (as many as there are, with
    replacement), the sum of each column.

    Each row's columns are packed into one integer, in fields wide enough that no column sum
    can spill into the next, so that summing a resample is one call into C: resampling is
    what a report's end waits for.
    """
    width = (max(max(row) for row in rows) * len(rows)).bit_length() + 1
    columns = range(len(rows[0]))
    packed = [
        sum(value << (width * i) for i, value in zip(columns, row, strict=True)) for row in rows
    ]
    mask = (1 << width) - 1
    rng = random.Random(seed)
    for _ in range(resamples):
        total = sum(rng.choices(packed, k=len(packed)))
        yield tuple((total >> (width * i)) & mask for i in columns)


@dataclass(frozen=True)
class Difference:
    """`new - old` of two pass rates on the tasks both ran, with its interval."""

    old: float
    new: float
    interval: Interval
    tasks: int  # the tasks the comparison is over

    @property
    def delta(self) -> float:
        return self.new - self.old

    @property
    def significant(self) -> bool:
        """The interval excludes no difference (at the level it was computed for)."""
        return not self.interval.contains(0.0)


def paired_difference(
    pairs: Sequence[tuple[Cluster, Cluster]],
    *,
    seed: int = SEED,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
) -> Difference:
    """The difference of two case pass rates measured on the same tasks (paired bootstrap).

    `pairs` holds, per task both ran, (old cases passed, cases) and (new cases passed, cases).
    Tasks are resampled together, so what the two share (the task's difficulty) cancels out
    and only the disagreement between them counts.
    """
    kept = tuple((a, b) for a, b in pairs if a[1] > 0 and b[1] > 0)
    mirrored = tuple((b, a) for a, b in kept)
    if mirrored < kept:
        # The same draws resample both orders, so b - a is exactly a - b negated: compute one.
        other = _paired_difference(mirrored, seed, resamples, level)
        flipped = Interval(-other.interval.high, -other.interval.low)
        return Difference(other.new, other.old, flipped, other.tasks)
    return _paired_difference(kept, seed, resamples, level)


@functools.lru_cache(maxsize=512)
def _paired_difference(
    pairs: tuple[tuple[Cluster, Cluster], ...], seed: int, resamples: int, level: float
) -> Difference:
    old = rate([a for a, _ in pairs])
    new = rate([b for _, b in pairs])
    if not pairs:
        return Difference(old, new, Interval(-1.0, 1.0), 0)
    rows = [(*a, *b) for a, b in pairs]
    values = [bp / bt - ap / at for ap, at, bp, bt in _resampled_sums(rows, seed, resamples)]
    return Difference(old, new, _percentile_interval(values, level), len(pairs))


def binomial_two_sided(k: int, n: int) -> float:
    """The exact two-sided p-value of k successes in n fair coin flips."""
    if n <= 0:
        return 1.0
    tail = min(k, n - k)
    p = sum(math.comb(n, i) for i in range(tail + 1)) / (1 << n)
    return min(1.0, 2 * p)


@dataclass(frozen=True)
class McNemar:
    """Exact McNemar test on paired pass/fail outcomes (here: tasks fully passed)."""

    only_old: int  # passed by old only
    only_new: int  # passed by new only
    p_value: float

    @property
    def significant(self) -> bool:
        return self.p_value < 1 - LEVEL


def mcnemar(pairs: Sequence[tuple[bool, bool]]) -> McNemar:
    """Only the discordant pairs carry information: under "no difference" each of them is
    equally likely to go either way, so their split is a fair binomial."""
    only_old = sum(1 for a, b in pairs if a and not b)
    only_new = sum(1 for a, b in pairs if b and not a)
    return McNemar(only_old, only_new, binomial_two_sided(only_old, only_old + only_new))


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased pass@k estimator of Chen et al. (2021) for one task: n samples of which c
    passed. It is 1 - C(n-c, k) / C(n, k), computed as a product to stay exact-ish for
    large n."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n (n={n}, c={c}, k={k})")
    if n - c < k:
        return 1.0
    product = 1.0
    for i in range(n - c + 1, n + 1):
        product *= 1.0 - k / i
    return 1.0 - product


def pass_hat_k(n: int, c: int, k: int) -> float:
    """pass^k for one task (tau-bench, Yao et al. 2024): the chance that k samples drawn
    without replacement from its n, of which c passed, all pass: C(c, k) / C(n, k), computed
    as a product."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass^k needs 0 <= c <= n and 1 <= k <= n (n={n}, c={c}, k={k})")
    if c < k:
        return 0.0
    product = 1.0
    for i in range(k):
        product *= (c - i) / (n - i)
    return product


def mean_estimate(
    estimator: Callable[[int, int, int], float], samples: Sequence[tuple[int, int]], k: int
) -> float:
    """A per-task estimator (pass_at_k, pass_hat_k) averaged over tasks; `samples` is (n, c)
    per task."""
    if not samples:
        return 0.0
    return sum(estimator(n, c, k) for n, c in samples) / len(samples)


def mean_pass_at_k(samples: Sequence[tuple[int, int]], k: int) -> float:
    """pass@k over tasks: the mean of the per-task estimator; `samples` is (n, c) per task."""
    return mean_estimate(pass_at_k, samples, k)
