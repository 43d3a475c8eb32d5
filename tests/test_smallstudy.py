"""The Bayesian small-study adjustment: its covariate, the Savage–Dickey ratio, the CLI, and the
committed simulation check (reports/smallstudy_simulation.json)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from bayes_msc.analyses.smallstudy import savage_dickey
from bayes_msc.api import load_data, resolve_spec
from bayes_msc.priors import Normal

ROOT = Path(__file__).resolve().parents[1]


def test_small_study_covariate_is_inverse_size_over_its_mean():
    from bayes_msc.api import _evidence_and_inputs

    spec = resolve_spec("mortality", covariates=["small_study"])
    evidence, inputs = _evidence_and_inputs(spec, load_data(spec, None))
    sizes = evidence.arms.groupby("study_id")["n"].sum()
    inverse = np.array([1.0 / sizes[s] for s in evidence.studies])
    np.testing.assert_allclose(inputs.values["covariate_matrix"][:, 0], inverse / inverse.mean())


def test_savage_dickey_matches_the_closed_form_for_a_normal_posterior():
    rng = np.random.default_rng(3)
    prior = Normal(0.0, 0.5)
    for mean, sd in ((0.1, 0.3), (-0.6, 0.25)):
        draws = xr.DataArray(rng.normal(mean, sd, size=(4, 20000)), dims=("chain", "draw"))
        found = savage_dickey(draws.values, prior)
        exact = stats.norm(mean, sd).pdf(0.0) / stats.norm(0, 0.5).pdf(0.0)
        # kernel smoothing bias: the density convolved with N(0, h): N(0; mean, sqrt(sd^2 + h^2))
        smoothed = stats.norm(mean, np.hypot(sd, found["bandwidth"])).pdf(0.0) / stats.norm(0, 0.5).pdf(0.0)
        assert abs(found["bf01"] - smoothed) < 4 * found["posterior_density_mcse"] / found["prior_density_at_zero"]
        assert found["bf01"] == pytest.approx(exact, rel=0.05)  # the kernel's smoothing bias, a few per cent here
        assert found["prob_nonzero"] == pytest.approx(1 / (1 + found["bf01"]))


def test_smallstudy_cli_json(capsys):
    from bayes_msc.cli import main

    code = main(["smallstudy", "mortality", "--json", "--draws", "500", "--chains", "2", "--seed", "3"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    slope, adjusted, unadjusted = out["slope"], out["adjusted"], out["unadjusted"]
    assert slope["lower"] < slope["median"] < slope["upper"]
    assert 0 <= out["prob_small_study_effect"]["prob"] <= 1 and 0 <= out["slope_nonzero"]["prob_nonzero"] <= 1
    # small trials showing more benefit (slope < 0) is the event reported for a log odds ratio
    assert out["prob_small_study_effect"]["prob"] == pytest.approx(slope["prob_below_zero"], abs=1e-12)
    # extrapolating to an infinite trial costs precision
    assert (np.log(adjusted["upper"]) - np.log(adjusted["lower"])) > (np.log(unadjusted["upper"])
                                                                      - np.log(unadjusted["lower"]))
    assert "ten trials" in out["honest_limits"]


def test_committed_simulation_check_supports_the_documented_claims():
    check = json.loads((ROOT / "reports" / "smallstudy_simulation.json").read_text(encoding="utf-8"))
    assert check["command"].startswith("python -m bayes_msc smallstudy mortality --simulate")
    no_slope, slope = check["summary"]["0"], check["summary"]["-0.5"]
    # a known slope is covered by the 95% interval about as often as it should be
    assert slope["coverage_95"] >= 0.95 - 3 * max(slope["coverage_mc_se"], 0.03)
    assert no_slope["coverage_95"] >= 0.95 - 3 * max(no_slope["coverage_mc_se"], 0.03)
    # without small-study effects the adjustment leaves P(benefit) within 0.1 on average
    assert abs(no_slope["prob_benefit_shift_mean"]) < 0.1
    rows = check["rows"]
    assert len(rows) == no_slope["reps"] + slope["reps"]
    recomputed = np.mean([r["covered"] for r in rows if r["slope"] == -0.5])
    assert recomputed == pytest.approx(slope["coverage_95"])
