"""The statistics module against hand-computed values and the properties the reports rely on."""

from __future__ import annotations

import math

import pytest

from pytest_llmbench.results import stats


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (5, 2, 1, 2 / 5),  # pass@1 is the plain fraction
        (5, 2, 2, 1 - 3 / 10),  # 1 - C(3,2)/C(5,2)
        (10, 3, 5, 1 - 21 / 252),  # 1 - C(7,5)/C(10,5)
        (4, 1, 3, 1 - 1 / 4),  # 1 - C(3,3)/C(4,3)
        (5, 0, 3, 0.0),
        (5, 5, 1, 1.0),
        (3, 1, 3, 1.0),  # fewer failures than k: some draw of k always holds the pass
        (200, 1, 100, 1 - math.comb(199, 100) / math.comb(200, 100)),
    ],
)
def test_pass_at_k_matches_hand_computed_values(n: int, c: int, k: int, expected: float) -> None:
    assert stats.pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(("n", "c", "k"), [(3, 4, 1), (3, 1, 0), (3, 1, 4), (3, -1, 1)])
def test_pass_at_k_rejects_impossible_counts(n: int, c: int, k: int) -> None:
    with pytest.raises(ValueError, match="pass@k needs"):
        stats.pass_at_k(n, c, k)


def test_mean_pass_at_k_averages_tasks() -> None:
    # task a: 1 of 2 passed; task b: 2 of 2. pass@1 = (0.5 + 1) / 2; pass@2 = (1 + 1) / 2.
    assert stats.mean_pass_at_k([(2, 1), (2, 2)], 1) == pytest.approx(0.75)
    assert stats.mean_pass_at_k([(2, 1), (2, 2)], 2) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (5, 2, 1, 2 / 5),  # pass^1 is pass@1
        (5, 2, 2, 1 / 10),  # C(2,2)/C(5,2)
        (5, 2, 3, 0.0),  # fewer passes than k: no draw of k passes throughout
        (5, 4, 3, 4 / 10),  # C(4,3)/C(5,3)
        (5, 5, 5, 1.0),
        (10, 7, 5, 21 / 252),  # C(7,5)/C(10,5)
        (200, 150, 100, math.comb(150, 100) / math.comb(200, 100)),
    ],
)
def test_pass_hat_k_matches_hand_computed_values(n: int, c: int, k: int, expected: float) -> None:
    assert stats.pass_hat_k(n, c, k) == pytest.approx(expected, rel=1e-12, abs=1e-300)


@pytest.mark.parametrize(("n", "c", "k"), [(3, 4, 1), (3, 1, 0), (3, 1, 4), (3, -1, 1)])
def test_pass_hat_k_rejects_impossible_counts(n: int, c: int, k: int) -> None:
    with pytest.raises(ValueError, match=r"pass\^k needs"):
        stats.pass_hat_k(n, c, k)


def test_pass_hat_k_never_exceeds_pass_at_k() -> None:
    # All k pass implies some of the k passes; they meet at k = 1 and where c is 0 or n.
    for n in range(1, 8):
        for c in range(n + 1):
            for k in range(1, n + 1):
                hat, at = stats.pass_hat_k(n, c, k), stats.pass_at_k(n, c, k)
                assert hat <= at + 1e-12
                if k == 1 or c in (0, n):
                    assert hat == pytest.approx(at)


def test_wilson_matches_published_values() -> None:
    # 5/10 at 95 %: 0.2366 .. 0.7634 (Wilson 1927, as tabulated by Newcombe 1998).
    interval = stats.wilson(5, 10)
    assert (interval.low, interval.high) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    # 0/10: the lower end is exactly 0, the upper z^2 / (n + z^2).
    z2 = stats.Z95**2
    assert stats.wilson(0, 10) == stats.Interval(0.0, pytest.approx(z2 / (10 + z2)))
    assert stats.wilson(10, 10).high == 1.0
    assert stats.wilson(0, 0) == stats.Interval(0.0, 1.0)


def test_binomial_two_sided_exact() -> None:
    assert stats.binomial_two_sided(0, 5) == pytest.approx(2 / 32)
    assert stats.binomial_two_sided(1, 9) == pytest.approx(2 * (1 + 9) / 512)
    assert stats.binomial_two_sided(3, 6) == 1.0
    assert stats.binomial_two_sided(0, 0) == 1.0


def test_mcnemar_counts_only_discordant_tasks() -> None:
    # 6 tasks only the new model passed, 10 both passed, 4 neither: p = 2 / 2^6.
    pairs = [(False, True)] * 6 + [(True, True)] * 10 + [(False, False)] * 4
    result = stats.mcnemar(pairs)
    assert (result.only_old, result.only_new) == (0, 6)
    assert result.p_value == pytest.approx(2 / 64)
    assert result.significant
    assert not stats.mcnemar([(False, True)] * 5).significant  # p = 0.0625


CLUSTERED = [(10, 10)] * 5 + [(0, 10)] * 5  # 100 cases, but really 10 independent tasks


def test_cluster_bootstrap_is_reproducible_and_seeded() -> None:
    clusters = [(3, 5), (5, 5), (0, 4), (2, 2), (1, 3), (4, 6), (0, 1)]
    first = stats.cluster_bootstrap(clusters, seed=7)
    assert stats.cluster_bootstrap(clusters, seed=7) == first
    assert stats.cluster_bootstrap(list(clusters), seed=7) == first
    assert stats.cluster_bootstrap(clusters, seed=8) != first
    assert first.contains(stats.rate(clusters))


def test_cluster_bootstrap_respects_the_tasks() -> None:
    """Cases that pass and fail together are not 100 trials: the interval is about as wide as
    for 10 independent tasks, far wider than a naive interval over the 100 cases."""
    clustered = stats.cluster_bootstrap(CLUSTERED)
    naive = stats.wilson(50, 100)
    as_tasks = stats.wilson(5, 10)
    assert clustered.high - clustered.low > 1.5 * (naive.high - naive.low)
    assert clustered.low == pytest.approx(as_tasks.low, abs=0.08)
    assert clustered.high == pytest.approx(as_tasks.high, abs=0.08)


def test_cluster_bootstrap_of_single_case_tasks_is_close_to_wilson() -> None:
    singles = [(1, 1)] * 70 + [(0, 1)] * 30
    boot = stats.cluster_bootstrap(singles)
    wil = stats.wilson(70, 100)
    assert boot.low == pytest.approx(wil.low, abs=0.02)
    assert boot.high == pytest.approx(wil.high, abs=0.02)


def test_cluster_bootstrap_of_uniform_tasks_falls_back_to_wilson_over_tasks() -> None:
    assert stats.cluster_bootstrap([(4, 4)] * 12) == stats.wilson(12, 12)
    assert stats.cluster_bootstrap([(0, 3)] * 12) == stats.wilson(0, 12)
    assert stats.cluster_bootstrap([]) == stats.Interval(0.0, 1.0)


def test_paired_difference_cancels_what_the_tasks_share() -> None:
    # Both models pass the same 40 easy tasks and fail the same 50 hard ones; the new one also
    # passes 10 tasks the old one fails. Paired, that is a clear gain.
    pairs = [((3, 3), (3, 3))] * 40 + [((0, 3), (0, 3))] * 50 + [((0, 3), (3, 3))] * 10
    diff = stats.paired_difference(pairs)
    assert diff.tasks == 100
    assert diff.delta == pytest.approx(0.1)
    assert diff.interval.low > 0
    assert diff.significant
    assert stats.paired_difference(pairs) == diff  # seeded


def test_paired_difference_of_equal_results_is_not_significant() -> None:
    pairs = [((2, 3), (2, 3)), ((1, 1), (1, 1)), ((0, 2), (0, 2))]
    diff = stats.paired_difference(pairs)
    assert diff.delta == 0
    assert diff.interval == stats.Interval(0.0, 0.0)
    assert not diff.significant
    # Gains and losses that balance out are noise, not a difference.
    mixed = [((1, 1), (0, 1))] * 5 + [((0, 1), (1, 1))] * 6 + [((1, 1), (1, 1))] * 20
    assert not stats.paired_difference(mixed).significant


def test_paired_difference_without_shared_tasks() -> None:
    diff = stats.paired_difference([])
    assert diff.tasks == 0
    assert not diff.significant


def test_percent_ranges_round_outwards_without_float_noise() -> None:
    assert stats.Interval(0.7234, 0.8101).percent() == "72-82%"
    assert stats.Interval(0.29, 0.57).percent() == "29-57%"  # 0.29 * 100 < 29 in floats
    assert stats.Interval(0.0, 1.0).percent() == "0-100%"


def test_paired_difference_is_antisymmetric() -> None:
    pairs = [((2, 3), (3, 3)), ((0, 2), (1, 2)), ((1, 1), (0, 1)), ((4, 5), (5, 5))] * 3
    forward = stats.paired_difference(pairs)
    backward = stats.paired_difference([(b, a) for a, b in pairs])
    assert backward.delta == -forward.delta
    assert backward.interval == stats.Interval(-forward.interval.high, -forward.interval.low)


def test_resampling_packs_columns_without_spilling() -> None:
    # Large per-task counts and many tasks: each column's sum must come back intact.
    rows = [(7, 9), (0, 9), (9, 9)] * 50
    for passed, total in stats._resampled_sums(rows, seed=3, resamples=50):
        assert total == 9 * len(rows)
        assert 0 <= passed <= total
