"""The next trial (bayes_msc.design) against exact or published answers.

Cost: the pure-maths tests take a few seconds; the tests marked slow fit the mortality model
once (few draws) and refit it twice for the fragility check (about 20-30 s on 2 cores).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import special, stats

from bayes_msc.design import assurance as asr
from bayes_msc.design.fragility import Candidate, search
from bayes_msc.design.map_prior import (
    NormalMixture,
    binary_unit_information,
    elir_ess,
    fit_mixture,
    from_rbest_json,
    normal_unit_information,
    robustify,
    to_rbest_json,
)


def single(mean, sd) -> NormalMixture:
    return NormalMixture((1.0,), (float(mean),), (float(sd),))


# -- assurance: closed forms -----------------------------------------------------------------


def test_assurance_with_normal_prior_and_likelihood_equals_the_closed_form():
    """theta ~ N(m, v), estimate ~ N(theta, s^2), success if estimate / s > z:
    assurance = Phi((m - z s) / sqrt(s^2 + v)) (O'Hagan et al. 2005)."""
    rng = np.random.default_rng(1)
    m, v, sd, n, alpha = 12.0, 15.0**2, 90.0, 120, 0.05
    draws = rng.normal(m, math.sqrt(v), 200_000)
    trial = asr.Trial(False, +1, alpha, (asr.Criterion(0.0, 0.975),), single(0, 1e3))
    prior = asr.DesignPrior(draws, sd=np.full(draws.size, sd))
    row = asr.evaluate(trial, [n], prior, [])[0]
    s, z = sd * math.sqrt(2 / n), stats.norm.isf(alpha / 2)
    exact = stats.norm.cdf((m - z * s) / math.sqrt(s**2 + v))
    per_draw = special.ndtr(draws / s - z)
    mcse = per_draw.std() / math.sqrt(draws.size)
    assert abs(row["assurance_frequentist"] - exact) < 4 * mcse


def test_bayesian_assurance_with_a_normal_map_prior_equals_the_closed_form():
    """With a one-component prior N(m0, v0) the rule P(theta > 0 | estimate) > q is
    estimate > c with c = -z_q sqrt(v_post) (v0 + s^2) / v0 - m0 s^2 / v0, so assurance is
    Phi((m - c) / sqrt(s^2 + v)) — checks the vectorised bisection and the conjugate update."""
    rng = np.random.default_rng(2)
    m0, v0, m, v, sd, n, q = 10.0, 30.0**2, 15.0, 20.0**2, 100.0, 80, 0.9
    draws = rng.normal(m, math.sqrt(v), 200_000)
    trial = asr.Trial(False, +1, 0.05, (asr.Criterion(0.0, q),), single(m0, math.sqrt(v0)))
    row = asr.evaluate(trial, [n], asr.DesignPrior(draws, sd=np.full(draws.size, sd)), [])[0]
    s2 = 2 * sd**2 / n
    v_post = v0 * s2 / (v0 + s2)
    c = (stats.norm.ppf(q) * math.sqrt(v_post) * (v0 + s2) - m0 * s2) / v0
    exact = stats.norm.cdf((m - c) / math.sqrt(s2 + v))
    mcse = special.ndtr((draws - c) / math.sqrt(s2)).std() / math.sqrt(draws.size)
    assert abs(row["assurance_bayesian"] - exact) < 4 * mcse


def test_type_one_error_of_the_frequentist_test_is_alpha():
    """At OR = 1 the two-sided Wald test of the log OR rejects with probability alpha: the
    exact binomial enumeration gives its size, and simulated trials agree with it within MC error."""
    n, p0, alpha = 400, 0.3, 0.05
    trial = asr.Trial(True, -1, alpha, (asr.Criterion(0.0, 0.975),), single(0, 3))
    estimate, se = trial.binary_estimates(n)
    reject = trial.frequentist_reject(estimate, se)
    exact = float(asr.binary_success_probability(reject, n, [p0], [p0])[0])
    assert abs(exact - alpha) < 0.003  # the Wald test's size at n = 400, p0 = 0.3
    rng = np.random.default_rng(3)
    sims = 200_000
    x0, x1 = rng.binomial(n, p0, sims), rng.binomial(n, p0, sims)
    # the Wald statistic written out again, independently of the module
    lor = np.log((x1 + .5) / (n - x1 + .5)) - np.log((x0 + .5) / (n - x0 + .5))
    z = lor / np.sqrt(1 / (x0 + .5) + 1 / (n - x0 + .5) + 1 / (x1 + .5) + 1 / (n - x1 + .5))
    simulated = float((np.abs(z) > stats.norm.isf(alpha / 2)).mean())
    assert abs(simulated - exact) < 4 * math.sqrt(alpha * (1 - alpha) / sims)
    assert abs(simulated - alpha) < 4 * math.sqrt(alpha * (1 - alpha) / sims) + 0.003
    # success also needs the right direction: half the rejections at OR = 1
    success = trial.frequentist_success(estimate, se)
    assert float(asr.binary_success_probability(success, n, [p0], [p0])[0]) == pytest.approx(exact / 2, abs=1e-3)


def test_exact_binomial_posterior_matches_two_dimensional_quadrature():
    """The quadrature behind the small-trial Bayesian analysis against scipy's dblquad of
    prior(theta) N(alpha | 0, 2^2) Bin(x0 | n, expit(alpha)) Bin(x1 | n, expit(alpha + theta))."""
    from scipy.integrate import dblquad

    prior = NormalMixture((0.8, 0.2), (-0.4, 0.0), (0.5, 3.0))
    trial = asr.Trial(True, -1, 0.05, (asr.Criterion(0.0, 0.975),), prior)
    n = 12
    p = trial.exact_posterior(n, 0.0)
    def binom(x, logit):  # plain floats: dblquad calls this ~10^5 times
        q = 1 / (1 + math.exp(-logit))
        return math.comb(n, x) * q**x * (1 - q) ** (n - x)

    def prior_pdf(t):
        return sum(w / (s * math.sqrt(2 * math.pi)) * math.exp(-0.5 * ((t - m) / s) ** 2)
                   for w, m, s in zip(prior.weights, prior.means, prior.sds))

    for x0, x1 in [(6, 2), (0, 0)]:
        def f(alpha, theta):
            return prior_pdf(theta) * math.exp(-alpha**2 / 8) * binom(x0, alpha) * binom(x1, alpha + theta)
        below = dblquad(f, -6, 0, -12, 12, epsabs=1e-10)[0]
        above = dblquad(f, 0, 6, -12, 12, epsabs=1e-10)[0]
        assert p[x0, x1] == pytest.approx(below / (below + above), abs=1e-3)


def test_risk_difference_test_is_pearsons_chi_square():
    """The two-proportion z-test of the risk difference rejects exactly when scipy's Pearson
    chi-square test (no continuity correction) has P < alpha."""
    n, alpha = 30, 0.05
    trial = asr.Trial(True, -1, alpha, (asr.Criterion(0.0, 0.975),), single(0, 3), test="risk_difference")
    diff, se = trial.risk_difference_statistic(n)
    reject = trial.frequentist_reject(diff, se)
    for x0 in range(0, n + 1, 3):
        for x1 in range(0, n + 1, 2):
            if x0 + x1 in (0, 2 * n):
                assert not reject[x0, x1]
                continue
            table = [[x0, n - x0], [x1, n - x1]]
            p = stats.chi2_contingency(table, correction=False).pvalue
            assert reject[x0, x1] == (p < alpha)


def test_binary_assurance_equals_simulated_trials():
    """The enumeration (exact in the outcomes) against brute-force simulation of whole trials
    with the Bayesian rule applied trial by trial."""
    rng = np.random.default_rng(4)
    prior = NormalMixture((0.6, 0.4), (-0.4, -0.2), (0.3, 0.8))
    trial = asr.Trial(True, -1, 0.05, (asr.Criterion(0.0, 0.9),), prior)
    n, draws = 60, 4000  # above EXACT_MAX_N: the normal-approximation path
    effect = rng.normal(-0.3, 0.4, draws)
    p0 = rng.uniform(0.2, 0.5, draws)
    row = asr.evaluate(trial, [n], asr.DesignPrior(effect, control_risk=p0), [])[0]
    sims = 200_000
    pick = rng.integers(0, draws, sims)
    p1 = special.expit(special.logit(p0[pick]) + effect[pick])
    x0, x1 = rng.binomial(n, p0[pick]), rng.binomial(n, p1)
    estimate, se = trial.binary_estimates(n)
    decided = trial.bayesian_success(estimate, se)[x0, x1]
    assert abs(decided.mean() - row["assurance_bayesian"]) < 4 * math.sqrt(0.25 / sims)


# -- the MAP mixture ---------------------------------------------------------------------


def test_em_recovers_a_known_mixture_and_bic_picks_its_size():
    rng = np.random.default_rng(5)
    truth = NormalMixture((0.7, 0.3), (-0.5, 0.8), (0.3, 0.6))
    fit = fit_mixture(truth.sample(20_000, rng))
    assert fit.mixture.n_components == 2
    np.testing.assert_allclose(fit.mixture.weights, truth.weights, atol=0.02)
    np.testing.assert_allclose(fit.mixture.means, truth.means, atol=0.03)
    np.testing.assert_allclose(fit.mixture.sds, truth.sds, atol=0.03)
    assert fit.ks_distance < 0.01


def test_conjugate_update_matches_quadrature():
    prior = NormalMixture((0.5, 0.3, 0.2), (-0.5, 0.2, 0.0), (0.3, 0.6, 2.0))
    from scipy.integrate import quad

    for y, se in [(-0.8, 0.4), (1.5, 0.3)]:
        dens = lambda t: float(prior.pdf(t)) * stats.norm.pdf(y, t, se)  # noqa: E731
        below = quad(dens, -np.inf, -0.1, epsabs=1e-13)[0]
        exact = below / (below + quad(dens, -0.1, np.inf, epsabs=1e-13)[0])
        assert float(prior.update(y, se).prob_below(-0.1)) == pytest.approx(exact, abs=1e-6)


# -- RBesT's published expectations -----------------------------------------------------


def test_elir_of_a_conjugate_normal_is_the_canonical_formula():
    """RBesT tests/testthat/test-utils.R, "conjugate normal case matches canonical formula":
    mixnorm(c(1, -1, 2), sigma = 4) has ELIR ESS sigma^2 / s^2 = 16 / 4 = 4."""
    assert elir_ess(single(-1, 2), normal_unit_information(4 / math.sqrt(2))) == pytest.approx(4.0, rel=1e-6)


def test_elir_scales_with_the_reference_scale_as_rbest_checks():
    """RBesT tests/testthat/test-utils.R, "normal mixtures have reference scale used
    correctly", on inst/examples/ess.R's nmix <- mixnorm(rob = c(0.5, 0, 2), inf = c(0.5, 3, 4)):
    the ESS at sigma / sqrt(2) is half the ESS at sigma, with sigma = 2 x the mixture's SD."""
    nmix = NormalMixture((0.5, 0.5), (0.0, 3.0), (2.0, 4.0))
    sigma_large = 2 * nmix.sd()
    large = elir_ess(nmix, normal_unit_information(sigma_large / math.sqrt(2)))
    small = elir_ess(nmix, normal_unit_information(sigma_large / 2))
    assert math.floor(abs(small - large / 2)) == 0
    assert small == pytest.approx(large / 2, rel=1e-9)
    # and ELIR is the prior's expected information: for a mixture it lies between the
    # components' own ESS (sigma^2 / s_k^2), not at their weighted sum
    assert sigma_large**2 / 16 < large < sigma_large**2 / 4


def test_elir_on_the_logit_scale_matches_rbest_binomial_family():
    """RBesT inst/examples/ess.R: ess(mixnorm(c(1, log(5/15), sqrt(1/5 + 1/15))), family = binomial)
    is ELIR with I_F(theta) = p (1 - p), p = expit(theta) (R/mixess.R). The ELIR integral
    with that information, against direct quadrature of its definition."""
    prior = single(math.log(5 / 15), math.sqrt(1 / 5 + 1 / 15))
    grid = np.linspace(-15, 15, 400_001)
    p = special.expit(grid)
    expected = np.trapezoid(prior.pdf(grid) * (1 / prior.sds[0] ** 2) / (p * (1 - p)), grid)
    got = elir_ess(prior, lambda t: special.expit(np.asarray(t)) * special.expit(-np.asarray(t)))
    assert got == pytest.approx(expected, rel=1e-6)


def test_robustify_matches_rbest():
    """RBesT inst/examples/robustify.R: robustify(mixnorm(inf1 = c(0.2, 0.5, 0.7),
    inf2 = c(0.8, 2, 1), sigma = 2), weight = 0.1, mean = 0, sigma = 2) adds the
    unit-information component c(0.1, 0, 2) and scales the others by 0.9 (R/robustify.R)."""
    nm = NormalMixture((0.2, 0.8), (0.5, 2.0), (0.7, 1.0))
    r = robustify(nm, 0.1, 0.0, 2.0)
    np.testing.assert_allclose(r.weights, (0.18, 0.72, 0.1))
    np.testing.assert_allclose(r.means, (0.5, 2.0, 0.0))
    np.testing.assert_allclose(r.sds, (0.7, 1.0, 2.0))


def test_rbest_json_layout_round_trips():
    """The layout of RBesT's write_mix_json (R/mixjson.R): meta = the R attributes, comp =
    the 3 x K matrix by rows; read_mix_json rescales the weights to sum to one."""
    text = to_rbest_json(NormalMixture((0.2, 0.8), (0.0, 2.0), (2.0, 2.0)), sigma=5, names=["rob", "inf"])
    payload = json.loads(text)
    assert payload["meta"]["dim"] == [3, 2]
    assert payload["meta"]["dimnames"] == [["w", "m", "s"], ["rob", "inf"]]
    assert payload["meta"]["class"] == ["normMix", "mix"]
    assert payload["comp"] == [[0.2, 0.8], [0.0, 2.0], [2.0, 2.0]]
    mix, sigma = from_rbest_json(text)
    assert sigma == 5 and mix.weights == (0.2, 0.8)
    # as RBesT writes it (jsonlite: scalars as length-one arrays), weights not summing to one
    rbest = ('{"meta":{"dim":[3,2],"dimnames":[["w","m","s"],["rob","inf"]],"class":["normMix","mix"],'
             '"sigma":[5],"likelihood":["normal"],"link":["identity"]},"comp":[[0.15,0.8],[0,2],[2,2]]}')
    mix, sigma = from_rbest_json(rbest)
    assert sum(mix.weights) == pytest.approx(1) and mix.weights[0] == pytest.approx(0.15 / 0.95)


def test_binary_unit_information_is_the_inverse_variance_of_the_log_or():
    info = binary_unit_information(0.3)
    p1 = special.expit(special.logit(0.3) + math.log(0.7))
    assert float(info(np.array([math.log(0.7)]))[0]) == pytest.approx(1 / (1 / 0.21 + 1 / (p1 * (1 - p1))))


# -- fragility: the search against brute force ------------------------------------------------


SMALL_REGISTER = [  # (study, arm, deaths, n, treated)
    ("a", "cells", 2, 15, True), ("a", "control", 6, 15, False),
    ("b", "cells", 5, 20, True), ("b", "control", 8, 20, False),
    ("c", "cells", 9, 30, True), ("c", "control", 11, 30, False),
]


def _prob_or_below_1(counts: dict) -> float:
    """P(OR < 1) from the fixed-effect inverse-variance pooled log OR (0.5 correction)."""
    est, w = [], []
    for study in ("a", "b", "c"):
        (dc, nc), (dt, nt) = counts[(study, "control")], counts[(study, "cells")]
        est.append(math.log((dt + .5) / (nt - dt + .5)) - math.log((dc + .5) / (nc - dc + .5)))
        w.append(1 / (1 / (dt + .5) + 1 / (nt - dt + .5) + 1 / (dc + .5) + 1 / (nc - dc + .5)))
    pooled = sum(e * x for e, x in zip(est, w)) / sum(w)
    return float(stats.norm.cdf(-pooled * math.sqrt(sum(w))))


@pytest.mark.parametrize("threshold", [0.95, 0.99, 0.999, 0.5])
def test_fragility_search_equals_brute_force(threshold):
    counts = {(s, a): (d, n) for s, a, d, n, _ in SMALL_REGISTER}
    base = _prob_or_below_1(counts)
    cands = [Candidate(f"exact:{i}", s, a, d, 0, n, "exact") for i, (s, a, d, n, _) in enumerate(SMALL_REGISTER)]

    def prob(cand, value):
        changed = dict(counts)
        changed[(cand.study_id, cand.arm)] = (value, cand.high)
        return _prob_or_below_1(changed)

    found = search(cands, prob, base, threshold)
    brute = []
    for s, a, d, n, _ in SMALL_REGISTER:
        for value in range(n + 1):
            changed = dict(counts)
            changed[(s, a)] = (value, n)
            p = _prob_or_below_1(changed)
            if (p > threshold) != (base > threshold):
                brute.append((abs(value - d), s, a, value))
    if not brute:
        assert found is None
        return
    smallest = min(b[0] for b in brute)
    assert found is not None and found.size == smallest
    assert (found.size, found.candidate.study_id, found.candidate.arm, found.new_value) in brute


def test_partial_reports_change_within_what_they_allow():
    """Bounds stay bounds (shifted together, inside 0..n); a total is re-split over every
    allocation the design allows."""
    from bayes_msc.design.fragility import candidates, changed_report
    from bayes_msc.evidence.register import load_register
    from bayes_msc.spec import load_spec

    spec = load_spec("mortality")
    evidence = spec.outcome_type.build_evidence(load_register(), spec)
    cands = {c.study_id: c for c in candidates(evidence) if c.kind != "exact"}
    shi = cands["shi2021"]  # msc: 0-1 deaths of 65
    assert (shi.current, shi.low, shi.high) == (0, 0, 64)
    report = next(r for r in evidence.partial if r.study_id == "shi2021")
    moved = changed_report(report, "bounded", 0, 3)
    assert sorted(c.counts[0].deaths for c in moved.configurations) == [3, 4]
    spec_dr = spec.with_evidence(evidence_set="all").with_model(dose_response="emax")  # BC-U001 is single-arm
    evidence_dr = spec_dr.outcome_type.build_evidence(load_register(), spec_dr)
    total = next(r for r in evidence_dr.partial if r.kind == "total")
    cand = next(c for c in candidates(evidence_dr) if c.kind == "total")
    assert cand.current == 1
    two = changed_report(total, "total", 1, 2)
    assert {sum(a.deaths for a in c.counts) for c in two.configurations} == {2}
    allocations = {tuple(a.n for a in c.counts) for c in total.configurations}
    assert {tuple(a.n for a in c.counts) for c in two.configurations} == allocations


# -- on the real fit ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mortality_fit():
    import bayes_msc

    return bayes_msc.fit("mortality", draws=1000, seed=11)


@pytest.mark.slow
def test_map_mixture_quantiles_match_the_mcmc_predictive(mortality_fit):
    """Stated tolerance: at each quantile from 2.5% to 97.5% of the MCMC draws, the mixture's
    CDF is within 4 Monte Carlo standard errors of the quantile's probability (ESS taken as
    half the draws, for autocorrelation); every quantile within 0.1 on the log-OR scale; KS
    distance below 0.02."""
    draws = mortality_fit.posterior["log_or_new"].values.ravel()
    fit = fit_mixture(draws)
    assert fit.ks_distance < 0.02
    ess = draws.size / 2
    for q in fit.quantiles:
        empirical = np.quantile(draws, q["prob"])
        p = q["prob"]
        assert abs(float(fit.mixture.cdf(empirical)) - p) < 4 * math.sqrt(p * (1 - p) / ess)
        assert abs(q["mixture"] - empirical) < 0.1


@pytest.fixture(scope="module")
def mortality_design(mortality_fit):
    from bayes_msc.design import design
    from bayes_msc.design.plan import DesignSettings

    return design(mortality_fit, DesignSettings(n_grid=(50, 200)))


@pytest.mark.slow
def test_design_mortality_end_to_end(mortality_design):
    from bayes_msc.design.text import render_design

    d = mortality_design
    # reweighting is checked against a refit (two MC estimates of one probability): where they
    # differ by more than 2 MCSE of their difference the refit is what is reported, never hidden
    for row in d.fragility:
        if row.get("prob_refit") is not None:
            assert row["mcse_reweighted"] > 0 and 0 < row["mcse_refit"] < 0.02
            spread = math.hypot(row["mcse_reweighted"], row["mcse_refit"])
            disagree = abs(row["prob_reweighted"] - row["prob_refit"]) > 2 * spread
            assert row["prob_after_from"] == ("refit" if disagree else "reweighted")
            assert row["prob_after"] == (row["prob_refit"] if row["prob_after_from"] == "refit" else row["prob_reweighted"])
            assert abs(row["prob_after"] - row["prob_refit"]) < 4 * spread  # what is reported is the refit's answer
    # the robust prior gives less information than the MAP mixture
    assert 0 < d.ess["robust"] < d.ess["map"]
    # the Bayesian rule borrows: at OR = 1 it is at least as liberal as the test's one-sided 2.5%
    assert d.table["frequentist|no effect"].max() < 0.03
    text = render_design(d)
    for needle in ("MAP prior", "ESS (ELIR", "Sample size for 80% assurance", "Fragility"):
        assert needle in text
    json.dumps(d.to_dict(), default=float)


def test_cli_design_rejects_bad_options_with_one_line(capsys):
    from bayes_msc.cli import main

    assert main(["design", "mortality", "--control-risk", "1.5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--control-risk" in err[0]


@pytest.mark.slow
def test_report_has_the_next_trial_section(mortality_fit, mortality_design):
    from bayes_msc.report import render_report

    html = render_report(mortality_fit, design=mortality_design)
    start = html.index('id="next-trial"')
    section = html[start:html.index("</section>", start)]
    assert "<svg" in section and "Assurance, Bayesian" in section and "How fragile" in section
    assert "<script" not in html
    without = render_report(mortality_fit)
    assert 'id="next-trial"' not in without


@pytest.mark.slow
def test_cli_design_prints_json_and_exports_the_prior(tmp_path, capsys):
    from bayes_msc.cli import main

    prior = tmp_path / "map.json"
    assert main(["design", "mortality", "--draws", "500", "--n-per-arm", "30,60", "--json",
                 "--export-prior", str(prior)]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert [r["n_per_arm"] for r in payload["assurance"]] == [30, 60]
    mix, sigma = from_rbest_json(prior.read_text())
    assert mix.weights[-1] == pytest.approx(0.2, abs=1e-5) and mix.means[-1] == 0.0 and sigma == pytest.approx(payload["reference_sigma"], rel=1e-5)  # weights: 6 decimals in the file, renormalised when read


# -- the design is coherent with the fit ------------------------------------------------------


def _independent_elir_constant_information(weights, means, sds, sigma) -> float:
    """RBesT's ELIR of a normal mixture, sigma^2 * E_p[-d^2/dtheta^2 log p(theta)], with the
    mixture's information written out here (p'/p and p''/p of a sum of normal densities) and
    integrated by adaptive quadrature."""
    from scipy import integrate

    w, m, s = (np.asarray(x, float) for x in (weights, means, sds))
    w = w / w.sum()

    def integrand(t):
        phi = w * stats.norm.pdf(t, m, s)
        p = phi.sum()
        d1 = (phi * -(t - m) / s**2).sum()
        d2 = (phi * (((t - m) / s**2) ** 2 - 1 / s**2)).sum()
        return d1**2 / p - d2  # p * i(theta), i = (p'/p)^2 - p''/p

    lo, hi = float((m - 15 * s).min()), float((m + 15 * s).max())
    breaks = sorted(set(np.round(np.concatenate([m, m - s, m + s]), 6)))
    value, _ = integrate.quad(integrand, lo, hi, points=breaks, limit=500, epsabs=1e-12, epsrel=1e-10)
    return sigma**2 * value


def test_independent_elir_is_the_canonical_formula_for_one_normal():
    assert _independent_elir_constant_information([1.0], [-1.0], [2.0], 4.0) == pytest.approx(4.0, rel=1e-8)


@pytest.mark.slow
def test_exported_json_reproduces_the_printed_ess(mortality_design, tmp_path):
    """What an RBesT user gets from --export-prior: the robust mixture and sigma, read from the
    JSON as written, give the printed ESS by RBesT's definition (constant information
    1/sigma^2); the vague component weighs one patient per arm."""
    import re

    from bayes_msc.design.text import render_design

    d = mortality_design
    text = render_design(d)
    printed = re.search(r"RBesT's definition; patients per arm\): MAP ([\d.]+), robust MAP ([\d.]+)", text)
    assert printed, text
    for robust, shown in ((False, printed.group(1)), (True, printed.group(2))):
        path = tmp_path / f"map{int(robust)}.json"
        path.write_text(d.rbest_json(robust=robust))
        payload = json.loads(path.read_text())
        weights, means, sds = payload["comp"]
        sigma = payload["meta"]["sigma"][0]
        ess = _independent_elir_constant_information(weights, means, sds, sigma)
        assert f"{ess:.1f}" == shown
    assert "weighs 1.0 patient(s) per arm at constant information" in text
    assert "theta-dependent ELIR" in text  # the other definition, named


def _control_arm_counts(evidence):
    arms = evidence.arms.reset_index(drop=True)
    control = set(arms.index[arms["treated"] == 0])
    rows = evidence.exact[evidence.exact["arm_index"].isin(control)]
    return rows["deaths"].to_numpy(int), rows["n"].to_numpy(int)


def _independent_control_risk(deaths, n, mean_sd=2.0, sd_scale=1.0):
    """P(new control risk < 5%) and the predictive median under deaths_j ~ Bin(n_j, expit(m +
    s z_j)), z_j ~ N(0, 1), m ~ N(0, mean_sd^2), s ~ HalfNormal(sd_scale): a trapezoid grid on
    (m, s) and on z (not the package's binned log-odds)."""
    from scipy import optimize

    m = np.linspace(-6, 4, 201)
    s = np.linspace(1e-4, 4.5, 181)
    z = np.linspace(-7, 7, 561)
    phi_z = stats.norm.pdf(z)
    mm, ss = np.meshgrid(m, s, indexing="ij")
    a = mm[..., None] + ss[..., None] * z
    log_post = stats.norm.logpdf(mm, 0, mean_sd) + stats.halfnorm.logpdf(ss, scale=sd_scale)
    for d, k in zip(deaths, n):
        loglik = d * -np.logaddexp(0, -a) + (k - d) * -np.logaddexp(0, a)
        top = loglik.max(-1, keepdims=True)
        log_post += np.log(np.trapezoid(np.exp(loglik - top) * phi_z, z, axis=-1)) + top[..., 0]
    post = np.exp(log_post - log_post.max())
    cell = np.outer(np.gradient(m), np.gradient(s))
    post = post * cell / (post * cell).sum()

    def cdf(x):
        return float((post * special.ndtr((x - mm) / ss)).sum())

    median = special.expit(optimize.brentq(lambda x: cdf(x) - 0.5, -20, 20))
    return cdf(special.logit(0.05)), median


@pytest.mark.slow
def test_control_risk_comes_from_a_hierarchical_model_of_the_control_arms(mortality_fit, mortality_design):
    """The new trial's control risk: exchangeable control log-odds with each trial's binomial
    count in the likelihood (priors: mean N(0, 2), between-trial SD half-normal(1)). Its share
    below 5% and median against an independent quadrature; the output says where it came from."""
    from bayes_msc.design.text import render_design

    deaths, n = _control_arm_counts(mortality_fit.evidence)
    assert len(deaths) == 10
    below, median = _independent_control_risk(deaths, n)
    nu = mortality_design.nuisance
    assert nu["source"] == "hierarchical"
    assert nu["share_below_5_percent"] == pytest.approx(below, abs=0.003)
    assert nu["median"] == pytest.approx(median, abs=0.005)
    assert "hierarchical model of the 10 control arms" in render_design(mortality_design)


def test_control_risk_model_against_independent_quadrature_on_a_small_register():
    """Three control arms, one of them with no deaths: the grid posterior's predictive
    share below 5% and median against the independent trapezoid computation."""
    from types import SimpleNamespace

    import pandas as pd

    from bayes_msc.design.control_risk import fit_control_risk, summarise

    deaths, n = np.array([0, 5, 12]), np.array([30, 20, 25])
    arms = pd.DataFrame({"study_id": ["a", "a", "b", "b", "c", "c"], "treated": [1, 0] * 3, "n": [30, 30, 20, 20, 25, 25]})
    exact = pd.DataFrame({"arm_index": [1, 3, 5], "study_id": ["a", "b", "c"], "deaths": deaths, "n": n})
    evidence = SimpleNamespace(arms=arms, exact=exact, partial=())
    got = summarise(fit_control_risk(evidence))
    below, median = _independent_control_risk(deaths, n)
    assert got["share_below"]["prob"] == pytest.approx(below, abs=0.003)
    assert got["median"] == pytest.approx(median, abs=0.005)


@pytest.mark.slow
def test_design_at_the_fits_stated_baseline_risk(mortality_fit):
    from bayes_msc.design import design
    from bayes_msc.design.plan import DesignSettings
    from bayes_msc.design.text import render_design

    d = design(mortality_fit, DesignSettings(n_grid=(50,), control_risk="baseline", refit=False))
    assert d.nuisance["source"] == "baseline" and d.nuisance["median"] == mortality_fit.spec.decision.baseline_risk
    assert "the fit's stated baseline risk 0.427" in render_design(d)


# -- fragility: the refit, not the reweighted value, where they differ ---------------------------


def test_reweighted_probability_mcse_matches_its_spread_over_replications():
    """Self-normalised importance weights from N(0, 1) draws towards N(0.4, 1): the stated
    MCSE of the reweighted P(theta > 1) against the SD of the estimate over 400 independent
    replications."""
    from bayes_msc.design.fragility import reweighted_mcse

    rng = np.random.default_rng(5)
    estimates, stated = [], []
    for _ in range(400):
        x = rng.standard_normal(4000)
        lw = stats.norm.logpdf(x, 0.4, 1) - stats.norm.logpdf(x, 0, 1)
        w = np.exp(lw - lw.max())
        event = x > 1
        estimates.append(float((w * event).sum() / w.sum()))
        stated.append(reweighted_mcse(lw, event))
    assert np.mean(estimates) == pytest.approx(stats.norm.sf(1, 0.4), abs=0.003)
    assert np.mean(stated) == pytest.approx(np.std(estimates, ddof=1), rel=0.1)


def test_fragility_prints_the_refit_where_it_differs_by_more_than_two_mcse():
    from bayes_msc.design.fragility import reported_after
    from bayes_msc.design.text import fragility_after

    assert reported_after(0.955, 0.004, 0.935, 0.004) == (0.935, "refit")  # 0.020 > 2 x 0.0057
    assert reported_after(0.955, 0.004, 0.950, 0.004) == (0.955, "reweighted")
    assert reported_after(0.955, 0.004, None, None) == (0.955, "reweighted")
    row = {"prob_reweighted": 0.955, "mcse_reweighted": 0.004, "weights_ess": 2000, "prob_refit": 0.935,
           "mcse_refit": 0.004, "prob_after": 0.935, "prob_after_from": "refit", "flips": False}
    text = fragility_after(row)
    assert text.startswith("0.935 refitted") and "the refit does not cross the threshold" in text


# -- direction of success and the sample size, against enumeration and closed forms ------------


def _wald_power_by_enumeration(n, p0, odds_ratio, alpha):
    """P(the two-sided Wald test of the log OR, 0.5 added to each cell, rejects in favour of
    cells) for deaths: every (x_control, x_cells) enumerated with scipy's binomial pmf."""
    p1 = special.expit(special.logit(p0) + math.log(odds_ratio))
    x = np.arange(n + 1)
    x0, x1 = np.meshgrid(x, x, indexing="ij")
    lor = np.log((x1 + .5) / (n - x1 + .5)) - np.log((x0 + .5) / (n - x0 + .5))
    se = np.sqrt(1 / (x0 + .5) + 1 / (n - x0 + .5) + 1 / (x1 + .5) + 1 / (n - x1 + .5))
    fewer_deaths_with_cells = lor / se < -stats.norm.isf(alpha / 2)
    prob = np.outer(stats.binom.pmf(x, n, p0), stats.binom.pmf(x, n, p1))
    return float(prob[fewer_deaths_with_cells].sum())


@pytest.mark.parametrize("test", ["log_or", "risk_difference"])
def test_frequentist_power_for_deaths_at_or_half_by_enumeration(test):
    """Success counts fewer deaths with cells: power at OR 0.5 (control risk 0.4, 60 per arm)
    against scipy enumeration; at OR 2 (harm) it is almost nil."""
    n, p0, alpha = 60, 0.4, 0.05
    trial = asr.Trial(True, -1, alpha, (asr.Criterion(0.0, 0.975),), single(0, 3), test=test)
    scenarios = [asr.Scenario("half", math.log(0.5), control_risk=p0), asr.Scenario("double", math.log(2), control_risk=p0)]
    row = asr.evaluate(trial, [n], None, scenarios)[0]
    if test == "log_or":
        expected = _wald_power_by_enumeration(n, p0, 0.5, alpha)
    else:  # Pearson's two-proportion z-test, pooled SE, written out here
        p1 = special.expit(special.logit(p0) + math.log(0.5))
        x = np.arange(n + 1)
        x0, x1 = np.meshgrid(x, x, indexing="ij")
        pooled = (x0 + x1) / (2 * n)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (x1 - x0) / n / np.sqrt(2 * pooled * (1 - pooled) / n)
        region = np.nan_to_num(z, nan=0.0) < -stats.norm.isf(alpha / 2)
        expected = float(np.outer(stats.binom.pmf(x, n, p0), stats.binom.pmf(x, n, p1))[region].sum())
    assert expected > 0.3  # far from the type I error: the direction matters here
    assert row["frequentist|half"] == pytest.approx(expected, abs=1e-12)
    assert row["frequentist|double"] < 0.001


def _exact_posterior_below_zero(n, prior_sd, baseline_sd=2.0):
    """P(log OR < 0 | x_control, x_cells) for every outcome, log OR ~ N(0, prior_sd^2), control
    log-odds ~ N(0, baseline_sd^2), arms Bin(n, expit(a)) and Bin(n, expit(a + theta)): a
    trapezoid grid in both (an independent quadrature)."""
    theta = np.linspace(-7, 7, 701)
    a = np.linspace(-9, 9, 451)
    x = np.arange(n + 1)
    pa = stats.binom.pmf(x[None, :], n, special.expit(a)[:, None]) * stats.norm.pdf(a, 0, baseline_sd)[:, None]
    post = np.empty((len(theta), n + 1, n + 1))
    for i, t in enumerate(theta):
        pt_ = stats.binom.pmf(x[None, :], n, special.expit(a + t)[:, None])
        post[i] = stats.norm.pdf(t, 0, prior_sd) * np.trapezoid(pa[:, :, None] * pt_[:, None, :], a, axis=0)
    below = np.trapezoid(post * (theta < 0)[:, None, None], theta, axis=0)
    return below / np.trapezoid(post, theta, axis=0)


def test_exact_bayesian_rule_for_small_trials_counts_fewer_deaths_with_cells_as_success():
    """n = 12 per arm (the exact binomial analysis): the success region of P(OR < 1) > 0.975
    against an independent quadrature, and the power at OR 0.5 by enumeration over it."""
    n, p0 = 12, 0.5
    trial = asr.Trial(True, -1, 0.05, (asr.Criterion(0.0, 0.975),), single(0, 1.5))
    assert n <= trial.exact_max_n
    _, bayes = trial.binary_success(n)
    post = _exact_posterior_below_zero(n, 1.5)
    clear = np.abs(post - 0.975) > 2e-3  # leave out outcomes on the boundary of either quadrature
    assert clear.mean() > 0.95
    np.testing.assert_array_equal(bayes[clear], (post > 0.975)[clear])
    assert bayes[8, 1] and not bayes[1, 8]  # 8 control deaths vs 1 with cells: success; the reverse: not
    p1 = special.expit(special.logit(p0) + math.log(0.5))
    x = np.arange(n + 1)
    expected = float((np.outer(stats.binom.pmf(x, n, p0), stats.binom.pmf(x, n, p1)) * (post > 0.975)).sum())
    row = asr.evaluate(trial, [n], None, [asr.Scenario("half", math.log(0.5), control_risk=p0)])[0]
    assert row["bayesian|half"] == pytest.approx(expected, abs=5e-3)


def test_sample_size_search_returns_the_smallest_n_reaching_the_target():
    """Continuous outcome, z-test: power(n) = Phi(delta sqrt(n / 2) / sd - z_{1 - alpha/2}), so
    the smallest n with 80% power is ceil(2 sd^2 (z_{1 - alpha/2} + z_{0.8})^2 / delta^2)."""
    delta, sd, alpha, target = 5.0, 20.0, 0.05, 0.8
    expected = math.ceil(2 * sd**2 * (stats.norm.isf(alpha / 2) + stats.norm.ppf(target)) ** 2 / delta**2)
    assert expected == 252
    trial = asr.Trial(False, 1, alpha, (asr.Criterion(0.0, 0.975),), single(0, 1000))
    scenario = [asr.Scenario("effect", delta, sd=sd)]
    for grid in ((25, 50, 100, 200, 400), (252, 300), (10, 251, 800)):
        rows = asr.evaluate(trial, list(grid), None, scenario)
        assert asr.smallest_n(trial, None, rows, target, "frequentist|effect", scenario) == expected, grid
    rows = asr.evaluate(trial, [25, 50], None, scenario)
    assert asr.smallest_n(trial, None, rows, target, "frequentist|effect", scenario) is None


@pytest.mark.slow
def test_next_trial_section_escapes_ids_and_labels(mortality_design):
    """Ids and words from a register or a run reach the next-trial section (fragility rows,
    how the control risk was set, notes): carrying markup, they come back whole as text."""
    from dataclasses import replace
    from types import SimpleNamespace

    from bayes_msc.report.next_trial import next_trial_section
    from conftest import html_tags

    hostile = "x<script>alert(1)</script>\" onmouseover=\"alert(2)"
    rows = [dict(r) for r in mortality_design.fragility]
    assert any(r.get("change") is not None for r in rows)
    for r in rows:
        if r.get("change") is not None:
            r.update(study_id=hostile, arm=hostile)
    d = replace(mortality_design, fragility=rows, notes=[hostile],
                nuisance={**mortality_design.nuisance, "how": hostile},
                null_trial=[{**r, "conclusion": hostile} for r in mortality_design.null_trial])
    html = str(next_trial_section(SimpleNamespace(design=d)))


    parsed = html_tags(html)
    assert "script" not in {t for t, _ in parsed.tags}
    assert not [n for _, a in parsed.tags for n in a if n.startswith("on")]
    assert "".join(parsed.text).count(hostile) >= 4  # fragility (study and arm), control risk, note, null trial


def test_control_arms_take_bounds_as_every_allowed_count_and_leave_totals_out():
    from types import SimpleNamespace

    import pandas as pd

    from bayes_msc.design.control_risk import control_arms
    from bayes_msc.evidence.mortality import ArmCount, Configuration, PartialReport

    arms = pd.DataFrame({"study_id": ["a", "a", "b", "b", "c", "c"], "treated": [1, 0, 1, 0, 1, 0],
                         "n": [30, 20, 10, 12, None, None]})
    exact = pd.DataFrame({"arm_index": [0, 2], "study_id": ["a", "b"], "deaths": [3, 1], "n": [30, 10]})
    bound = PartialReport("a", "bounded", ("control",), "0-2/20",
                          tuple(Configuration(0.0, (ArmCount(1, d, 20),)) for d in range(3)))
    total = PartialReport("c", "total", ("msc", "control"), "5 of 20", tuple(
        Configuration(0.0, (ArmCount(4, d, 10), ArmCount(5, 5 - d, 10))) for d in range(6)))
    exact_b = pd.concat([exact, pd.DataFrame({"arm_index": [3], "study_id": ["b"], "deaths": [4], "n": [12]})])
    found, left_out = control_arms(SimpleNamespace(arms=arms, exact=exact_b, partial=(bound, total)))
    assert {(c.study_id, c.deaths, c.n) for c in found} == {("a", (0, 1, 2), 20), ("b", (4,), 12)}
    assert len(left_out) == 1 and left_out[0].startswith("c ")
