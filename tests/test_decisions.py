"""The decision layer against hand-computed values on small synthetic posteriors.

Every expected number here comes from arithmetic written out in the test (risk from odds,
1 / ARR, counting draws), from a closed form (the variance of a normal mixture, the iid
binomial-proportion MCSE) or from a test of a distribution — never from the function under
test. The posteriors are xarray Datasets built by hand with (chain, draw) dimensions.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from bayes_msc.decisions import (
    Interval,
    absolute_risk_reduction,
    number_needed_to_treat,
    predictive_effect,
    probability,
)
from bayes_msc.outcomes import get_outcome
from bayes_msc.spec import load_spec


def mortality_decisions(posterior, *, threshold_or, baseline_risk, ci_prob):
    """The mortality outcome's decisions under a spec with these decision settings."""
    spec = load_spec("mortality").with_decision(clinically_meaningful_or=threshold_or, baseline_risk=baseline_risk,
                                                ci_prob=ci_prob)
    return get_outcome("mortality").decide(posterior, spec)


def continuous_decisions(posterior, *, meaningful, direction, ci_prob):
    spec = load_spec("oxygenation").with_decision(clinically_meaningful_difference=meaningful,
                                                  benefit_direction=direction, ci_prob=ci_prob)
    return get_outcome("oxygenation").decide(posterior, spec)


def draws(values, chains: int = 1) -> xr.DataArray:
    """Scalar posterior draws with (chain, draw) dims, from a flat list."""
    values = np.asarray(values, dtype="float64").reshape(chains, -1)
    return xr.DataArray(values, dims=("chain", "draw"),
                        coords={"chain": np.arange(chains), "draw": np.arange(values.shape[1])})


def arr_interval(median, lower, upper) -> Interval:
    return Interval(median=median, mean=median, lower=lower, upper=upper, mcse_median=0.0, ci_prob=0.95)


# -- absolute risk reduction and NNT ------------------------------------------------------


@pytest.mark.parametrize(("odds_ratio", "baseline", "expected"), [
    # baseline 0.3: control odds 3/7; OR 1/2 -> treated odds 3/14 -> risk 3/17; ARR 0.3 - 3/17 = 2.1/17
    (0.5, 0.3, 2.1 / 17),
    # OR 2 -> treated odds 6/7 -> risk 6/13; ARR 0.3 - 6/13 = -2.1/13 (harm: negative)
    (2.0, 0.3, -2.1 / 13),
    # baseline 0.4: odds 2/3; OR 1/4 -> odds 1/6 -> risk 1/7; ARR 0.4 - 1/7 = 9/35
    (0.25, 0.4, 9 / 35),
    (1.0, 0.3, 0.0),
])
def test_absolute_risk_reduction_is_control_minus_treated_risk(odds_ratio, baseline, expected):
    arr = absolute_risk_reduction(draws([math.log(odds_ratio)] * 3), baseline)
    np.testing.assert_allclose(arr.values, expected, rtol=1e-12, atol=1e-15)
    assert arr.dims == ("chain", "draw")


def test_mortality_decisions_on_a_hand_built_posterior():
    # 1 chain of 9 draws of the OR: the median is the 5th value, exactly (no interpolation).
    odds_ratios = np.array([0.3, 0.4, 0.5, 0.6, 0.7, 0.9, 1.1, 1.5, 2.5])
    log_or = np.log(odds_ratios)
    tau = np.full(9, 0.2)
    posterior = xr.Dataset({"log_or": draws(log_or), "log_or_new": draws(-log_or), "tau": draws(tau)})
    d = mortality_decisions(posterior, threshold_or=0.8, baseline_risk=0.3, ci_prob=0.95)

    assert d.pooled_effect.median == pytest.approx(0.7)
    assert d.pooled_effect.mean == pytest.approx(odds_ratios.mean())
    # 6 of 9 draws have OR < 1 (0.3 ... 0.9); 5 of 9 have OR < 0.8 (0.3 ... 0.7)
    assert d.prob_benefit.prob == pytest.approx(6 / 9)
    assert d.prob_meaningful.prob == pytest.approx(5 / 9)
    assert d.predictive_prob_benefit.prob == pytest.approx(3 / 9)  # new-trial draws: 1 / OR, below 1 for 1.1, 1.5, 2.5
    # the ARR's median is the ARR at the median OR (a monotone map): risk at OR 0.7 by hand
    treated = 0.3 * 0.7 / (1 - 0.3 + 0.3 * 0.7)
    assert d.get("absolute_risk_reduction").median == pytest.approx(0.3 - treated, rel=1e-12)
    assert d.get("absolute_risk_reduction").median > 0  # OR < 1 favours cells: a positive risk reduction
    # the ARR interval: 2.5% and 97.5% quantiles of the per-draw ARR, risk from odds by hand
    by_hand = 0.3 - 0.3 * odds_ratios / (1 - 0.3 + 0.3 * odds_ratios)
    lower, upper = np.quantile(by_hand, [0.025, 0.975])
    assert (d.get("absolute_risk_reduction").lower, d.get("absolute_risk_reduction").upper) == pytest.approx((lower, upper), rel=1e-9)
    assert d.get("absolute_risk_reduction").lower < 0 < d.get("absolute_risk_reduction").upper  # ORs from 0.3 to 2.5: the interval crosses 0
    assert d.get("nnt")["median"] == pytest.approx(1 / (0.3 - treated))
    out = d.to_dict()
    assert out["outcome_specific"]["absolute_risk_reduction"]["median"] == pytest.approx(0.3 - treated)
    assert out["meaningful_threshold"] == 0.8 and out["outcome_specific"]["baseline_risk"] == 0.3


def test_nnt_when_the_whole_interval_favours_cells():
    nnt = number_needed_to_treat(arr_interval(0.10, 0.05, 0.20))
    assert nnt["median"] == pytest.approx(10.0)
    assert nnt["benefit_bound"] == pytest.approx(5.0) and nnt["harm_bound"] == pytest.approx(20.0)
    assert nnt["text"] == "NNT 10.0 (benefit: 5.0 to 20.0)"


def test_nnt_when_the_whole_interval_is_harm():
    nnt = number_needed_to_treat(arr_interval(-0.10, -0.20, -0.05))
    assert nnt["median"] == pytest.approx(-10.0)
    assert nnt["text"] == "NNH 10.0 (harm: 5.0 to 20.0)"


def _altman_numbers(text: str) -> tuple[str, float, float, float]:
    """Altman (BMJ 1998): 'NNT x (NNT a to infinity to NNH b)' when the ARR interval crosses 0."""
    match = re.fullmatch(r"(NNT|NNH) ([0-9.]+) \(.*?NNT ([0-9.]+)\b.*?\binfinity\b.*?NNH ([0-9.]+)\b.*\)", text)
    assert match, text
    return match.group(1), float(match.group(2)), float(match.group(3)), float(match.group(4))


def test_nnt_interval_crossing_zero_goes_through_infinity_altman_1998():
    # ARR 0.05 (-0.02 to 0.125): NNT 20; benefit end 1/0.125 = 8; harm end 1/0.02 = 50
    nnt = number_needed_to_treat(arr_interval(0.05, -0.02, 0.125))
    head, centre, benefit_end, harm_end = _altman_numbers(nnt["text"])
    assert (head, centre, benefit_end, harm_end) == ("NNT", 20.0, 8.0, 50.0)
    assert nnt["benefit_bound"] == pytest.approx(8.0) and nnt["harm_bound"] == pytest.approx(-50.0)
    # the "NNT" end comes first and the "NNH" end last, as Altman writes it
    assert nnt["text"].index("NNT 8.0") < nnt["text"].index("infinity") < nnt["text"].index("NNH 50.0")


def test_nnt_crossing_zero_with_a_harmful_median_says_nnh_first():
    # ARR -0.025 (-0.1 to 0.04): NNH 40; benefit end 1/0.04 = 25; harm end 1/0.1 = 10
    head, centre, benefit_end, harm_end = _altman_numbers(number_needed_to_treat(arr_interval(-0.025, -0.1, 0.04))["text"])
    assert (head, centre, benefit_end, harm_end) == ("NNH", 40.0, 25.0, 10.0)


def test_mortality_nnt_wording_follows_the_sign_of_the_effect():
    # A posterior clearly favouring cells must say NNT, never NNH (catches a flipped ARR sign).
    rng = np.random.default_rng(1)
    log_or = rng.normal(math.log(0.5), 0.1, size=2000)
    posterior = xr.Dataset({"log_or": draws(log_or, 2), "log_or_new": draws(log_or, 2), "tau": draws(np.full(2000, 0.1), 2)})
    d = mortality_decisions(posterior, threshold_or=0.8, baseline_risk=0.3, ci_prob=0.95)
    assert d.get("absolute_risk_reduction").lower > 0 and d.get("nnt")["text"].startswith("NNT ")
    assert d.get("nnt")["median"] == pytest.approx(17 / 2.1, rel=0.03)  # 1 / ARR at OR 0.5, baseline 0.3


# -- the new-trial effect ------------------------------------------------------------------


def test_predictive_effect_with_tau_zero_is_the_pooled_effect():
    mean = draws(np.linspace(-1, 1, 400), 4)
    np.testing.assert_array_equal(predictive_effect(mean, mean * 0.0, seed=3).values, mean.values)


def test_predictive_effect_adds_tau_times_a_standard_normal():
    rng = np.random.default_rng(42)
    n_chain, n_draw = 4, 25_000
    mean = draws(rng.normal(0.3, 0.4, n_chain * n_draw), n_chain)
    tau = draws(np.abs(rng.normal(0.0, 0.6, n_chain * n_draw)), n_chain)
    new = predictive_effect(mean, tau, seed=5)
    # Var(mean + tau * eps) = Var(mean) + E[tau^2] for eps ~ N(0, 1) independent of both
    expected = 0.4**2 + 0.6**2
    sample_var = float(new.var())
    n = n_chain * n_draw
    # the sample variance of N draws has SD ~ sqrt(2 / N) * sigma^2 (kurtosis of a normal
    # mixture is a little higher: allow 6 such SDs)
    assert sample_var == pytest.approx(expected, abs=6 * math.sqrt(2 / n) * expected * 1.5)
    assert float((new - mean).var()) > 0.3  # tau really enters (E[tau^2] = 0.36)
    # the standardised innovation is N(0, 1) and independent of tau
    eps = ((new - mean) / tau).values.ravel()
    assert stats.kstest(eps, "norm").pvalue > 1e-3
    assert abs(np.corrcoef(eps, tau.values.ravel())[0, 1]) < 5 / math.sqrt(n)
    # seeded: the same seed reproduces it, another seed does not
    np.testing.assert_array_equal(predictive_effect(mean, tau, seed=5).values, new.values)
    assert not np.array_equal(predictive_effect(mean, tau, seed=6).values, new.values)


# -- probabilities and their Monte Carlo error -----------------------------------------------


def test_probability_and_mcse_for_iid_draws_match_the_binomial_formula():
    rng = np.random.default_rng(7)
    n_chain, n_draw = 4, 2500
    x = rng.normal(0.25, 1.0, (n_chain, n_draw))  # P(x > 0) = Phi(0.25) ~ 0.599
    event = draws(x.ravel() > 0, n_chain)
    p = probability(event)
    assert p.prob == pytest.approx((x > 0).mean(), abs=1e-15)
    iid_mcse = math.sqrt(p.prob * (1 - p.prob) / x.size)  # independent draws: ESS = N
    assert p.mcse == pytest.approx(iid_mcse, rel=0.15)
    assert str(p) == f"{p.prob:.3f} (MCSE {p.mcse:.3f})"


def test_probability_mcse_grows_with_autocorrelation():
    # AR(1) with rho = 0.9: ESS ~ N (1 - rho) / (1 + rho) = N / 19, so MCSE ~ sqrt(19) x iid
    rng = np.random.default_rng(8)
    n_chain, n_draw, rho = 4, 5000, 0.9
    x = np.empty((n_chain, n_draw))
    x[:, 0] = rng.normal(size=n_chain)
    for t in range(1, n_draw):
        x[:, t] = rho * x[:, t - 1] + math.sqrt(1 - rho**2) * rng.normal(size=n_chain)
    p = probability(draws(x.ravel() > 0, n_chain))
    iid_mcse = math.sqrt(p.prob * (1 - p.prob) / x.size)
    # the indicator of an AR(1) is less autocorrelated than the AR(1) itself, but far from iid
    assert 2.0 * iid_mcse < p.mcse < math.sqrt(19) * 1.3 * iid_mcse


def test_certain_event_has_zero_mcse():
    assert probability(draws([True] * 100, 2)).to_dict() == {"prob": 1.0, "mcse": 0.0}
    assert probability(draws([False] * 100, 2)).to_dict() == {"prob": 0.0, "mcse": 0.0}


@pytest.mark.parametrize("direction", ["increase", "decrease"])
def test_continuous_decisions_count_draws_beyond_the_threshold(direction):
    sign = 1.0 if direction == "increase" else -1.0
    # 10 pooled draws (in the direction of benefit): 2 harmful, 3 small, 5 beyond 20 units
    mu = sign * np.array([-5.0, -1.0, 2.0, 10.0, 19.0, 21.0, 25.0, 30.0, 40.0, 60.0])
    mu_new = sign * np.array([-30.0, -20.0, -10.0, 1.0, 5.0, 15.0, 25.0, 35.0, 45.0, 80.0])
    posterior = xr.Dataset({"mu": draws(mu, 2), "mu_new": draws(mu_new, 2), "tau": draws(np.full(10, 12.0), 2)})
    d = continuous_decisions(posterior, meaningful=20.0, direction=direction, ci_prob=0.95)
    assert d.prob_benefit.prob == pytest.approx(8 / 10)
    assert d.prob_meaningful.prob == pytest.approx(5 / 10)
    assert d.predictive_prob_benefit.prob == pytest.approx(7 / 10)
    assert d.meaningful_threshold == sign * 20.0
    assert d.pooled_effect.median == pytest.approx(sign * 20.0)  # (19 + 21) / 2: the 5th and 6th of 10 sorted
    assert d.tau.median == 12.0
    out = d.to_dict()
    assert out["prob_meaningful"]["prob"] == pytest.approx(0.5)
    assert out["unit"] == "mmHg" and "natural_course_mean" not in out["outcome_specific"]


def test_interval_is_the_equal_tailed_quantile_interval():
    rng = np.random.default_rng(9)
    x = rng.gamma(2.0, 1.0, 8000)
    from bayes_msc.decisions import interval

    iv = interval(draws(x, 4), 0.95)
    lower, upper = np.quantile(x, [0.025, 0.975])
    assert iv.lower == pytest.approx(lower, rel=2e-3) and iv.upper == pytest.approx(upper, rel=2e-3)
    assert iv.median == pytest.approx(np.median(x)) and iv.ci_kind == "eti" and iv.ci_prob == 0.95
    iv90 = interval(draws(x, 4), 0.90)
    assert iv90.upper == pytest.approx(np.quantile(x, 0.95), rel=2e-3)


def test_interval_ends_carry_their_quantile_mcse():
    """iid draws: the MCSE of the sample q-quantile is sqrt(q (1 - q) / N) / f(x_q) (the
    asymptotic variance of a sample quantile), here for a gamma(2) posterior; the interval's
    ends carry it, and the display prints it for tau."""
    rng = np.random.default_rng(21)
    n = 40_000
    x = rng.gamma(2.0, 1.0, n)
    from bayes_msc.decisions import interval
    from bayes_msc.io.display import _iv

    iv = interval(draws(x, 4), 0.95)
    for q, got in ((0.025, iv.mcse_lower), (0.975, iv.mcse_upper)):
        expected = math.sqrt(q * (1 - q) / n) / stats.gamma(2.0).pdf(stats.gamma(2.0).ppf(q))
        assert got == pytest.approx(expected, rel=0.3), q  # the density inside the MCSE is itself estimated
    assert iv.mcse_upper > 3 * iv.mcse_median  # the upper tail is far less certain than the median
    assert f"ends {iv.mcse_lower:.3f} / {iv.mcse_upper:.3f}" in _iv(iv, ".2f", ends=True)


# -- the same quantities in real fits (what api derives and decides) -------------------------------


@pytest.mark.parametrize(("fixture", "pooled", "new"), [("small_mortality_fit", "log_or", "log_or_new"),
                                                         ("hostile_oxygenation", "mu", "mu_new")])
def test_fitted_new_trial_effect_is_pooled_plus_tau_times_standard_normal(request, fixture, pooled, new):
    result = request.getfixturevalue(fixture)
    result = result[0] if isinstance(result, tuple) else result
    post = result.posterior
    eps = ((post[new] - post[pooled]) / post["tau"]).values.ravel()
    assert stats.kstest(eps, "norm").pvalue > 1e-3  # a new trial adds tau * N(0, 1), not 0
    assert float(post[new].var()) > float(post[pooled].var())


def test_fitted_mortality_decisions_are_the_draw_counts(small_mortality_fit):
    post = small_mortality_fit.posterior
    d = small_mortality_fit.decisions
    log_or = post["log_or"].values.ravel()
    assert d.prob_benefit.prob == pytest.approx(np.mean(log_or < 0), abs=1e-12)
    assert d.prob_meaningful.prob == pytest.approx(np.mean(log_or < math.log(d.meaningful_threshold)), abs=1e-12)
    assert d.predictive_prob_benefit.prob == pytest.approx(np.mean(post["log_or_new"].values < 0), abs=1e-12)
    b = d.get("baseline_risk")
    odds = np.exp(log_or)
    by_hand = b - b * odds / (1 - b + b * odds)
    assert d.get("absolute_risk_reduction").median == pytest.approx(np.median(by_hand), rel=1e-9)
    assert (d.get("absolute_risk_reduction").lower, d.get("absolute_risk_reduction").upper) == pytest.approx(tuple(np.quantile(by_hand, [0.025, 0.975])), rel=1e-6)
