"""Dose-response: recovery of a known Emax curve, the prior curve from a prior-only run,
body-weight uncertainty on the dose axis, and the evidence rules for doses."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

import bayes_msc
from simulated import emax_curve, simulate_dose_register

# Ten trials: dose-escalation and multi-arm designs over the 0.5-10 million/kg range trials used.
DESIGNS = [(0.5, 2.0, 10.0), (1.0, 5.0), (0.5, 1.0, 2.0), (2.0, 10.0), (1.0,), (5.0,), (0.5, 5.0), (1.0, 10.0),
           (2.0,), (0.5, 1.0, 5.0, 10.0)]
GRID = (0.5, 1.0, 2.0, 5.0, 10.0)


@pytest.fixture(scope="module")
def emax_oxygenation(tmp_path_factory):
    truth = {"emax": 80.0, "ed50": 1.5}
    root = simulate_dose_register(
        tmp_path_factory.mktemp("dose") / "register", DESIGNS, table="oxygenation", tau=5.0, seed=11, **truth
    )
    result = bayes_msc.fit("oxygenation", data=root, dose_response="emax", chains=4, draws=1000, tune=1000, seed=4)
    return result, truth


def test_emax_recovers_the_true_curve_and_ed50(emax_oxygenation):
    result, truth = emax_oxygenation
    assert result.diagnostics.passed, result.diagnostics.verdict()
    bands = result.dose_response.bands()
    true_curve = emax_curve(bands["dose"], **truth)
    inside = (bands["lower_95"] <= true_curve) & (true_curve <= bands["upper_95"])
    assert inside.all(), bands[~inside]
    ed50 = result.posterior["ed50"]
    assert float(ed50.quantile(0.025)) < truth["ed50"] < float(ed50.quantile(0.975))
    # informative, not the prior: the 95% band at 5 million/kg is far narrower than the Normal(0, 100) prior's
    row = result.dose_response.table.set_index("dose").loc[5.0]
    assert row["upper_95"] - row["lower_95"] < 60


def test_dose_table_and_best_dose_are_consistent(emax_oxygenation):
    result, _ = emax_oxygenation
    table = result.dose_response.table
    assert list(table["dose"]) == list(GRID)
    assert not table["extrapolated"].any()  # the designs span 0.5-10
    # with a rising curve (Emax > 0 with certainty), more cells mean more benefit
    assert table["median"].is_monotonic_increasing
    assert (table["prob_benefit"] > 0.99).all()
    best = result.dose_response.best_dose
    assert best["prob_at_highest_dose"] > 0.9 and "highest dose studied" in best["note"]
    curve = result.dose_response.curve["effect"]
    assert curve.dims == ("chain", "draw", "dose")


def test_study_log_likelihood_sums_every_report(emax_oxygenation):
    from bayes_msc.analyses.loo import study_log_likelihood

    result, _ = emax_oxygenation
    per_study = study_log_likelihood(result.tree)
    assert per_study.sizes["study"] == len(DESIGNS)
    total = result.tree["log_likelihood"]["estimate"].sum("term")
    np.testing.assert_allclose(per_study.sum("study").values, total.values)


# -- prior-only run ------------------------------------------------------------------------


def prior_probability_emax_below(c: float, dose: float, emax_sd: float, ed50_sigma: float) -> float:
    """P(emax * d / (ed50 + d) < c) under emax ~ N(0, sd), ed50 ~ LogNormal(0, sigma), by quadrature."""
    ed50 = stats.lognorm(s=ed50_sigma)

    def integrand(x):
        return stats.norm.cdf(c * (x + dose) / dose / emax_sd) * ed50.pdf(x)

    value, _ = integrate.quad(integrand, 0, np.inf, limit=200)
    return value


def test_prior_only_run_reproduces_the_prior_curve():
    from bayes_msc.api import fit_spec

    spec = bayes_msc.load_spec("mortality").with_model(dose_response="emax").with_sampler(
        chains=4, draws=2000, tune=1000, seed=9
    )
    evidence = spec.outcome_type.build_evidence(bayes_msc.load_register(), spec)
    result = fit_spec(spec, evidence=evidence.masked(set(evidence.studies)))
    threshold = math.log(spec.decision.clinically_meaningful_or)
    table = result.dose_response.table.set_index("dose")
    for dose in (0.5, 2.0, 10.0):
        exact = prior_probability_emax_below(threshold, dose, 1.5, 1.5)
        got, mcse = table.loc[dose, "prob_meaningful"], table.loc[dose, "prob_meaningful_mcse"]
        assert abs(got - exact) <= 4 * mcse, (dose, got, exact, mcse)
        # P(OR < 1) = P(emax < 0) = 1/2 at every dose under the symmetric prior
        assert abs(table.loc[dose, "prob_benefit"] - 0.5) <= 4 * table.loc[dose, "prob_benefit_mcse"]


# -- the dose axis -------------------------------------------------------------------------


def lanzoni_dose(result):
    arm = list(result.tree["posterior"]["arm"].values).index("lanzoni2021/msc")
    return result.posterior["unit_dose"].isel(arm=arm)


@pytest.fixture(scope="module")
def weight_fits():
    spec = bayes_msc.load_spec("mortality").with_model(dose_response="loglinear")
    options = dict(chains=2, draws=500, tune=500, seed=13)
    uncertain = bayes_msc.fit(spec, **options)
    plugin = bayes_msc.fit(spec.with_model(body_weight="plugin"), **options)
    cumulative = bayes_msc.fit(spec.with_model(body_weight="plugin", dose_metric="cumulative"), **options)
    return uncertain, plugin, cumulative


def test_weight_uncertainty_widens_and_plugin_fixes_the_fixed_dose_arms(weight_fits):
    uncertain, plugin, cumulative = weight_fits
    # Lanzoni gave 100 million cells per infusion: 100 / 80 kg = 1.25 million/kg with the plug-in
    np.testing.assert_allclose(lanzoni_dose(plugin).values, 1.25)
    # with the weight uncertain the dose is spread about the same centre, as wide as its prior allows
    dose = lanzoni_dose(uncertain)
    assert float(dose.median()) == pytest.approx(1.25, rel=0.05)
    lo, hi = float(dose.quantile(0.025)), float(dose.quantile(0.975))
    prior_lo, prior_hi = 1.25 * math.exp(-1.96 * 0.2), 1.25 * math.exp(1.96 * 0.2)
    assert lo == pytest.approx(prior_lo, rel=0.12) and hi == pytest.approx(prior_hi, rel=0.12)
    # per-kg arms are untouched by weight
    matthay = list(uncertain.tree["posterior"]["arm"].values).index("matthay2019/msc")
    np.testing.assert_allclose(uncertain.posterior["unit_dose"].isel(arm=matthay).values, 10.0)
    # cumulative metric: two infusions of 1.25 million/kg
    np.testing.assert_allclose(lanzoni_dose(cumulative).values, 2.5)
    assert "body_weight" in uncertain.posterior and "body_weight" not in plugin.posterior


def test_dose_evidence_rules():
    from bayes_msc.evidence.mortality import build_mortality_evidence

    register = bayes_msc.load_register()
    # "all": single-arm BC-U001 and non-randomised Shu 2020 enter only when the set admits their designs
    spec = bayes_msc.load_spec("mortality").with_model(dose_response="emax").with_evidence(evidence_set="all")
    with_assumed = spec.outcome_type.build_evidence(register, spec)
    without = build_mortality_evidence(register, spec.evidence, dose_response=True, use_assumed_doses=False)
    assert "bcu001_2026" in with_assumed.studies and "bcu001_2026" not in without.studies
    reasons = without.inclusion.set_index("study_id")["reason"]
    assert "assumption" in reasons["bcu001_2026"]
    assert "dose not reported" in reasons["shu2020"]  # Shu 2020's dose was not found
    pooled = build_mortality_evidence(register, spec.evidence, dose_response=False)
    assert "shu2020" in pooled.studies and "bcu001_2026" not in pooled.studies


def test_bad_dose_settings_are_clear_errors():
    from bayes_msc.io.errors import InputError

    spec = bayes_msc.load_spec("mortality")
    for change, field in ((dict(dose_response="quadratic"), "model.dose_response"),
                          (dict(body_weight_kg=-1.0), "model.body_weight_kg"),
                          (dict(dose_metric="total"), "model.dose_metric")):
        with pytest.raises(InputError, match=field.replace(".", r"\.")):
            spec.with_model(**change)
    with pytest.raises(InputError, match="no doses"):
        bayes_msc.load_spec("normal_normal").with_model(dose_response="emax")
