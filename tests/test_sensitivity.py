"""Prior sensitivity and leave-one-study-out: refits reuse the compiled model, and masking a
study is the same as removing it (within Monte Carlo error)."""

from __future__ import annotations

import math

import pytest

import bayes_msc
from bayes_msc.analyses.sensitivity import headline, leave_one_study_out, prior_sensitivity


@pytest.fixture(scope="module")
def small_mortality():
    return bayes_msc.load_spec("mortality").with_sampler(chains=2, draws=400, tune=400, seed=21)


def test_prior_sensitivity_orders_effect_priors_and_reuses_the_compiled_model(small_mortality):
    sens = prior_sensitivity(small_mortality)
    grid = sens.table[sens.table["baseline_prior"] == "default_baseline"]
    table = grid.set_index(["effect_prior", "heterogeneity_prior"])
    assert len(table) == 9
    # the baseline prior is varied too, with the spec's effect and tau priors
    baselines = sens.table[sens.table["baseline_prior"] != "default_baseline"]
    assert set(baselines["baseline_prior"]) == {"baseline_sd5", "baseline_sd10"}
    assert set(baselines["effect_prior"]) == {"default"} and set(baselines["heterogeneity_prior"]) == {"halfnormal_0.5"}
    for tau in ("halfnormal_0.5", "halfnormal_1.0", "turner2015_mortality"):
        p = table.xs(tau, level="heterogeneity_prior")["prob_benefit"]
        assert p["sceptical"] < p["default"] < p["enthusiastic"]
    # only Turner's log-normal family is a new structure; the other refits swap data
    recompiled = sens.table.loc[sens.table["recompiled"], "heterogeneity_prior"]
    assert set(recompiled) <= {"turner2015_mortality"} and len(recompiled) <= 1
    assert len(sens.refit_seconds) >= 10
    assert f"{sens.table['prob_benefit'].min():.3f}" in sens.verdict
    assert {"prior", "likelihood", "diagnosis"} <= set(sens.psense.columns)
    assert "tau" in sens.psense.index


def test_leave_one_study_out_never_recompiles(small_mortality):
    influence = leave_one_study_out(small_mortality)
    assert influence.compiles_after_first == 0
    assert len(influence.table) == 10
    top = influence.table.loc[influence.table["change_prob_benefit"].abs().idxmax(), "study_id"]
    assert influence.most_influential == top
    assert influence.table["pareto_k"].notna().all()


@pytest.mark.parametrize("analysis, study", [("mortality", "lanzoni2021"), ("oxygenation", "martinezmunoz2024")])
def test_masked_study_equals_removed_study(analysis, study):
    from bayes_msc.api import fit_spec

    spec = bayes_msc.load_spec(analysis).with_sampler(chains=4, draws=1500, tune=1000, seed=3)
    register = bayes_msc.load_register()
    evidence = spec.outcome_type.build_evidence(register, spec)
    masked = headline(fit_spec(spec, evidence=evidence.masked({study})))
    removed = headline(fit_spec(spec.with_evidence(exclude_studies=(study,)), register))
    tolerance = 4 * math.hypot(masked["prob_benefit_mcse"], removed["prob_benefit_mcse"])
    assert abs(masked["prob_benefit"] - removed["prob_benefit"]) <= tolerance
    full = headline(fit_spec(spec, evidence=evidence))
    # and removing it changes the answer by more than that, so the test has teeth
    assert abs(full["prob_benefit"] - removed["prob_benefit"]) > tolerance


def test_terminal_tables_name_and_format_the_effect_by_outcome_not_by_its_size():
    """An oxygenation difference below 20 mmHg is still a difference (one decimal), not an OR."""
    import pandas as pd

    from bayes_msc.io.display import render_influence, render_sensitivity
    from bayes_msc.analyses.sensitivity import Influence, PriorSensitivity

    numbers = {"effect_median": 14.66, "effect_lower": -3.21, "effect_upper": 19.0, "prob_benefit": 0.8,
               "prob_benefit_mcse": 0.01, "prob_meaningful": 0.4, "tau_median": 5.0}
    table = pd.DataFrame([{"effect_prior": "default", "heterogeneity_prior": "halfnormal_25", **numbers,
                           "diagnostics_passed": True, "seconds": 0.5, "recompiled": False}])
    psense = pd.DataFrame({"prior": [0.01], "likelihood": [0.1], "diagnosis": ["-"]}, index=["mu"])
    from bayes_msc.outcomes import get_outcome
    from bayes_msc.outcomes.continuous import NormalNormalOutcome

    points = NormalNormalOutcome("mean_difference", "points").measure  # one decimal, like mmHg
    for outcome, measure, header, band in (
        ("oxygenation", get_outcome("oxygenation").measure, "pooled difference", "14.7 (-3.2 to 19.0)"),
        ("mortality", get_outcome("mortality").measure, "pooled OR", "14.66 (-3.21 to 19.00)"),
        ("normal_normal", points, "pooled difference", "14.7 (-3.2 to 19.0)"),
    ):
        text = render_sensitivity(PriorSensitivity(outcome, measure, table, psense, "verdict", 1.0, [0.5], 1))
        assert header in text and band in text, text
    rows = pd.DataFrame([{"study_id": "a", "label": "A", **numbers, "change_prob_benefit": -0.1, "pareto_k": 0.3}])
    text = render_influence(Influence("normal_normal", points, rows, numbers, "a", "statement", 1.0, [0.5], 0))
    assert "14.7 (-3.2 to 19.0)" in text, text
