"""Every log-density against an independent reference over edge grids, in the spirit of PyMC's
``check_logp``: n = 0, deaths in {0, n}, logits at +-30, tiny and huge standard errors.

Two implementations of each likelihood exist and both are checked: the pytensor terms the
sampler uses (through the built PyMC model's own ``compile_logp``) and the scipy functions
that fill ``log_likelihood`` for PSIS-LOO. The references are written out here:

* binomial: ``log C(n, d) + d log p + (n - d) log(1 - p)`` with ``log p`` and ``log(1 - p)``
  from ``scipy.special.log_expit`` (exact at logit +-30, where ``1 - expit(30)`` cancels),
  itself checked against ``scipy.stats.binom.logpmf`` where ``p`` is not extreme;
* partial reports: direct enumeration of every admissible death count (a bound) or of every
  death count of every arm under every allocation (a total), and ``binom.cdf`` differences;
* normal: ``-log(s) - log(2 pi) / 2 - ((y - m) / s)^2 / 2`` written out, and ``norm.logpdf``.

Tests of the partial-report algebra on single reports are in ``test_likelihood.py``; this file
adds the edges and the models as built.
"""

from __future__ import annotations

import itertools
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import special, stats

from bayes_msc.evidence.mortality import ArmCount, Configuration, PartialReport, compositions
from bayes_msc.spec import load_spec
from bayes_msc.models.likelihood import (
    binomial_logpmf_logit,
    log_binomial_coefficient,
    pack_partial_reports,
    partial_report_logp,
    partial_report_logp_numpy,
)

LOGITS = np.array([-30.0, -5.0, -0.3, 0.0, 2.0, 30.0])
COUNTS = [(0, 0), (1, 0), (1, 1), (12, 0), (12, 12), (12, 5), (200, 0), (200, 200), (200, 37)]  # (n, deaths)
SES = np.array([1e-6, 1e-3, 1.0, 37.5, 1e6])


def reference_binomial(deaths, n, logit):
    """log Binom(deaths | n, expit(logit)), written out."""
    deaths, n, logit = np.broadcast_arrays(*(np.asarray(a, dtype="float64") for a in (deaths, n, logit)))
    log_choose = special.gammaln(n + 1) - special.gammaln(deaths + 1) - special.gammaln(n - deaths + 1)
    # 0 * log p = 0 even where log p is very negative: no death, no log p
    with np.errstate(invalid="ignore"):
        dead = np.where(deaths > 0, deaths * special.log_expit(logit), 0.0)
        alive = np.where(n - deaths > 0, (n - deaths) * special.log_expit(-logit), 0.0)
    return log_choose + dead + alive


def reference_normal(y, mean, se):
    return -np.log(se) - 0.5 * math.log(2 * math.pi) - 0.5 * ((y - mean) / se) ** 2


def grid():
    """Every (deaths, n, logit) of the edge grid, as flat arrays."""
    rows = [(d, n, x) for (n, d) in COUNTS for x in LOGITS]
    deaths, n, logit = (np.array(c, dtype="float64") for c in zip(*rows))
    return deaths, n, logit


# -- the references themselves ---------------------------------------------------------------


def test_reference_binomial_agrees_with_scipy_where_p_is_not_extreme():
    deaths, n, logit = grid()
    moderate = np.abs(logit) <= 5
    expected = stats.binom.logpmf(deaths[moderate], n[moderate], special.expit(logit[moderate]))
    np.testing.assert_allclose(reference_binomial(deaths, n, logit)[moderate], expected, rtol=1e-10, atol=1e-12)
    # n = 0: the empty arm has probability 1
    assert (reference_binomial(deaths, n, logit)[n == 0] == 0).all()


def test_reference_normal_agrees_with_scipy():
    y, mean = 3.0, 2.0 + SES * 0.7
    np.testing.assert_allclose(reference_normal(y, mean, SES), stats.norm.logpdf(y, mean, SES), rtol=1e-12)


# -- binomial arm term -----------------------------------------------------------------------


def test_binomial_term_over_the_edge_grid():
    import pytensor.tensor as pt

    deaths, n, logit = grid()
    ours = binomial_logpmf_logit(deaths, n, log_binomial_coefficient(n, deaths), pt.as_tensor(logit)).eval()
    np.testing.assert_allclose(ours, reference_binomial(deaths, n, logit), rtol=1e-12, atol=1e-10)
    # the grid really reaches the far tails: 200 deaths at logit -30 is about -6000
    assert ours.min() < -5000 and np.isfinite(ours).all()


def test_log_binomial_coefficient_is_zero_for_empty_and_full_arms():
    np.testing.assert_array_equal(log_binomial_coefficient([0, 5, 5], [0, 0, 5]), [0.0, 0.0, 0.0])
    assert log_binomial_coefficient(10, 3) == pytest.approx(math.log(math.comb(10, 3)), rel=1e-14)


# -- partial reports: bounds and totals ----------------------------------------------------------


def bounded(arm, low, high, n):
    configs = tuple(Configuration(0.0, (ArmCount(arm, d, n),)) for d in range(low, high + 1))
    return PartialReport("s", "bounded", (str(arm),), "bound", configs)


def total(deaths, allocations, arm_indices):
    configs = tuple(
        Configuration(-math.log(len(allocations)), tuple(ArmCount(i, d, m) for i, d, m in zip(arm_indices, split, sizes)))
        for sizes in allocations
        for split in compositions(deaths, list(sizes))
    )
    return PartialReport("s", "total", tuple(map(str, arm_indices)), "total", configs)


def enumerate_bound(low, high, n, logit):
    return special.logsumexp([reference_binomial(d, n, logit) for d in range(low, high + 1)])


def enumerate_total(deaths, allocations, logits):
    """log P(sum of arm deaths == deaths), averaged over allocations, by brute force."""
    per_allocation = []
    for sizes in allocations:
        terms = [
            sum(reference_binomial(d, m, x) for d, m, x in zip(split, sizes, logits))
            for split in itertools.product(*(range(m + 1) for m in sizes))
            if sum(split) == deaths
        ]
        per_allocation.append(special.logsumexp(terms) - math.log(len(allocations)))
    return special.logsumexp(per_allocation)


# each: report, its reference as a function of the arm logits (3 arms)
BOUNDS = [(0, 0, 65), (65, 65, 65), (0, 65, 65), (0, 1, 65), (3, 9, 20), (0, 0, 0)]
TOTALS = [(0, [(3, 3, 6), (3, 6, 3), (6, 3, 3)]), (12, [(3, 3, 6), (6, 3, 3)]), (1, [(3, 3, 6)]), (4, [(2, 5, 0)])]
ARM_LOGITS = [np.array(v) for v in ([-30.0, -30.0, -30.0], [30.0, 30.0, 30.0], [-30.0, 0.4, 30.0], [-2.5, -1.0, 0.3])]


def partial_cases():
    reports, references = [], []
    for low, high, n in BOUNDS:
        reports.append(bounded(1, low, high, n))
        references.append(lambda x, low=low, high=high, n=n: enumerate_bound(low, high, n, x[1]))
    for deaths, allocations in TOTALS:
        reports.append(total(deaths, allocations, [0, 1, 2]))
        references.append(lambda x, deaths=deaths, allocations=allocations: enumerate_total(deaths, allocations, x))
    return tuple(reports), references


@pytest.mark.parametrize("logits", ARM_LOGITS, ids=lambda x: "/".join(f"{v:g}" for v in x))
def test_partial_reports_over_the_edge_grid(logits):
    import pytensor.tensor as pt

    reports, references = partial_cases()
    arrays = pack_partial_reports(reports)  # packed together: padding must not change anything
    expected = np.array([ref(logits) for ref in references])
    gathered = pt.as_tensor(logits)[arrays.arm_index]
    ours_pt = partial_report_logp(pt.zeros(len(reports)), gathered, arrays.deaths, arrays.n, arrays.log_choose,
                                  arrays.log_weight).eval()
    np.testing.assert_allclose(ours_pt, expected, rtol=1e-10, atol=1e-10)
    ours_np = partial_report_logp_numpy(arrays, logits)
    np.testing.assert_allclose(ours_np, expected, rtol=1e-10, atol=1e-8)
    # a bound covering every count, and a bound on an empty arm, are certain: log 1 = 0
    assert ours_pt[2] == pytest.approx(0.0, abs=1e-10) and ours_pt[5] == 0.0


@pytest.mark.parametrize("logit", [-5.0, -1.0, 0.0, 1.5, 5.0])
def test_bound_is_the_binomial_cdf_difference(logit):
    reports = tuple(bounded(0, low, high, n) for low, high, n in BOUNDS)
    ours = partial_report_logp_numpy(pack_partial_reports(reports), np.array([logit]))
    p = special.expit(logit)

    def prob(low, high, n):  # from whichever tail does not cancel
        if stats.binom.cdf(low - 1, n, p) < 0.5:
            return stats.binom.cdf(high, n, p) - stats.binom.cdf(low - 1, n, p)
        return stats.binom.sf(low - 1, n, p) - stats.binom.sf(high, n, p)

    expected = np.log([prob(*bound) for bound in BOUNDS])
    np.testing.assert_allclose(ours, expected, rtol=1e-9, atol=1e-12)


# -- the mortality model as built: PyMC's logp and the scipy pointwise ------------------------------


@pytest.fixture(scope="module")
def mortality_grid():
    """A mortality model whose arms sit at the edge logits, with every (n, deaths) of the grid on
    every arm, plus the partial reports above. Study j: control logit LOGITS[j]; its cell arm adds
    log_or + tau z_j."""
    from bayes_msc.models.mortality import build_mortality_model, mortality_inputs
    from bayes_msc.spec import load_spec

    priors = load_spec("mortality").priors
    studies = tuple(f"s{j}" for j in range(len(LOGITS)))
    arms = pd.DataFrame([
        {"study_id": s, "arm_id": a, "study_index": j, "treated": int(a == "msc")}
        for j, s in enumerate(studies) for a in ("control", "msc")
    ])
    exact = pd.DataFrame([
        {"arm_index": i, "study_id": arms.study_id[i], "arm_id": f"{arms.arm_id[i]}-{n}-{d}", "n": n, "deaths": d}
        for i in range(len(arms)) for (n, d) in COUNTS
    ])
    reports, references = partial_cases()  # on arms 0-2: study 0's two arms and study 1's control
    evidence = SimpleNamespace(studies=studies, arms=arms, exact=exact, n_studies=len(studies),
                               allocation_of=lambda j: "randomised",  # all randomised: no design-bias term
                               partial=tuple(PartialReport(f"p{i}", r.kind, r.arms, r.description, r.configurations)
                                             for i, r in enumerate(reports)))
    # the arm coding, whose logits the references below write out (symmetric: tests/test_sparse.py)
    inputs = mortality_inputs(evidence, priors, load_spec("mortality").with_model(likelihood="arm").model)
    point = {"baseline_logit": LOGITS.copy(), "log_or": 0.7, "tau": 0.5,
             "study_effect_z": np.linspace(-1.5, 1.5, len(studies))}
    study_log_or = point["log_or"] + point["tau"] * point["study_effect_z"]
    arm_logit = LOGITS[arms.study_index] + arms.treated * study_log_or[arms.study_index]
    expected = {
        "deaths": reference_binomial(exact.deaths, exact.n, arm_logit[exact.arm_index].to_numpy()),
        "deaths_partial": np.array([ref(arm_logit.to_numpy()) for ref in references]),
    }
    return SimpleNamespace(inputs=inputs, priors=priors, point=point, study_log_or=study_log_or, expected=expected,
                           build=lambda: build_mortality_model(inputs, priors))


def test_mortality_model_logp_at_the_edges(mortality_grid):
    model = mortality_grid.build()
    point = dict(mortality_grid.point)
    tau = point.pop("tau")
    point["tau_log__"] = math.log(tau)  # HalfNormal: sampled on the log scale
    names = ("deaths", "deaths_partial")
    logp = model.compile_logp(vars=[model[name] for name in names], sum=False)
    values = dict(zip(names, logp(point)))
    for name in names:
        np.testing.assert_allclose(values[name], mortality_grid.expected[name], rtol=1e-10, atol=1e-8, err_msg=name)


def test_mortality_pointwise_log_likelihood_at_the_edges(mortality_grid):
    from bayes_msc.models.mortality import pointwise_log_density

    g = mortality_grid
    one = {"chain": [0], "draw": [0]}
    posterior = xr.Dataset({
        "baseline_logit": (("chain", "draw", "study"), g.point["baseline_logit"][None, None]),
        "study_log_or": (("chain", "draw", "study"), g.study_log_or[None, None]),
        "study_effect_z": (("chain", "draw", "study"), g.point["study_effect_z"][None, None]),
        "log_or": (("chain", "draw"), [[g.point["log_or"]]]),
        "tau": (("chain", "draw"), [[g.point["tau"]]]),
    }, coords=one)
    loglik, logprior = pointwise_log_density(posterior, g.inputs, g.priors)
    for name in ("deaths", "deaths_partial"):
        np.testing.assert_allclose(loglik[name].values[0, 0], g.expected[name], rtol=1e-10, atol=1e-8, err_msg=name)
    assert logprior["tau"].item() == pytest.approx(g.priors.heterogeneity.scipy().logpdf(0.5))


# -- continuous: arm and contrast normal terms -------------------------------------------------------


@pytest.fixture(scope="module")
def continuous_grid():
    """Oxygenation-shaped inputs: per study one contrast term, a cell arm and a control arm, at
    every SE of the edge grid; plus the point and each term's mean written out."""
    from bayes_msc.models.continuous import continuous_inputs
    from bayes_msc.spec import load_spec

    priors = load_spec("oxygenation").priors
    studies = tuple(f"s{j}" for j in range(3))
    rows = []
    for j, s in enumerate(studies):
        for k, se in enumerate(SES):
            for kind, arm, treated in (("contrast", "", 1), ("arm", "msc", 1), ("arm", "control", 0)):
                rows.append({"study_id": s, "study_index": j, "kind": kind, "arm": arm or None,
                             "comparator": f"c{k}", "treated": treated, "se": se, "estimate": 0.0})
    terms = pd.DataFrame(rows)
    point = {"mu": 25.0, "tau": 8.0, "study_effect_z": np.array([-1.0, 0.2, 1.3]), "nc_mean": 10.0, "nc_sd": 6.0,
             "natural_course_z": np.array([0.5, -0.7, 0.1])}
    theta = point["mu"] + point["tau"] * point["study_effect_z"]
    nc = point["nc_mean"] + point["nc_sd"] * point["natural_course_z"]
    j = terms.study_index.to_numpy()
    mean = terms.treated.to_numpy() * theta[j] + (terms.kind == "arm").to_numpy() * nc[j]
    # estimates a fixed number of SEs from the mean: (y - m) / s is the same on every scale,
    # except the tiny SEs, which get a small absolute miss (a z of 500-5000)
    z = np.resize([0.0, 1.7, -2.4], len(terms))
    terms["estimate"] = mean + z * terms.se.to_numpy() + np.where(terms.se < 1e-2, 5e-3, 0.0)
    evidence = SimpleNamespace(terms=terms, studies=studies, natural_course=True)
    inputs = continuous_inputs(evidence, priors)
    expected = reference_normal(terms.estimate.to_numpy(), mean, terms.se.to_numpy())
    return SimpleNamespace(inputs=inputs, priors=priors, point=point, theta=theta, nc=nc, expected=expected, terms=terms)


def _means(g):
    j = g.terms.study_index.to_numpy()
    return g.terms.treated.to_numpy() * g.theta[j] + (g.terms.kind == "arm").to_numpy() * g.nc[j]


def test_continuous_reference_is_scipy(continuous_grid):
    g = continuous_grid
    np.testing.assert_allclose(g.expected, stats.norm.logpdf(g.terms.estimate, _means(g), g.terms.se), rtol=1e-12)


def marginal_reference(g) -> np.ndarray:
    """Each study's log density with (z_j, u_j) integrated out, by the candidate's formula
    log p(y) = log p(y | w) + log p(w) - log p(w | y) at w = the conditional mean: a different
    route from the model's determinant-lemma form, and stable at SEs of 1e-6 and 1e6."""
    t = g.terms.treated.to_numpy(float)
    a = (g.terms.kind == "arm").to_numpy(float)
    y, se = g.terms.estimate.to_numpy(), g.terms.se.to_numpy()
    tau, nc_sd = g.point["tau"], g.point["nc_sd"]
    out = []
    for j in range(3):
        k = g.terms.study_index.to_numpy() == j
        r = y[k] - t[k] * g.point["mu"] - a[k] * g.point["nc_mean"]
        design = np.stack([t[k], a[k]], axis=1)  # deviations (theta_j - mu, nc_j - nc_mean)
        prior_cov = np.diag([tau ** 2, nc_sd ** 2])
        precision = np.linalg.inv(prior_cov) + design.T @ (design / se[k, None] ** 2)
        w = np.linalg.solve(precision, design.T @ (r / se[k] ** 2))
        log_lik = reference_normal(r, design @ w, se[k]).sum()
        log_prior = stats.multivariate_normal(np.zeros(2), prior_cov).logpdf(w)
        log_post = -math.log(2 * math.pi) + 0.5 * np.linalg.slogdet(precision)[1]
        out.append(log_lik + log_prior - log_post)
    return np.array(out)


def test_continuous_model_logp_over_se_grid(continuous_grid):
    """The sampler's likelihood (study effects and natural courses integrated out) against the
    reference, at SEs from 1e-6 to 1e6 in one study."""
    from bayes_msc.models.continuous import build_continuous_model

    g = continuous_grid
    model = build_continuous_model(g.inputs, g.priors)
    point = {"mu": g.point["mu"], "nc_mean": g.point["nc_mean"], "tau_log__": math.log(g.point["tau"]),
             "nc_sd_log__": math.log(g.point["nc_sd"])}
    (potential,) = [p for p in model.potentials if p.name == "estimate_marginal"]
    # compile_logp puts the point's values in place of the random variables; a bare compile_fn of
    # the potential would evaluate it at fresh prior draws of tau, mu, ... on every call.
    logp = model.compile_logp(vars=[potential])(point)
    expected = marginal_reference(g)
    # Terms 5000 SEs of 1e-6 from their mean beside SEs of 1e6 in one study: the sum-of-squares
    # quadratic form keeps all but the last few digits of the ~1e7 total (measured 1e-16).
    np.testing.assert_allclose(logp, expected.sum(), rtol=1e-10)


def test_continuous_pointwise_log_likelihood_over_se_grid(continuous_grid):
    from bayes_msc.models.continuous import pointwise_log_density

    g = continuous_grid
    one = {"chain": [0], "draw": [0]}
    posterior = xr.Dataset({
        "study_effect": (("chain", "draw", "study"), g.theta[None, None]),
        "natural_course": (("chain", "draw", "study"), g.nc[None, None]),
        "study_effect_z": (("chain", "draw", "study"), g.point["study_effect_z"][None, None]),
        "natural_course_z": (("chain", "draw", "study"), g.point["natural_course_z"][None, None]),
        **{name: (("chain", "draw"), [[g.point[name]]]) for name in ("mu", "tau", "nc_mean", "nc_sd")},
    }, coords=one)
    loglik, _ = pointwise_log_density(posterior, g.inputs, g.priors)
    np.testing.assert_allclose(loglik["estimate"].values[0, 0], g.expected, rtol=1e-10)
