"""Oxygenation and the normal-normal model: exact answers, evidence rules, recovery.

The normal-normal path is checked against results computed by quadrature in the literature
(EVIDENCE.md §6: eight schools with the bayesmeta vignette's priors, Crins 2014 with Röver
2020's); agreement is asserted within 4 Monte Carlo standard errors, which a wrong
likelihood, prior or parameterisation would miss by far.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

import bayes_msc
from bayes_msc.io.errors import InputError

EIGHT_SCHOOLS = {
    "estimate": [28.39, 7.94, -2.75, 6.82, -0.64, 0.63, 18.01, 12.16],
    "se": [14.9, 10.2, 16.3, 11.0, 9.4, 11.4, 10.4, 17.6],
}
CRINS = {
    "estimate": [-2.3097, -0.4595, -2.3026, -1.7579, -1.2585, -2.4179],
    "se": [math.sqrt(v) for v in (0.3594, 0.3096, 0.7750, 0.2078, 0.4122, 2.3373)],
}
EXACT_FIT = dict(chains=4, draws=5000, tune=1000, seed=2026)


def write_estimates(path: Path, table: dict) -> Path:
    from bayes_msc.evidence.estimates import write_estimates as write

    return write(path, table["estimate"], table["se"])


def within_mcse(draws, exact: float, statistic: str, k: float = 4.0) -> tuple[float, float]:
    import arviz_stats as azs

    value = float({"mean": draws.mean(), "sd": draws.std(), "median": draws.median()}[statistic])
    mcse = float(azs.mcse(draws, method=statistic))
    assert abs(value - exact) <= k * mcse, f"{statistic} {value:.4f} vs exact {exact} (MCSE {mcse:.4f})"
    return value, mcse


@pytest.mark.slow
def test_eight_schools_matches_bayesmeta_quadrature(tmp_path):
    result = bayes_msc.fit(
        "normal_normal",
        data=write_estimates(tmp_path / "schools.csv", EIGHT_SCHOOLS),
        measure="mean_difference", unit="points", benefit_direction="increase",  # coaching effects on SAT scores
        priors=["effect=normal(mu=0, sigma=50)", "heterogeneity=halfcauchy(beta=25)"],
        **EXACT_FIT,
    )
    assert result.diagnostics.passed, result.diagnostics.verdict()
    post = result.posterior
    within_mcse(post["mu"], 7.9857, "mean")
    within_mcse(post["mu"], 4.9958, "sd")
    within_mcse(post["tau"], 5.8845, "mean")
    within_mcse(post["tau"], 4.7585, "median")
    p = result.prob_benefit()
    assert abs(p.prob - 0.94875) <= 4 * p.mcse


@pytest.mark.slow
def test_crins_matches_rover_2020(tmp_path):
    result = bayes_msc.fit(
        "normal_normal",
        data=write_estimates(tmp_path / "crins.csv", CRINS),
        measure="log_ratio", benefit_direction="decrease",  # log odds ratios of acute rejection
        priors=["effect=normal(mu=0, sigma=4)", "halfnormal_0.5"],
        **EXACT_FIT,
    )
    assert result.diagnostics.passed, result.diagnostics.verdict()
    post = result.posterior
    within_mcse(post["mu"], -1.5764, "mean")
    within_mcse(post["mu"], 0.3295, "sd")
    within_mcse(post["tau"], 0.3811, "mean")
    within_mcse(post["tau"], 0.3445, "median")


# -- the embedded register ------------------------------------------------------------------


@pytest.fixture(scope="module")
def oxygenation_spec():
    return bayes_msc.load_spec("oxygenation")


def inclusion_of(evidence, study_id):
    return evidence.inclusion.set_index("study_id").loc[study_id]


def test_register_rows_enter_as_reported(oxygenation_spec):
    from bayes_msc.evidence.oxygenation import build_oxygenation_evidence

    # "all": BC-U001 (single arm) enters only when the evidence set admits non-randomised designs
    evidence = build_oxygenation_evidence(bayes_msc.load_register(), oxygenation_spec.with_evidence(evidence_set="all").evidence)
    assert evidence.studies == ("bcu001_2026", "monsel2022", "martinezmunoz2024")
    terms = evidence.terms.set_index(["study_id", "arm"])
    # Monsel by its arms at day 7 (not day 14, not also its contrast): Wan mean, SD from IQR/eta(n)
    monsel = terms.loc["monsel2022"]
    assert list(monsel["kind"]) == ["arm", "arm"]
    assert monsel.loc["msc", "estimate"] == pytest.approx(44.0333, abs=1e-3)
    assert monsel.loc["msc", "se"] == pytest.approx(86.4997 / math.sqrt(21), abs=1e-3)
    assert monsel.loc["control", "treated"] == 0
    # BC-U001: a single cell arm, SE from "P < 0.001" used as its (conservative) upper bound
    bcu = terms.loc[("bcu001_2026", "dose_mid")]
    assert bcu["se"] == pytest.approx(100.07 / 3.2905, abs=0.01) and bool(bcu["se_is_bound"])
    assert "no control arm" in inclusion_of(evidence, "bcu001_2026")["reason"]
    reasons = {sid: inclusion_of(evidence, sid)["reason"] for sid in ("gorman2023", "kaffash2022", "lanzoni2021")}
    assert "oxygenation index" in reasons["gorman2023"]
    assert "direction only" in reasons["kaffash2022"]
    assert "baseline values only" in reasons["lanzoni2021"]
    assert "withdrawn" in inclusion_of(evidence, "nct04452097")["reason"]


def test_prefer_contrast_uses_the_adjusted_difference_only(oxygenation_spec):
    from dataclasses import replace

    spec = replace(oxygenation_spec, evidence=replace(oxygenation_spec.evidence, prefer="contrast"))
    evidence = spec.outcome_type.build_evidence(bayes_msc.load_register(), spec)
    monsel = evidence.terms[evidence.terms["study_id"] == "monsel2022"]
    assert list(monsel["kind"]) == ["contrast"]
    assert monsel["estimate"].iloc[0] == 7.4
    assert monsel["se"].iloc[0] == pytest.approx(104.4 / 3.919928, abs=1e-3)


def test_seed_evidence_lists_the_seed_trials(oxygenation_spec):
    from bayes_msc.evidence.oxygenation import build_oxygenation_evidence

    evidence = build_oxygenation_evidence(bayes_msc.load_register(), oxygenation_spec.with_evidence(evidence_set="seed").evidence)
    assert set(evidence.inclusion["study_id"]) == {"lanzoni2021", "shi2021", "kaffash2022", "bcu001_2026", "nct04452097"}
    assert evidence.studies == ("bcu001_2026",)


def test_register_contrasts_for_normal_normal():
    from bayes_msc.api import load_data, resolve_spec
    from bayes_msc.evidence.estimates import register_contrasts

    spec = resolve_spec("normal_normal")
    evidence = register_contrasts(load_data(spec, None), spec.evidence)
    assert evidence.studies == ("monsel2022",)
    # a study without any reported spread has no known SE: the normal-normal model leaves it out
    assert "SD not reported" in inclusion_of(evidence, "martinezmunoz2024")["reason"]
    term = evidence.terms.iloc[0]
    # arm minus control, variances added: 44.033 - 32.2, sqrt(18.876^2 + 22.183^2)
    assert term["estimate"] == pytest.approx(11.8333, abs=1e-3)
    assert term["se"] == pytest.approx(29.127, abs=1e-2)
    assert inclusion_of(evidence, "bcu001_2026")["reason"].startswith("design: single arm")


# -- bad input -----------------------------------------------------------------------------


def rewrite_cell(path: Path, row: int, column: str, value: str) -> None:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    rows[row - 1][column] = value
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


@pytest.mark.parametrize(
    "row, column, value, message",
    [
        (1, "estimate", "120", "not between q1"),
        (1, "q1", "", "needs q1"),
        (3, "estimate", "80", "outside its interval"),
        (6, "sd", "-3", "negative value"),
        (3, "comparator", "placebo_arm", "unknown arm"),
        (10, "p_value", "1.5", "P value must be below 1"),
        (2, "estimate", "n/a", "not a number"),
    ],
)
def test_bad_oxygenation_rows_name_file_row_and_field(register_copy, row, column, value, message):
    rewrite_cell(register_copy / "oxygenation.csv", row, column, value)
    with pytest.raises(InputError) as caught:
        bayes_msc.load_register(register_copy)
    text = str(caught.value)
    assert "oxygenation.csv" in text and f"row {row}" in text and message in text
    assert f"field '{column}'" in text or column == "sd"


@pytest.mark.parametrize(
    "content, message",
    [
        ("study,estimate\na,1\n", "required column is missing"),
        ("study,estimate,se\na,1,0\n", "must be > 0"),
        ("study,estimate,se\na,1,x\n", "not a number"),
        ("study,estimate,se\na,1,1\na,2,1\n", "duplicate study"),
        ("study,estimate,se,weight\na,1,1,2\n", "unknown column"),
    ],
)
def test_bad_estimates_file(tmp_path, content, message):
    from bayes_msc.evidence.estimates import estimates_evidence, load_estimates

    path = tmp_path / "estimates.csv"
    path.write_text(content)
    with pytest.raises(InputError) as caught:  # an extra column is refused unless a covariate names it
        estimates_evidence(load_estimates(path))
    assert message in str(caught.value) and "estimates.csv" in str(caught.value)


# -- recovery on a simulated register -----------------------------------------------------


def simulated_register(root: Path, rng, *, effect: float, natural_course: float) -> Path:
    """Eight two-arm trials and three single-arm studies; arm means of the change with SDs."""
    from simulated import write_register

    provenance = {"source": "simulation", "quality": "assumption"}
    studies, arms, rows = [], [], []
    for j in range(11):
        sid = f"sim{j}"
        single = j >= 8
        studies.append({"study_id": sid, "label": f"Simulated {j}", "design": "dose_escalation_single_arm" if single else "rct",
                        "allocation": "single_arm" if single else "randomised", "status": "published", **provenance})
        nc_j = natural_course + 15.0 * rng.standard_normal()
        theta_j = effect + 10.0 * rng.standard_normal()
        for arm, treated in (("msc", 1), ("control", 0))[: 1 if single else 2]:
            n = 40
            arms.append({"study_id": sid, "arm_id": arm, "label": arm, "role": "cells" if treated else "control",
                         "product_class": "umbilical_cord" if treated else "none", "n": n, **provenance})
            mean = nc_j + treated * theta_j + 60.0 / math.sqrt(n) * rng.standard_normal()
            rows.append({"study_id": sid, "arm": arm, "measure": "pf_ratio", "quantity": "change_from_baseline", "day": 7,
                         "timepoint": "day 7", "statistic": "mean_sd", "estimate": round(mean, 3), "sd": 60.0, **provenance})
    return write_register(root, {"studies": studies, "arms": arms, "oxygenation": rows})


def test_simulated_register_recovers_effect_and_natural_course(tmp_path):
    rng = np.random.default_rng(17)
    effect, natural_course = 30.0, 40.0
    register = bayes_msc.load_register(simulated_register(tmp_path / "sim", rng, effect=effect, natural_course=natural_course))
    result = bayes_msc.fit("oxygenation", data=register, evidence="all", chains=2, draws=1000, tune=1000, seed=3)
    assert result.evidence.n_studies == 11
    d = result.decisions
    assert d.pooled_effect.lower < effect < d.pooled_effect.upper
    assert d.get("natural_course_mean").lower < natural_course < d.get("natural_course_mean").upper
    # the data, not the Normal(0, 100) prior, decide: the interval is far narrower than the prior's
    assert d.pooled_effect.upper - d.pooled_effect.lower < 60
    assert result.diagnostics.passed, result.diagnostics.verdict()
    # a single-arm study's effect is informed through the natural course borrowed from controls
    post = result.posterior["study_effect"]
    assert float(post.sel(study="sim9").std()) < 100.0 / 2


def test_fit_oxygenation_on_embedded_register():
    result = bayes_msc.fit("oxygenation", chains=2, draws=500, tune=500, seed=5)
    assert result.evidence.studies == ("monsel2022", "martinezmunoz2024")
    d = result.decisions
    assert d.unit == "mmHg" and d.meaningful_threshold == 20.0
    assert 0.0 < d.prob_meaningful.prob < d.prob_benefit.prob < 1.0
    assert result.prob_benefit(20.0).prob == pytest.approx(d.prob_meaningful.prob)
    summary = result.summary_dict()
    assert summary["decisions"]["unit"] == "mmHg"
    assert {"log_likelihood", "log_prior"} <= set(result.tree.children)
    assert result.tree["log_likelihood"]["estimate"].sizes["term"] == 4


def test_simulator_draws_a_borrowed_sd_and_uses_it():
    """A change reported without spread (Martinez-Munoz 2024) has its SD as a parameter: SBC
    must simulate that term with an SD drawn from the same borrowed prior, not the plug-in SE."""
    import numpy as np

    from bayes_msc.models.continuous import borrowed_log_sd_prior

    spec = bayes_msc.load_spec("oxygenation")
    outcome = spec.outcome_type
    evidence = outcome.build_evidence(bayes_msc.load_register(), spec)
    flags = evidence.terms["sd_missing"].fillna(False).astype(bool).to_numpy()
    assert flags.any()
    truths = [outcome.draw_truth(spec, evidence, np.random.default_rng(i)) for i in range(400)]
    (study,) = set(evidence.terms["study_id"][flags])
    log_sd = np.log([t["borrowed_sd"][study] for t in truths])
    prior = borrowed_log_sd_prior(evidence.reported_sds)
    assert abs(np.median(log_sd) - float(prior["borrowed_log_sd_loc"])) < 0.15  # t's median is its location
    truth = {**truths[0], "borrowed_sd": {study: 1e4}, "tau": 0.0, "mu": 0.0, "nc_sd": 0.0, "nc_mean": 0.0}
    draws = np.array([outcome.simulate(evidence, truth, np.random.default_rng(i)).terms["estimate"].to_numpy()[flags]
                      for i in range(50)])
    n = evidence.terms["n"].to_numpy(float)[flags]
    # spread of the simulated estimates = 1e4 / sqrt(n) (the drawn SD), far beyond the plug-in SE
    assert np.std(draws, axis=0) == pytest.approx(1e4 / np.sqrt(n), rel=0.3)
    assert (np.std(draws, axis=0) > 20 * evidence.terms["se"].to_numpy()[flags]).all()
