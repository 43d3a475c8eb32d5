"""Calibration and power of the mortality meta-regression: its simulator's covariate term, and
the committed SBC (reports/mortality.covariate.sbc.json) and power study
(reports/mortality.covariate_power.json) read back and checked for internal consistency.

Independent sources: the infusion counts of the included trials typed from data/doses.csv and
coded by hand (mean and SD with ddof 1); empirical log odds ratios of arms a million patients
large; scipy's binomial and chi-square distributions.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from bayes_msc.api import load_data, resolve_spec
from bayes_msc.io.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
SBC_FILE = ROOT / "reports" / "mortality.covariate.sbc.json"
POWER_FILE = ROOT / "reports" / "mortality.covariate_power.json"
DOCS = ROOT / "docs" / "methods" / "metaregression.md"
# Infusions of the cell arm of each randomised trial the mortality analysis includes (data/doses.csv)
INFUSIONS = {"lanzoni2021": 2, "shi2021": 3, "zheng2014": 1, "matthay2019": 1, "dilogo2021": 1,
             "monsel2022": 3, "rebelatto2022": 3, "bowdish2023": 2, "zarrabi2023": 2, "zhu2021": 1}


@pytest.fixture(scope="module")
def spec():
    return resolve_spec("mortality", covariates=["infusions"], chains=2, draws=400, tune=600)


@pytest.fixture(scope="module")
def evidence(spec):
    return spec.outcome_type.build_evidence(load_data(spec, None), spec)


def test_the_drawn_shift_is_the_slope_times_the_hand_coded_covariate(spec, evidence):
    from bayes_msc.outcomes.mortality import draw_covariate_truth

    assert list(evidence.studies) == list(INFUSIONS)
    x = np.array(list(INFUSIONS.values()), dtype=float)
    coded = (x - x.mean()) / x.std(ddof=1)
    truth = spec.outcome_type.draw_truth(spec, evidence, np.random.default_rng(3))
    beta = truth["covariate_effect"]
    assert beta.shape == (1,) and truth["covariate_effect[infusions]"] == beta[0]
    np.testing.assert_allclose(truth["covariate_shift"], coded * beta[0], rtol=1e-12)
    # the slopes follow the covariate prior, Normal(0, 0.5): a KS test over many draws
    slopes = [draw_covariate_truth(evidence, ("infusions",), spec.priors, None, np.random.default_rng(i))
              ["covariate_effect"][0] for i in range(400)]
    assert stats.kstest(slopes, stats.norm(0, 0.5).cdf).pvalue > 1e-3


def test_without_covariates_the_truth_draws_what_it_always_drew():
    plain = resolve_spec("mortality")
    evidence = plain.outcome_type.build_evidence(load_data(plain, None), plain)
    truth = plain.outcome_type.draw_truth(plain, evidence, np.random.default_rng(5))
    assert "covariate_shift" not in truth and not plain.outcome_type.covariates
    assert plain.outcome_type.sbc_parameters(evidence) == ("log_or", "tau")


def test_simulated_deaths_carry_the_covariate_shift(spec, evidence):
    """Arms of a million patients: each trial's empirical log odds ratio is its true one,
    log_or + x_j * beta (tau 0), to within a few of its own standard errors."""
    from bayes_msc.outcomes.mortality import MortalityOutcome

    big = 1_000_000
    arms = evidence.arms.assign(n=big)
    exact = evidence.exact.assign(n=big)
    large = replace(evidence, arms=arms, exact=exact)
    x = np.array(list(INFUSIONS.values()), dtype=float)
    slope, log_or = -0.8, math.log(0.7)
    shift = slope * (x - x.mean()) / x.std(ddof=1)
    baseline = np.full(len(x), math.log(0.3 / 0.7))
    truth = {"tau": 0.0, "z": np.zeros(len(x)), "log_or": log_or, "baseline_logit": baseline, "covariate_shift": shift}
    simulated = MortalityOutcome(likelihood="arm").simulate(large, truth, np.random.default_rng(11))
    counts = simulated.exact.merge(arms[["treated"]], left_on="arm_index", right_index=True)
    checked = 0
    for j, sid in enumerate(evidence.studies):
        rows = counts[counts["study_id"] == sid]
        if set(rows["treated"]) != {0, 1}:  # a bounded arm (Shi 2021) is no exact count
            continue
        d1, d0 = (float(rows.loc[rows["treated"] == t, "deaths"].sum()) for t in (1, 0))
        estimate = math.log(d1 / (big - d1)) - math.log(d0 / (big - d0))
        se = math.sqrt(1 / d1 + 1 / (big - d1) + 1 / d0 + 1 / (big - d0))
        assert abs(estimate - (log_or + shift[j])) < 4 * se, sid
        checked += 1
    assert checked == len(INFUSIONS) - 1  # every trial but Shi 2021 (a bound, not a count)


def test_a_large_slope_is_recovered_by_the_fit(spec, evidence):
    """Deaths simulated with a slope of -1.5 per SD and tau 0 on arms 40 times the register's:
    the posterior puts the slope below 0 and within three posterior SDs of the truth."""
    from bayes_msc.analyses.sbc import trace_name
    from bayes_msc.engine.sampling import compile_analysis, scalar_draws
    from bayes_msc.outcomes.mortality import MortalityOutcome

    arms = evidence.arms.assign(n=evidence.arms["n"] * 40)
    exact = evidence.exact.assign(n=evidence.exact["n"] * 40)
    large = replace(evidence, arms=arms, exact=exact)
    x = np.array(list(INFUSIONS.values()), dtype=float)
    slope = -1.5
    truth = {"tau": 0.0, "z": np.zeros(len(x)), "log_or": math.log(0.8), "baseline_logit": np.full(len(x), -1.0),
             "covariate_shift": slope * (x - x.mean()) / x.std(ddof=1)}
    simulated = MortalityOutcome(likelihood="arm").simulate(large, truth, np.random.default_rng(2))
    outcome = spec.outcome_type
    padding = outcome.simulation_padding(large)
    inputs = outcome.pad_inputs(outcome.make_inputs(simulated, spec.priors, spec.model), padding)
    compiled = compile_analysis(inputs, lambda i: outcome.build_model(i, spec.priors))
    name = trace_name("covariate_effect[infusions]", inputs.coords)
    assert name == "covariate_effect[0]"
    settings = spec.with_sampler(seed=9).sampler
    draws, _ = scalar_draws(compiled.sample(settings, raw_trace=True), (name,))
    tree = compiled.sample(settings)  # the same seed: scalar_draws reads the DataTree's numbers
    np.testing.assert_array_equal(draws[name], tree["posterior"]["covariate_effect"].isel(covariate_term=0)
                                  .transpose("chain", "draw").values)
    b = draws[name].ravel()
    assert (b < 0).mean() > 0.99
    assert abs(np.median(b) - slope) < 3 * b.std()


def test_sbc_of_an_outcome_whose_simulator_ignores_covariates_is_refused():
    from bayes_msc.analyses.sbc import run_sbc

    spec = resolve_spec("oxygenation", covariates=["infusions"])
    with pytest.raises(InputError, match="simulator does not draw"):
        run_sbc(spec, n=10)


# -- the committed results ------------------------------------------------------------------------


def test_the_committed_sbc_passes_on_at_least_1000_replicates_with_the_covariate_ranked():
    sbc = json.loads(SBC_FILE.read_text(encoding="utf-8"))
    assert sbc["spec"]["model"]["covariates"] == ["infusions"]
    assert sbc["parameters"] == ["log_or", "tau", "covariate_effect[infusions]"]
    assert sbc["n"] >= 1000 and sbc["passed"] and not sbc["failed"]
    assert sbc["command"].startswith("python -m bayes_msc sbc mortality --covariate infusions")
    assert re.fullmatch(r"[0-9a-f]{40}", sbc["commit"])  # made from committed code
    ranks = sbc["ranks"]
    L = sbc["n_draws"]
    for name in sbc["parameters"]:
        values = np.array(ranks[name])
        assert len(values) == sbc["n"] and values.min() >= 0 and values.max() <= L
        assert sbc["uniformity"][name]["passed"] and sbc["uniformity"][name]["max_outside"] == 0
        # an independent look: ranks in 10 bins of equal width against uniform (scipy chi-square)
        counts = np.bincount(np.minimum(values * 10 // (L + 1), 9), minlength=10)
        expected = np.array([sum(1 for r in range(L + 1) if r * 10 // (L + 1) == b) for b in range(10)]) / (L + 1)
        assert stats.chisquare(counts, expected * len(values)).pvalue > 0.001 / len(sbc["parameters"])


@pytest.fixture(scope="module")
def power():
    return json.loads(POWER_FILE.read_text(encoding="utf-8"))


def test_the_power_study_summaries_are_the_replicates_counted(power):
    reps = power["settings"]["reps_per_scenario"]
    threshold = float(re.search(r"> ([0-9.]+)", power["settings"]["detection_rule"]).group(1))
    assert reps >= 100 and power["command"].startswith("python -m bayes_msc.analyses.covariate_power")
    assert re.fullmatch(r"[0-9a-f]{40}", power["commit"])
    for name, s in power["scenarios"].items():
        rows = [r for r in power["rows"] if r["scenario"] == name]
        assert len(rows) == reps and s["n_trials"] == len(s["studies"]) >= 10
        assert all(r["true"] == s["true"] == s["true_terms"][s["term"]] for r in rows)
        assert all(r["detected"] == (r["prob_below_zero"] > threshold) for r in rows)
        assert all(r["covered"] == (r["lower"] <= r["true"] <= r["upper"]) for r in rows)
        for key, flag in (("detection", "detected"), ("coverage", "covered")):
            count = sum(r[flag] for r in rows)
            p = count / reps
            assert s[key]["count"] == count and s[key]["n"] == reps
            assert s[key]["rate"] == pytest.approx(p) and s[key]["mcse"] == pytest.approx(math.sqrt(p * (1 - p) / reps))
        assert s["contraction_mean"] == pytest.approx(np.mean([r["contraction"] for r in rows]))
    # the nulls' detection rate is a false-detection rate: a 95% rule flags about 5% or fewer
    for name in ("infusions_null", "ards_cause_null"):
        null = power["scenarios"][name]["detection"]
        assert stats.binomtest(null["count"], reps, 0.05, alternative="greater").pvalue > 0.001
    # a fixed truth is no draw from the prior, so coverage need not be 95% (at the prior's centre it
    # is higher); an overconfident posterior would fall short of it
    for s in power["scenarios"].values():
        assert stats.binomtest(s["coverage"]["count"], reps, 0.95, alternative="less").pvalue > 0.001


def test_the_docs_state_the_committed_numbers(power):
    text = DOCS.read_text(encoding="utf-8")
    section = text[text.index("## Calibration and power"):]
    for s in power["scenarios"].values():
        d, c = s["detection"], s["coverage"]
        assert f"{d['count']}/{d['n']}" in section and f"{c['count']}/{c['n']}" in section
        assert f"{s['contraction_mean']:.2f}" in section
    sbc = json.loads(SBC_FILE.read_text(encoding="utf-8"))
    assert f"N = {sbc['n']}" in section
    for name in sbc["parameters"]:
        assert f"{sbc['uniformity'][name]['chi2_pvalue']:.3f}" in section
