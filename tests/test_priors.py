"""Priors: serialisation, presets, and agreement with scipy and the published quantiles."""

import math

import numpy as np
import pytest

from bayes_msc.io.errors import InputError
from bayes_msc.priors import (
    HalfCauchy,
    HalfNormal,
    LogNormalTau2,
    LogTTau2,
    Normal,
    PriorSet,
    find_preset,
    prior_from_dict,
)


@pytest.mark.parametrize("prior", [Normal(0.3, 1.2), HalfNormal(0.5), HalfCauchy(25.0), LogNormalTau2(-3.95, 1.34),
                                   LogTTau2(-3.44, 2.59, 5.0)])
def test_round_trip_and_pymc_density_matches_scipy(prior):
    import pymc as pm

    assert prior_from_dict(prior.to_dict()) == prior
    hyper = prior.hyperparameters()
    with pm.Model():
        rv = prior.build("x", hyper)
    points = np.array([0.05, 0.3, 1.7])
    logp = pm.logp(rv, points).eval()
    # PyMC rounds some normalising constants in the 9th digit.
    np.testing.assert_allclose(logp, prior.scipy().logpdf(points), rtol=1e-7)


def test_turner_prior_reproduces_published_tau_quantiles():
    # Turner 2015 (EVIDENCE.md §4): median tau ~ 0.14, 95% interval ~ 0.04-0.52.
    tau = find_preset("log_odds_ratio", "turner2015_mortality").prior.scipy()
    assert tau.median() == pytest.approx(0.14, abs=0.005)
    assert tau.ppf(0.025) == pytest.approx(0.04, abs=0.005)
    assert tau.ppf(0.975) == pytest.approx(0.52, abs=0.005)


def test_sceptical_and_enthusiastic_priors_put_five_percent_where_stated():
    sceptic = find_preset("log_odds_ratio", "sceptical").prior.scipy()
    enthusiast = find_preset("log_odds_ratio", "enthusiastic").prior.scipy()
    assert sceptic.cdf(math.log(0.66)) == pytest.approx(0.05, abs=1e-6)
    assert enthusiast.sf(0.0) == pytest.approx(0.05, abs=1e-6)


def test_bad_priors_are_rejected_with_a_reason():
    with pytest.raises(InputError, match="sigma must be > 0"):
        prior_from_dict({"family": "normal", "mu": 0, "sigma": -1})
    with pytest.raises(InputError, match="unknown prior family"):
        prior_from_dict({"family": "gamma"})
    with pytest.raises(InputError, match="unknown prior preset"):
        find_preset("log_odds_ratio", "optimistic")


def test_prior_set_overrides_record_what_was_used():
    base = PriorSet(Normal(0, 1.5), HalfNormal(0.5), Normal(0, 2), names={"effect": "default"})
    changed = base.with_preset("log_odds_ratio", "sceptical").with_parameter("heterogeneity", "sigma", 1.0)
    assert changed.names == {"effect": "sceptical", "heterogeneity": "custom"}
    assert changed.to_dict()["heterogeneity"] == {"preset": "custom", "family": "halfnormal", "sigma": 1.0}
    assert changed.structure_key() == base.structure_key()  # same families: no recompile
    assert base.with_preset("log_odds_ratio", "turner2015_mortality").structure_key() != base.structure_key()


def test_rhodes_log_t_prior_is_the_stated_density():
    """log tau^2 ~ t_5(-3.44, 2.59) (Rhodes 2015): density of tau by change of variables,
    checked against scipy's t directly, normalised, and the median tau from the t's median."""
    from scipy import integrate, stats

    tau = find_preset("smd", "rhodes2015_general").prior.scipy()
    for t in (0.01, 0.2, 1.5):
        expected = stats.t.pdf(2 * math.log(t), 5, loc=-3.44, scale=2.59) * 2 / t
        assert tau.pdf(t) == pytest.approx(expected, rel=1e-12)
    total, _ = integrate.quad(tau.pdf, 0, np.inf, limit=200)
    assert total == pytest.approx(1.0, abs=1e-6)
    assert tau.median() == pytest.approx(math.exp(-3.44 / 2), rel=1e-9)  # t's median is its location
    draws = tau.rvs(size=20000, random_state=np.random.default_rng(1))
    assert np.median(draws) == pytest.approx(math.exp(-3.44 / 2), rel=0.05)


def test_normal_normal_priors_follow_the_stated_measure(tmp_path):
    import bayes_msc

    smd = bayes_msc.resolve_spec("normal_normal", measure="smd")
    assert smd.scale == "smd" and smd.priors.names["heterogeneity"] == "rhodes2015_general"
    assert smd.outcome_type.measure.short == "SMD"
    # a mean difference has no default priors: leaving one out is refused, naming it
    with pytest.raises(InputError, match="no default heterogeneity prior"):
        bayes_msc.resolve_spec("normal_normal", measure="mean_difference", unit="mmHg",
                               priors=["effect=normal(mu=0,sigma=50)"])
    stated = bayes_msc.resolve_spec("normal_normal", measure="mean_difference", unit="mmHg",
                                    priors=["effect=normal(mu=0,sigma=50)", "heterogeneity=halfcauchy(beta=25)"])
    assert stated.outcome_type.measure.unit == "mmHg" and stated.priors.heterogeneity == HalfCauchy(25.0)
    # the register's PaO2/FiO2 contrasts are mmHg: refused on a log-ratio scale
    with pytest.raises(InputError, match="mean differences in mmHg"):
        bayes_msc.fit("normal_normal", draws=10, tune=10, measure="log_ratio", benefit_direction="increase")
    # other outcomes' hashes do not depend on the normal-normal-only settings
    assert "measure" not in bayes_msc.load_spec("mortality").to_dict()["model"]
    assert bayes_msc.load_spec("normal_normal").to_dict()["model"]["measure"] == "log_ratio"
