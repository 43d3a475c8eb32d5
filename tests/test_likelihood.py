"""The partial-report likelihood against direct enumeration with scipy."""

import itertools
import math

import numpy as np
import pytest
from scipy import special, stats

from bayes_msc.evidence.mortality import (
    ArmCount,
    Configuration,
    PartialReport,
    compositions,
)
from bayes_msc.models.likelihood import (
    pack_partial_reports,
    partial_report_logp,
    partial_report_logp_numpy,
)


def _pytensor_logp(arrays, logit_p):
    import pytensor.tensor as pt

    gathered = pt.as_tensor(logit_p)[arrays.arm_index]
    out = partial_report_logp(
        pt.zeros(arrays.shape[0]), gathered, arrays.deaths, arrays.n, arrays.log_choose, arrays.log_weight
    )
    return out.eval()


def _total_report(total, sizes_by_allocation, arm_indices):
    configs = []
    for sizes in sizes_by_allocation:
        for deaths in compositions(total, list(sizes)):
            configs.append(
                Configuration(
                    -math.log(len(sizes_by_allocation)),
                    tuple(ArmCount(i, d, n) for i, d, n in zip(arm_indices, deaths, sizes)),
                )
            )
    return PartialReport("s", "total", tuple(map(str, arm_indices)), "total", tuple(configs))


def _bounded_report(arm, low, high, n):
    configs = tuple(Configuration(0.0, (ArmCount(arm, d, n),)) for d in range(low, high + 1))
    return PartialReport("s", "bounded", (str(arm),), "bound", configs)


def test_interval_censored_binomial_matches_cdf_difference():
    logit_p = np.array([-3.0, 0.4])
    report = _bounded_report(0, 0, 1, 65)
    arrays = pack_partial_reports((report,))
    p = special.expit(-3.0)
    expected = math.log(stats.binom.cdf(1, 65, p) - stats.binom.cdf(-1, 65, p))
    assert partial_report_logp_numpy(arrays, logit_p)[0] == pytest.approx(expected, rel=1e-12)
    assert _pytensor_logp(arrays, logit_p)[0] == pytest.approx(expected, rel=1e-10)


def test_sum_over_arms_with_unknown_allocation_matches_enumeration():
    # BC-U001's shape: 1 death among 12 patients in three 3+3 cohorts, sizes unknown.
    allocations = [(3, 3, 6), (3, 6, 3), (6, 3, 3)]
    logit_p = np.array([-2.5, -1.0, 0.3])
    probs = special.expit(logit_p)
    expected = 0.0
    for sizes in allocations:
        # Brute force over every death count of every arm: P(sum of deaths == 1).
        prob_total = 0.0
        for deaths in itertools.product(*(range(n + 1) for n in sizes)):
            if sum(deaths) == 1:
                prob_total += math.prod(stats.binom.pmf(d, n, p) for d, n, p in zip(deaths, sizes, probs))
        expected += prob_total / len(allocations)
    report = _total_report(1, allocations, [0, 1, 2])
    arrays = pack_partial_reports((report,))
    assert partial_report_logp_numpy(arrays, logit_p)[0] == pytest.approx(math.log(expected), rel=1e-12)
    assert _pytensor_logp(arrays, logit_p)[0] == pytest.approx(math.log(expected), rel=1e-10)


def test_padding_does_not_change_values():
    # Reports of different widths packed together give the same values as packed alone.
    logit_p = np.array([-2.0, -1.0, 0.5])
    a = _bounded_report(0, 1, 4, 20)
    b = _total_report(2, [(3, 6)], [1, 2])
    together = partial_report_logp_numpy(pack_partial_reports((a, b)), logit_p)
    alone = [partial_report_logp_numpy(pack_partial_reports((r,)), logit_p)[0] for r in (a, b)]
    np.testing.assert_allclose(together, alone, rtol=1e-12)
    np.testing.assert_allclose(_pytensor_logp(pack_partial_reports((a, b)), logit_p), alone, rtol=1e-10)


def test_exact_count_as_degenerate_bound_equals_binomial():
    logit_p = np.array([0.2])
    arrays = pack_partial_reports((_bounded_report(0, 7, 7, 12),))
    expected = stats.binom.logpmf(7, 12, special.expit(0.2))
    assert partial_report_logp_numpy(arrays, logit_p)[0] == pytest.approx(expected, rel=1e-12)


def test_compositions_enumerate_all_splits_within_arm_sizes():
    assert sorted(compositions(2, [1, 3])) == [(0, 2), (1, 1)]
    assert len(compositions(1, [3, 3, 6])) == 3
